"""Scaling curves:
  ports      new connections/s through one published port while 1, 10, 100, 1,000 and 10,000
             ports are published: iptables DNAT (Docker's one rule per port, a linear chain) vs
             bpfnet (one hash lookup in the uplink program);
  endpoints  64-byte UDP packet rate (udp_send/udp_recv, pinned) between two containers of one
             network while it has 2, 10, 100 and 1,000 endpoints: Linux bridge (one veth port per
             container, in the host namespace with the host's br_netfilter setting, no iptables
             rules of its own) vs bpfnet.
Each point is measured --runs times, variants interleaved (--quick: ports at 1, 100 and 10,000;
endpoints at 2, 10 and 50). The curves carry no targets: the published-ports targets (10,000 ports
vs 1) are measured interleaved in the ports section. Traffic stays inside the namespaces this
creates; everything is removed on exit."""

import json
import os
import statistics
import time

import published_ports
from benchlib import PID, PrivateAgent, log, measure, sh, wrk

NAME = "scaling"
TITLE = "Scaling: published ports and endpoints per network"
PORT_POINTS = [1, 10, 100, 1000, 10000]
QUICK_PORT_POINTS = [1, 100, 10000]  # --quick: the smoke run checks plumbing, not the curve
ENDPOINT_POINTS = [2, 10, 100, 1000]
QUICK_ENDPOINT_POINTS = [2, 10, 50]


def ports_curve(opts):
    setup = published_ports.Setup(opts.bin_dir)
    curve = {"iptables": {}, "bpfnet": {}}
    try:
        setup.start()
        urls = {"iptables": f"http://{published_ports.LINK_HOST[1]}:{published_ports.PORT_IPT10K}/",
                "bpfnet": f"http://{published_ports.LINK_HOST[2]}:{published_ports.PORT_BPFNET}/"}
        for n in (QUICK_PORT_POINTS if opts.quick else PORT_POINTS):
            setup.set_iptables_filler(n - 1)
            setup.publish_filler(n - 1)
            for run_no in range(opts.runs):
                for name, url in urls.items():
                    value = wrk(setup.client_path, url, opts.seconds, close=True)
                    curve[name].setdefault(n, []).append(value)
                    log(f"scaling ports={n} run {run_no + 1}: {name} {value:.0f} conn/s")
            if n > 1:
                setup.unpublish_filler()
            else:
                setup.bn("sandbox", "rm", "filler")
    finally:
        setup.teardown()
    return curve


class EndpointFarm:
    """Two measured containers plus N-2 idle ones, on a Linux bridge and on a bpfnet network."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.bridge = f"bnbs{PID}"[:15]
        self.bridge_ns = []  # namespaces on the bridge, in order
        self.bpfnet_sandboxes = []
        self.agent = None
        self.net = f"bnbs{PID}"

    def bn(self, *args, **kw):
        return self.agent.bn(*args, **kw)

    def start(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        # Docker's rule for traffic between a bridge's containers (its ICC accept): with
        # br_netfilter on, bridged frames walk FORWARD, whose policy Docker 28+ sets to DROP.
        sh("iptables", "-w", "-I", "FORWARD", "1", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT")
        self.agent = PrivateAgent(self.bin_dir, "bnb-scale.")
        self.agent.start()
        # /20s: room for 1,000 endpoints and more.
        self.bn("network", "create", "--subnet", "10.246.0.0/20", self.net)

    def grow(self, n):
        while len(self.bridge_ns) < n:
            i = len(self.bridge_ns) + 1
            ns = f"bnbs{PID}n{i}"
            sh("ip", "netns", "add", ns)
            self.bridge_ns.append(ns)
            host = f"bnbs{PID}v{i}"[:15]
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", host, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", f"10.245.{i // 250}.{i % 250 + 1}/20", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        while len(self.bpfnet_sandboxes) < n:
            sb = f"s{len(self.bpfnet_sandboxes) + 1}"
            self.bn("sandbox", "create", "--network", self.net, sb)
            self.bpfnet_sandboxes.append(sb)

    def variants(self):
        first = json.loads(self.bn("sandbox", "inspect", "s1", capture=True).stdout)[0]
        second = json.loads(self.bn("sandbox", "inspect", "s2", capture=True).stdout)[0]
        return {"bridge": (f"/run/netns/{self.bridge_ns[0]}", f"/run/netns/{self.bridge_ns[1]}", "10.245.0.3"),
                "bpfnet": (first["NetnsPath"], second["NetnsPath"],
                           second["Networks"][self.net]["IPAddress"])}

    def teardown(self):
        if self.agent:
            self.agent.stop()  # its sandboxes and network too
        for ns in self.bridge_ns:
            sh("ip", "netns", "del", ns, check=False)
        sh("iptables", "-w", "-D", "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT",
           check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def endpoints_curve(opts):
    farm = EndpointFarm(opts.bin_dir)
    curve = {"bridge": {}, "bpfnet": {}}
    try:
        farm.start()
        for n in (QUICK_ENDPOINT_POINTS if opts.quick else ENDPOINT_POINTS):
            started = time.monotonic()
            farm.grow(n)
            log(f"scaling endpoints={n}: made in {time.monotonic() - started:.1f}s")
            variants = farm.variants()
            for run_no in range(opts.runs):
                for name in ("bridge", "bpfnet"):
                    value = measure(variants[name], "udp_pps", opts.seconds)["udp_pps"]
                    curve[name].setdefault(n, []).append(value)
                    log(f"scaling endpoints={n} run {run_no + 1}: {name} {value:.3f} Mpps")
    finally:
        farm.teardown()
    return curve


def run(opts):
    ports = ports_curve(opts)
    endpoints = endpoints_curve(opts)
    med = lambda curve: {v: {n: statistics.median(xs) for n, xs in pts.items()} for v, pts in curve.items()}
    pm, em = med(ports), med(endpoints)
    text = ["#### New connections/s through one published port vs ports published", "",
            "| ports published | iptables DNAT | bpfnet | bpfnet / iptables |", "|---|---|---|---|"]
    for n in sorted(pm["bpfnet"]):
        text.append(f"| {n:,} | {pm['iptables'][n]:.0f} | {pm['bpfnet'][n]:.0f} | "
                    f"{pm['bpfnet'][n] / pm['iptables'][n]:.2f}x |")
    text += ["", "#### 64-byte UDP packet rate between two containers vs endpoints on the network", "",
             "| endpoints | bridge (Mpps) | bpfnet (Mpps) | bpfnet / bridge |", "|---|---|---|---|"]
    for n in sorted(em["bpfnet"]):
        text.append(f"| {n:,} | {em['bridge'][n]:.3f} | {em['bpfnet'][n]:.3f} | "
                    f"{em['bpfnet'][n] / em['bridge'][n]:.2f}x |")
    text.append("")
    nf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    text += [f"The endpoints curve's bridge is in the host namespace (bridge-nf-call-iptables = "
             f"{open(nf).read().strip() if os.path.exists(nf) else 'absent'} there). No targets here: the "
             "ports targets are measured interleaved in the ports section.", ""]
    plots = [{"file": "scaling-ports.png", "title": "New connections/s vs published ports", "kind": "lines",
              "logx": True, "xlabel": "ports published", "ylabel": "connections/s",
              "series": {v: sorted(pts.items()) for v, pts in pm.items()}},
             {"file": "scaling-endpoints.png", "title": "64-byte UDP packet rate vs endpoints on the network",
              "kind": "lines", "logx": True, "xlabel": "endpoints", "ylabel": "Mpps",
              "series": {v: sorted(pts.items()) for v, pts in em.items()}}]
    return {"title": TITLE, "text": text, "plots": plots, "targets": [],
            "data": {"ports": ports, "endpoints": endpoints}}

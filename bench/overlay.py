#!/usr/bin/env python3
"""Overlay benchmark: two containers on different "hosts" (network namespaces joined by an
underlay veth pair, each host running its own bpfnetd, etcd on the first host's underlay address)
talking over an overlay network, for
  kernel-vxlan - the kernel's VXLAN layout Docker's overlay driver builds (bridge + VXLAN device
            per network, static FDB entries), as bpfnet builds it where BPF is unavailable
            (agents started with --probe-disable redirect_peer); the br_netfilter sysctl of each
            host namespace is recorded,
  bpfnet  - bpfnet's BPF overlay: the endpoint program builds the VXLAN frame and sends it out of
            the underlay device, the underlay program strips it and delivers with
            bpf_redirect_peer; the collect_md VXLAN device only takes what BPF leaves (the vx-*
            counters of both hosts are in the report).
Both clusters are built first and measured interleaved, --runs times: TCP throughput (iperf3),
UDP 64-byte packet rate (udp_send/udp_recv, pinned) and TCP request/response latency (sockperf),
with the CPU spent per CPU. Traffic only
flows between namespaces this creates; everything is removed on exit, Ctrl-C included."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from benchlib import (PID, comparison_section, cpu_table, in_ns, log, measure, record, sh, targets_for,
                      unmount_agent_dirs)

NAME = "overlay"
TITLE = "Overlay: containers on two hosts (kernel VXLAN + bridge vs bpfnet's BPF overlay)"
TARGETS = [  # the host-routing issue's: (metric, reference, bound, op)
    ("udp_pps", "kernel-vxlan", 1.3, ">="),
    ("udp_cpu_s_per_mpkt", "kernel-vxlan", 0.8, "<="),
    ("tcp_gbps", "kernel-vxlan", 1.1, ">="),
    ("lat_p50_us", "kernel-vxlan", 0.85, "<="),
]
# One underlay and overlay subnet per cluster.
CLUSTERS = {"kernel-vxlan": ("10.242.0", "10.243.0.0/24", ["--probe-disable", "redirect_peer"]),
            "bpfnet": ("10.242.1", "10.243.1.0/24", [])}


class Cluster:
    """Two hosts (namespaces), etcd, two agents, an overlay network, a client and a server."""

    def __init__(self, name, bin_dir, work):
        self.name, self.bin_dir = name, bin_dir
        self.underlay, self.subnet, self.flags = CLUSTERS[name]
        self.work = os.path.join(work, name)
        self.hosts = [f"bnbo{PID % 10000}{name[0]}{h}" for h in (1, 2)]
        self.state = {}
        self.undo = []
        self.procs = []

    def bn(self, h, *args, **kw):
        return sh(os.path.join(self.bin_dir, "bpfnet"), "--run-dir", f"{self.work}/h{h}/run", *args,
                  **kw)

    def build(self):
        a, b = self.hosts
        for ns in self.hosts:
            sh("ip", "netns", "add", ns)
            self.undo.append(("ip", "netns", "del", ns))
        sh("ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b)
        for h, ns in enumerate(self.hosts, 1):
            sh("ip", "-n", ns, "addr", "add", f"{self.underlay}.{h}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        etcd_url = f"http://{self.underlay}.1:23790"
        peer = f"http://{self.underlay}.1:23800"
        self.spawn(in_ns(f"/run/netns/{a}", "etcd", "--name", "b", "--data-dir", f"{self.work}/etcd",
                         "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                         "--initial-cluster", f"b={peer}"), "etcd.log")
        for _ in range(100):
            if sh(*in_ns(f"/run/netns/{a}", "etcdctl", "--endpoints", etcd_url, "endpoint",
                         "health"), check=False).returncode == 0:
                break
            time.sleep(0.1)
        for h, ns in enumerate(self.hosts, 1):
            d = f"{self.work}/h{h}"
            os.makedirs(d, exist_ok=True)
            self.spawn(in_ns(f"/run/netns/{ns}", os.path.join(self.bin_dir, "bpfnetd"),
                             "--state-dir", f"{d}/state", "--run-dir", f"{d}/run", "--bpffs-root",
                             f"{d}/bpffs", "--netns-dir", f"{d}/netns", "--store", "etcd",
                             "--etcd-endpoints", etcd_url, "--vtep-ip", f"{self.underlay}.{h}",
                             "--uplink", "none", "--default-bridge", "none", "--plugin-socket", "",
                             *self.flags), f"h{h}.log")
            for _ in range(100):
                if self.bn(h, "version", check=False).returncode == 0:
                    break
                time.sleep(0.1)
        net = f"bnbov{PID}{self.name[0]}"
        self.bn(1, "network", "create", "-d", "overlay", "--subnet", self.subnet, net)
        for _ in range(100):
            if net in self.bn(2, "network", "ls", capture=True).stdout:
                break
            time.sleep(0.1)
        self.bn(1, "sandbox", "create", "--network", net, "client")
        self.bn(2, "sandbox", "create", "--network", net, "server")
        info = json.loads(self.bn(2, "sandbox", "inspect", "server", capture=True).stdout)[0]
        server_ip = info["Networks"][net]["IPAddress"]
        datapath = json.loads(self.bn(1, "network", "inspect", net, capture=True).stdout)[0]
        self.datapath = datapath["BpfNet"]["Datapath"]
        client_ns, server_ns = f"{self.work}/h1/netns/client", f"{self.work}/h2/netns/server"
        for _ in range(50):  # the tunnel entries arrive through the cluster store
            if sh(*in_ns(client_ns, "ping", "-c", "1", "-W", "1", server_ip), check=False).returncode == 0:
                break
        self.variant = (client_ns, server_ns, server_ip)
        for h, ns in enumerate(self.hosts, 1):
            r = sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables",
                   capture=True, check=False)
            self.state[f"host{h} bridge-nf-call-iptables"] = r.stdout.strip() if r.returncode == 0 else "absent"

    def vx_counters(self):
        """Per host, the BPF datapath's overlay counters: frames BPF encapsulated and decapsulated
        itself, and those it left to the VXLAN device."""
        out = {}
        for h in (1, 2):
            r = sh(os.path.join(self.bin_dir, "bpfnet"), "--bpffs-root", f"{self.work}/h{h}/bpffs", "nat",
                   "list", "--format", "json", capture=True, check=False)
            try:
                rows = json.loads(r.stdout)["counters"]
            except (ValueError, KeyError):
                continue
            out[f"host{h}"] = {row["counter"]: row["packets"] for row in rows if row["counter"].startswith("vx-")}
        return out

    def spawn(self, cmd, log_name):
        out = open(os.path.join(self.work, log_name), "a")
        self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=out))

    def teardown(self):
        for h in (1, 2):  # the agents remove sandboxes and networks themselves
            self.bn(h, "sandbox", "rm", "client" if h == 1 else "server", check=False)
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for h in (1, 2):
            unmount_agent_dirs(f"{self.work}/h{h}")
        for step in reversed(self.undo):
            sh(*step, check=False)


def run(opts):
    work = tempfile.mkdtemp(prefix="bnb-overlay.")
    clusters = {name: Cluster(name, opts.bin_dir, work) for name in CLUSTERS}
    samples, details = {}, {}
    try:
        for c in clusters.values():
            os.makedirs(c.work, exist_ok=True)
            c.build()
            log(f"overlay: {c.name}: overlay on the {c.datapath} datapath, server {c.variant[2]}")
        for run_no in range(opts.runs):
            for group in ("tcp_gbps", "udp_pps", "latency"):
                for name, c in clusters.items():
                    values = measure(c.variant, group, opts.seconds)
                    record(samples, details, name, values)
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
                    log(f"overlay run {run_no + 1} {name:12s} {shown}")
        vx = clusters["bpfnet"].vx_counters()
    finally:
        for c in clusters.values():
            c.teardown()
        shutil.rmtree(work, ignore_errors=True)
    order = list(CLUSTERS)
    text, plots, medians = comparison_section(samples, order, "kernel-vxlan")
    states = ", ".join(f"{name} ({c.datapath} datapath): " + ", ".join(f"{k} = {v}" for k, v in c.state.items())
                       for name, c in clusters.items())
    text = ["Two hosts (namespaces on an underlay veth pair, etcd on the first): **kernel-vxlan** = "
            "bridge + VXLAN device per network (Docker's overlay layout, built by bpfnet's kernel "
            "datapath), **bpfnet** = VXLAN built in the endpoint program and sent out of the underlay, "
            "stripped at the underlay's ingress and delivered with bpf_redirect_peer (the collect_md "
            f"device takes what BPF leaves). Host namespace settings: {states}.", "",
            "The bpfnet hosts' overlay counters over all runs (packets): " +
            "; ".join(f"{h}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()) for h, c in vx.items()) +
            ". vx-decap-device counts what reached the VXLAN device instead: frames GRO merged into "
            "one tunnel packet, which only a kernel with BPF_F_ADJ_ROOM_DECAP_L4_UDP lets BPF strip.", ""] \
        + text + cpu_table(details)
    targets = targets_for(samples, "bpfnet", TARGETS)
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": medians, "udp_detail": details,
                     "baselines": {name: {"datapath": c.datapath, **c.state} for name, c in clusters.items()},
                     "vx_counters": vx}}

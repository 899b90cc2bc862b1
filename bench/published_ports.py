#!/usr/bin/env python3
"""Published-port benchmark: nginx in a bpfnet sandbox, reached through a published host port by
wrk in a client namespace on an uplink veth (the "outside"), and from the host itself.

Through the uplink (new connections/s with `Connection: close`, keep-alive requests/s):
  iptables-1      Docker's layout, one DNAT rule for the port (iptables nat table)
  iptables-10k    the same rule behind 10,000 DNAT rules (Docker with 10,000 published ports)
  bpfnet-1        `bpfnet network connect --publish`, the only published port: the uplink program
                  (TC on the veth) translates and redirects into the sandbox
  bpfnet-10k      the same port while 10,000 others are published
The same four variants carry a UDP packet rate (udp_send flat out in the client namespace, pinned
to CPU0; udp_recv in the sandbox, pinned to CPU1) through a published UDP port, with the CPU
seconds per million packets.
From the host (127.0.0.1):
  docker-proxy    Debian docker.io's userland proxy, one process for the port (dockerd's default)
  iptables-output dockerd --userland-proxy=false: nat OUTPUT -m addrtype --dst-type LOCAL jumps to
                  a DNAT chain, route_localnet=1 on the container side's interface and MASQUERADE
                  of 127.0.0.0/8 leaving through it
  bpfnet-socket   bpfnet's socket NAT (cgroup connect4 rewrite, BPF datapath)
Publishing 10,000 ports: one `bpfnet network connect --publish 20000-29999:...` against
iptables-restore of 10,000 DNAT rules (Docker's best case) and 1,000 separate `iptables -A` calls
(how Docker adds them, one per port) scaled to 10,000.

Variants run interleaved, --runs times; every run publishes the 10,000 ports afresh between the
1-port and the 10,000-port measurements, so that comparison is interleaved too. Traffic only flows between namespaces this creates and
the host's loopback; everything is removed on exit. Setup is shared with scaling.py."""

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from benchlib import PID, PrivateAgent, cpu_table, in_ns, log, record, sh, stats, target, udp_flood, wrk

NAME = "ports"
TITLE = "Published ports: bpfnet vs iptables DNAT and docker-proxy"
NET = "10.249.0.0/24"
LINK_HOST = ["10.249.255.1", "10.249.255.2", "10.249.255.3"]  # one host address per NAT variant
# One client address per NAT variant as well (chosen by per-destination routes): variants never
# share a connection tuple, so one variant's TIME_WAIT and conntrack entries cannot slow another's
# new connections.
LINK_CLIENT = ["10.249.255.4", "10.249.255.5", "10.249.255.6"]
# Below the ephemeral range (32768-60999): a host port there may be held by any client socket of
# an earlier run, and publishing it then fails as it would for Docker.
PORT_IPT1, PORT_IPT10K, PORT_BPFNET, PORT_PROXY, PORT_IPTOUT = 31080, 31081, 31082, 31090, 31091
UDP_CONTAINER_PORT = 9000  # udp_recv in the sandbox; every variant's published UDP port leads here
TARGETS = [  # the published-ports issue's: (metric, variant, reference, bound, op)
    ("conn_per_s", "bpfnet-10k", "bpfnet-1", 0.95, ">="),
    ("conn_per_s", "bpfnet-10k", "iptables-10k", 3.0, ">="),
    ("keepalive_rps", "bpfnet-socket", "docker-proxy", 2.0, ">="),
    # The CPU cost of a published port's packets, in cost form: 10,000 published ports cost no
    # more per packet than one (1/0.95), and bpfnet's translation no more than iptables DNAT.
    ("udp_cpu_s_per_mpkt", "bpfnet-10k", "bpfnet-1", 1.05, "<="),
    ("udp_cpu_s_per_mpkt", "bpfnet-1", "iptables-1", 1.0, "<="),
]
NGINX_CONF = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 80 reuseport backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


class Setup:
    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.undo = []
        self.work = tempfile.mkdtemp(prefix="bnb-ports.")
        self.undo.append(("rm", "-rf", self.work))
        self.agent = None  # a PrivateAgent once the uplink exists
        self.client_ns = f"bnbp{PID}c"
        self.server_ip = None
        self.server_ns = None

    def bn(self, *args, **kw):
        return self.agent.bn(*args, **kw)

    def start(self):
        # The client namespace on an uplink veth, first: the agent's uplink program goes on it.
        sh("ip", "netns", "add", self.client_ns)
        self.undo.append(("ip", "netns", "del", self.client_ns))
        host_if = f"bnbp{PID}h"[:15]
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", self.client_ns)
        self.undo.append(("ip", "link", "del", host_if))
        for ip in LINK_HOST:
            sh("ip", "addr", "add", f"{ip}/29", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        for ip in LINK_CLIENT:
            sh("ip", "-n", self.client_ns, "addr", "add", f"{ip}/29", "dev", "eth0")
        sh("ip", "-n", self.client_ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.client_ns, "link", "set", "lo", "up")
        for host_ip, client_ip in zip(LINK_HOST, LINK_CLIENT):
            sh("ip", "-n", self.client_ns, "route", "add", f"{host_ip}/32", "dev", "eth0", "src",
               client_ip)
        self.client_path = f"/run/netns/{self.client_ns}"
        self.agent = PrivateAgent(self.bin_dir, "bnb-ports-agent.", uplink=host_if)
        self.agent.start()
        net = f"bnbp{PID}"
        self.bn("network", "create", "--subnet", NET, net)
        self.bn("sandbox", "create", "srv")
        self.bn("network", "connect", "--publish", f"{PORT_BPFNET}:80", "--publish",
                f"{PORT_BPFNET}:{UDP_CONTAINER_PORT}/udp", net, "srv")
        info = json.loads(self.bn("sandbox", "inspect", "srv", capture=True).stdout)[0]
        self.server_ns = info["NetnsPath"]
        self.server_ip = info["Networks"][net]["IPAddress"]
        inspect = json.loads(self.bn("network", "inspect", net, capture=True).stdout)[0]
        self.datapath = inspect["BpfNet"]["Datapath"]
        self.net = net
        # nginx in the sandbox.
        conf = os.path.join(self.work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.work))
        self.nginx = subprocess.Popen(in_ns(self.server_ns, "nginx", "-c", conf, "-g", "daemon off;"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # iptables DNAT as Docker lays it out: a chain jumped to from PREROUTING and OUTPUT, one
        # rule per published port. Each variant gets its own host address so only its own traffic
        # walks its chain.
        self.chain1, self.chain10k = f"BNB1_{PID}", f"BNB10K_{PID}"
        rules = ["*nat", f":{self.chain1} - [0:0]", f":{self.chain10k} - [0:0]",
                 f"-A PREROUTING -d {LINK_HOST[0]}/32 -j {self.chain1}",
                 f"-A PREROUTING -d {LINK_HOST[1]}/32 -j {self.chain10k}",
                 f"-A {self.chain1} -p tcp --dport {PORT_IPT1} -j DNAT --to-destination {self.server_ip}:80",
                 f"-A {self.chain1} -p udp --dport {PORT_IPT1} -j DNAT --to-destination "
                 f"{self.server_ip}:{UDP_CONTAINER_PORT}"]
        rules += filler_rules(self.chain10k, self.server_ip)
        rules += self.ipt10k_own_rules() + ["COMMIT", ""]
        # And the filter rules Docker adds beside them (its DOCKER chain), so that a FORWARD
        # policy DROP (Docker 28+'s) passes the DNATed flows and their replies, as it does for
        # Docker's containers.
        self.chain_fwd = f"BNBF_{PID}"
        rules += ["*filter", f":{self.chain_fwd} - [0:0]", f"-I FORWARD 1 -j {self.chain_fwd}",
                  f"-A {self.chain_fwd} -d {self.server_ip}/32 -p tcp --dport 80 -j ACCEPT",
                  f"-A {self.chain_fwd} -d {self.server_ip}/32 -p udp --dport {UDP_CONTAINER_PORT} -j ACCEPT",
                  f"-A {self.chain_fwd} -s {self.server_ip}/32 -j ACCEPT", "COMMIT", ""]
        subprocess.run(["iptables-restore", "-n"], input="\n".join(rules), text=True, check=True)
        self.undo.append(("__iptables__",))
        # The userland proxy Docker runs per published port.
        # docker-proxy reports readiness on fd 3 (dockerd passes a pipe there); without one it
        # would take its listening socket for that fd and close it.
        self.proxy = subprocess.Popen(
            ["bash", "-c", 'exec 3>/dev/null; exec "$@"', "docker-proxy", "/usr/sbin/docker-proxy",
             "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", str(PORT_PROXY),
             "-container-ip", self.server_ip, "-container-port", "80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Every path must answer before anything is measured (nginx and the proxy start async).
        urls = [f"http://{LINK_HOST[0]}:{PORT_IPT1}/", f"http://{LINK_HOST[1]}:{PORT_IPT10K}/",
                f"http://{LINK_HOST[2]}:{PORT_BPFNET}/"]
        for url in urls:
            for _ in range(100):
                probe = sh("nsenter", f"--net={self.client_path}", "curl", "-s", "-m", "1", "-o",
                           "/dev/null", "-w", "%{http_code}", url, capture=True, check=False)
                if probe.stdout.strip() == "200":
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{url} does not answer from the client namespace")

    def publish_filler(self, count=10000):
        """`count` more published ports, on a second sandbox. Returns the seconds it took."""
        self.bn("sandbox", "create", "filler")
        start = time.monotonic()
        if count > 0:
            self.bn("network", "connect", "--publish", f"20000-{19999 + count}:20000-{19999 + count}",
                    self.net, "filler")
        return time.monotonic() - start

    def set_iptables_filler(self, count):
        """The iptables-10k variant's chain with `count` other DNAT rules before its own."""
        rules = ["*nat", f"-F {self.chain10k}"] + filler_rules(self.chain10k, self.server_ip, count)
        rules += self.ipt10k_own_rules() + ["COMMIT", ""]
        subprocess.run(["iptables-restore", "-n"], input="\n".join(rules), text=True, check=True)

    def ipt10k_own_rules(self):
        return [f"-A {self.chain10k} -p tcp --dport {PORT_IPT10K} -j DNAT --to-destination {self.server_ip}:80",
                f"-A {self.chain10k} -p udp --dport {PORT_IPT10K} -j DNAT --to-destination "
                f"{self.server_ip}:{UDP_CONTAINER_PORT}"]

    def docker_output_path(self):
        """dockerd --userland-proxy=false from the host: OUTPUT-chain DNAT of 127.0.0.1:PORT_IPTOUT
        to the container, route_localnet on the interface towards it (so 127.0.0.1 may leave the
        host's loopback) and MASQUERADE of loopback sources leaving through it, as dockerd sets
        them for docker0. route_localnet is restored at teardown."""
        dev = sh("ip", "-o", "route", "get", self.server_ip, capture=True).stdout.split(" dev ")[1].split()[0]
        path = f"/proc/sys/net/ipv4/conf/{dev}/route_localnet"
        self.localnet = (path, open(path).read().strip())
        self.undo.append(("__localnet__",))
        with open(path, "w") as f:
            f.write("1")
        self.chain_out = f"BNBO_{PID}"
        rules = ["*nat", f":{self.chain_out} - [0:0]",
                 f"-A OUTPUT -m addrtype --dst-type LOCAL -j {self.chain_out}",
                 f"-A POSTROUTING -s 127.0.0.0/8 -o {dev} -m addrtype --src-type LOCAL -j MASQUERADE",
                 f"-A {self.chain_out} -d 127.0.0.1/32 -p tcp --dport {PORT_IPTOUT} -j DNAT "
                 f"--to-destination {self.server_ip}:80", "COMMIT", ""]
        subprocess.run(["iptables-restore", "-n"], input="\n".join(rules), text=True, check=True)
        self.undo.append(("__iptables_out__", dev))
        url = f"http://127.0.0.1:{PORT_IPTOUT}/"
        for _ in range(100):
            probe = sh("curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", url, capture=True,
                       check=False)
            if probe.stdout.strip() == "200":
                return {"device": dev, "route_localnet_before": self.localnet[1]}
            time.sleep(0.1)
        raise RuntimeError(f"{url} (OUTPUT-chain DNAT) does not answer from the host")

    def unpublish_filler(self):
        self.bn("network", "disconnect", self.net, "filler")
        self.bn("sandbox", "rm", "filler")

    def teardown(self):
        for proc in (getattr(self, "proxy", None), getattr(self, "nginx", None)):
            if proc:
                proc.kill()
                proc.wait()
        # The agent first, while its API socket still exists: it removes its sandboxes, networks
        # (bridge, veths) and BPF links itself, and PrivateAgent.stop what a failure left behind.
        if self.agent:
            self.agent.stop()
        for step in reversed(self.undo):
            if step[0] == "__localnet__":
                if os.path.exists(self.localnet[0]):  # gone with the agent's bridge otherwise
                    with open(self.localnet[0], "w") as f:
                        f.write(self.localnet[1])
            elif step[0] == "__iptables_out__":
                dev = step[1]
                sh("iptables", "-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
                   self.chain_out, check=False)
                sh("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "127.0.0.0/8", "-o", dev, "-m", "addrtype",
                   "--src-type", "LOCAL", "-j", "MASQUERADE", check=False)
                sh("iptables", "-t", "nat", "-F", self.chain_out, check=False)
                sh("iptables", "-t", "nat", "-X", self.chain_out, check=False)
            elif step[0] == "__iptables__":
                for chain, dst in ((self.chain1, LINK_HOST[0]), (self.chain10k, LINK_HOST[1])):
                    sh("iptables", "-t", "nat", "-D", "PREROUTING", "-d", f"{dst}/32", "-j", chain,
                       check=False)
                    sh("iptables", "-t", "nat", "-F", chain, check=False)
                    sh("iptables", "-t", "nat", "-X", chain, check=False)
                sh("iptables", "-D", "FORWARD", "-j", self.chain_fwd, check=False)
                sh("iptables", "-F", self.chain_fwd, check=False)
                sh("iptables", "-X", self.chain_fwd, check=False)
            else:
                sh(*step, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


def filler_rules(chain, server_ip, count=10000, first=50000):
    return [f"-A {chain} -p tcp --dport {first + i} -j DNAT --to-destination {server_ip}:{1 + i % 1000}"
            for i in range(count)]


def time_iptables(count_restore=10000, count_single=1000):
    chain = f"BNBT_{PID}"
    rules = ["*nat", f":{chain} - [0:0]"] + filler_rules(chain, "10.249.0.2", count_restore) + ["COMMIT", ""]
    start = time.monotonic()
    subprocess.run(["iptables-restore", "-n"], input="\n".join(rules), text=True, check=True)
    restore = time.monotonic() - start
    sh("iptables", "-t", "nat", "-F", chain)
    start = time.monotonic()
    for i in range(count_single):
        sh("iptables", "-t", "nat", "-A", chain, "-p", "tcp", "--dport", str(50000 + i), "-j", "DNAT",
           "--to-destination", "10.249.0.2:80")
    single = (time.monotonic() - start) * (10000 / count_single)
    sh("iptables", "-t", "nat", "-F", chain, check=False)
    sh("iptables", "-t", "nat", "-X", chain, check=False)
    return restore, single


def run(opts):
    setup = Setup(opts.bin_dir)
    samples, details = {}, {}  # samples[metric][variant] = [values], one per run
    try:
        setup.start()
        output_path = setup.docker_output_path()
        log(f"ports: server {setup.server_ip} in a sandbox on the {setup.datapath} datapath")
        outside = {
            "iptables-1": (LINK_HOST[0], PORT_IPT1),
            "iptables-10k": (LINK_HOST[1], PORT_IPT10K),
            "bpfnet": (LINK_HOST[2], PORT_BPFNET),
        }
        host_local = {"docker-proxy": f"http://127.0.0.1:{PORT_PROXY}/",
                      "iptables-output": f"http://127.0.0.1:{PORT_IPTOUT}/",
                      "bpfnet-socket": f"http://127.0.0.1:{PORT_BPFNET}/"}
        publish_times = []
        for run_no in range(opts.runs):
            for filler in (False, True):
                if filler:
                    publish_times.append(setup.publish_filler())
                for name, (ip, port) in outside.items():
                    if name.startswith("iptables") and filler:
                        continue  # iptables variants do not depend on bpfnet's filler
                    label = (name + ("-10k" if filler else "-1")) if name == "bpfnet" else name
                    url = f"http://{ip}:{port}/"
                    for metric, close in (("conn_per_s", True), ("keepalive_rps", False)):
                        value = wrk(setup.client_path, url, opts.seconds, close)
                        record(samples, details, label, {metric: value})
                        log(f"ports run {run_no + 1}: {label} {metric} {value:.0f}")
                    udp = udp_flood(setup.client_path, setup.server_ns, ip, opts.seconds,
                                    port=UDP_CONTAINER_PORT, dport=port)
                    record(samples, details, label, udp)
                    log(f"ports run {run_no + 1}: {label} udp_pps {udp['udp_pps']:.3f} "
                        f"cpu_s/Mpkt {udp['udp_cpu_s_per_mpkt']:.2f}")
                if filler:
                    setup.unpublish_filler()
            for name, url in host_local.items():
                for metric, close in (("conn_per_s", True), ("keepalive_rps", False)):
                    value = wrk(None, url, opts.seconds, close)
                    record(samples, details, name, {metric: value})
                    log(f"ports run {run_no + 1}: {name} {metric} {value:.0f}")
        ipt_restore, ipt_single = time_iptables(count_single=100 if opts.quick else 1000)
        datapath = setup.datapath
    finally:
        setup.teardown()
    med = {m: {v: statistics.median(xs) for v, xs in per.items()} for m, per in samples.items()}
    variants = list(samples["conn_per_s"])
    publish = {"bpfnet (one connect)": statistics.median(publish_times),
               "iptables-restore": ipt_restore, "iptables -A per port (Docker)": ipt_single}

    def cell(metric, variant, fmt):
        xs = samples.get(metric, {}).get(variant)
        if not xs:
            return "- | -"
        return (f"{format(statistics.median(xs), fmt)} | [{format(min(xs), fmt)}, {format(max(xs), fmt)}] "
                f"CV {stats.spread(xs)['cv'] * 100:.0f}%")
    text = [f"nginx in a bpfnet sandbox on the {datapath} datapath; wrk -t1 -c32 from a client "
            "namespace on an uplink veth, and from the host to 127.0.0.1; UDP: udp_send flat out in "
            "the client namespace (CPU0) to the published UDP port, udp_recv in the sandbox (CPU1). "
            f"iptables-output: dockerd's --userland-proxy=false path (OUTPUT-chain DNAT, route_localnet "
            f"on {output_path['device']}, was {output_path['route_localnet_before']}, restored).", "",
            "| variant | new connections/s | spread | keep-alive requests/s | spread | UDP Mpps | spread | "
            "UDP CPU s/Mpkt | spread |", "|---|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        text.append(f"| {variant} | {cell('conn_per_s', variant, '.0f')} | {cell('keepalive_rps', variant, '.0f')} | "
                    f"{cell('udp_pps', variant, '.3f')} | {cell('udp_cpu_s_per_mpkt', variant, '.2f')} |")
    text += ["", "Publishing 10,000 ports:", "", "| how | seconds |", "|---|---|"]
    text += [f"| {what} | {secs:.2f} |" for what, secs in publish.items()]
    text.append("")
    text += cpu_table(details)
    targets = [target(f"{metric} {a} / {b}", samples[metric][a], samples[metric][b], bound, op)
               for metric, a, b, bound, op in TARGETS]
    plots = [{"metric": m, "title": title, "ylabel": unit, "kind": "bars",
              "series": {v: [med[m][v], min(samples[m][v]), max(samples[m][v])] for v in samples[m]}}
             for m, title, unit in (("conn_per_s", "New connections/s through a published port", "connections/s"),
                                    ("keepalive_rps", "Keep-alive requests/s through a published port", "requests/s"),
                                    ("udp_pps", "UDP packet rate through a published port", "Mpps"),
                                    ("udp_cpu_s_per_mpkt", "CPU seconds per million UDP packets through a "
                                     "published port", "CPU s/Mpkt"))]
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": med, "publish_10k_seconds": publish,
                     "datapath": datapath, "udp_detail": details, "docker_output_path": output_path}}

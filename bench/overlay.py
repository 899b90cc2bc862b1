#!/usr/bin/env python3
"""Overlay benchmark: two containers on different "hosts" (network namespaces joined by an
underlay veth pair, each host running its own bpfnetd, etcd on the first host's underlay address)
talking over an overlay network, for
  kernel  - the kernel's VXLAN layout Docker's overlay driver builds (bridge + VXLAN device per
            network, static FDB entries), as bpfnet builds it where BPF is unavailable
            (agents started with --probe-disable redirect_peer),
  bpfnet  - bpfnet's BPF overlay (encapsulation in the endpoint program, one collect_md VXLAN
            device per host, decapsulation with bpf_redirect_peer).
Both clusters are built first and measured interleaved, --runs times: TCP throughput, UDP 64-byte
packet rate and TCP request/response latency (iperf3, sockperf). Medians and ratios go to
bench/results/<date>-<host>/overlay-report.md and overlay-results.json. Traffic only flows between
namespaces this script creates; everything is removed on exit, Ctrl-C included."""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from same_host import in_ns, log, measure, sh, METRICS

PID = os.getpid()
TARGETS = [
    ("udp_pps", "kernel", 1.2, ">="),
    ("tcp_gbps", "kernel", 1.05, ">="),
    ("lat_p50_us", "kernel", 0.9, "<="),
]
# One underlay and overlay subnet per cluster.
CLUSTERS = {"kernel": ("10.242.0", "10.243.0.0/24", ["--probe-disable", "redirect_peer"]),
            "bpfnet": ("10.242.1", "10.243.1.0/24", [])}


class Cluster:
    """Two hosts (namespaces), etcd, two agents, an overlay network, a client and a server."""

    def __init__(self, name, bin_dir, work):
        self.name, self.bin_dir = name, bin_dir
        self.underlay, self.subnet, self.flags = CLUSTERS[name]
        self.work = os.path.join(work, name)
        self.hosts = [f"bnbo{PID % 10000}{name[0]}{h}" for h in (1, 2)]
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
            for sub in ("netns", "bpffs"):
                d = f"{self.work}/h{h}/{sub}"
                for f in (os.listdir(d) if os.path.isdir(d) else []):
                    sh("umount", "-l", os.path.join(d, f), check=False)
                sh("umount", "-l", d, check=False)
        for step in reversed(self.undo):
            sh(*step, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="short runs for a smoke test")
    ap.add_argument("--out", help="results directory (default bench/results/<date>-<host>)")
    args = ap.parse_args()
    seconds = 1 if args.quick else 5
    runs = min(args.runs, 2) if args.quick else args.runs
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                       f"{datetime.date.today().isoformat()}-{socket.gethostname()}")
    work = tempfile.mkdtemp(prefix="bnb-overlay.")
    clusters = {name: Cluster(name, args.bin_dir, work) for name in CLUSTERS}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    samples = {}
    try:
        for c in clusters.values():
            os.makedirs(c.work, exist_ok=True)
            c.build()
            log(f"{c.name}: overlay on the {c.datapath} datapath, server {c.variant[2]}")
        for run in range(runs):
            for metric in ("tcp_gbps", "udp_pps", "latency"):
                for name, c in clusters.items():
                    result = measure(c.variant, metric, seconds)
                    values = result if isinstance(result, dict) else {metric: result}
                    for key, value in values.items():
                        samples.setdefault(key, {}).setdefault(name, []).append(value)
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
                    log(f"run {run + 1} {name:6s} {shown}")
    except KeyboardInterrupt:
        log("interrupted; tearing down")
        return 130
    finally:
        for c in clusters.values():
            c.teardown()
        shutil.rmtree(work, ignore_errors=True)
    write_report(out_dir, samples, runs, seconds)
    return 0


def write_report(out_dir, samples, runs, seconds):
    os.makedirs(out_dir, exist_ok=True)
    medians = {m: {v: statistics.median(xs) for v, xs in per.items()} for m, per in samples.items()}
    lines = ["# Overlay benchmark: kernel VXLAN + bridge vs bpfnet's BPF overlay", "",
             f"{datetime.datetime.now().isoformat(timespec='seconds')} on {socket.gethostname()} "
             f"({os.cpu_count()} CPUs, kernel {os.uname().release}); two hosts (namespaces on an "
             f"underlay veth pair); {runs} interleaved runs of {seconds} s per metric; medians with "
             "[min, max].", ""]
    for metric, per in samples.items():
        title, unit, _ = METRICS[metric]
        lines += [f"## {title}", "", f"| variant | median ({unit}) | spread | vs kernel |",
                  "|---|---|---|---|"]
        for v in ("kernel", "bpfnet"):
            if v in per:
                med = medians[metric][v]
                lines.append(f"| {v} | {med:.3f} | [{min(per[v]):.3f}, {max(per[v]):.3f}] | "
                             f"{med / medians[metric]['kernel']:.2f}x |")
        lines.append("")
    lines += ["## Targets (ratios of medians, bpfnet vs kernel)", "",
              "| metric | target | measured | result |", "|---|---|---|---|"]
    verdicts = []
    for metric, ref, bound, op in TARGETS:
        if metric not in medians:
            continue
        ratio = medians[metric]["bpfnet"] / medians[metric][ref]
        ok = ratio >= bound if op == ">=" else ratio <= bound
        verdicts.append({"metric": metric, "target": f"{op} {bound}", "ratio": ratio, "met": ok})
        lines.append(f"| {metric} | {op} {bound}x | {ratio:.2f}x | {'pass' if ok else 'miss'} |")
    with open(os.path.join(out_dir, "overlay-report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "overlay-results.json"), "w") as f:
        json.dump({"runs": runs, "seconds": seconds, "samples": samples, "medians": medians,
                   "targets": verdicts}, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

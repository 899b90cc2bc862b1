#!/usr/bin/env python3
"""Same-host benchmark: two network namespaces talking over
  direct  - a veth pair between them (the limit),
  bridge  - each on a veth into a Linux bridge (what docker's bridge driver builds),
  bpfnet  - two sandboxes on a bpfnet network with the BPF datapath (bpf_redirect_peer).
Variants run interleaved, round-robin, --runs times; medians and spread go to
bench/results/<date>-<host>/report.md and results.json. Traffic only flows between the namespaces
this script creates (10.250.0.0/16); everything is torn down on exit, Ctrl-C included."""

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

PID = os.getpid()
TARGETS = [
    # (metric, compared with, minimum or maximum ratio, text)
    ("udp_pps", "bridge", 1.5, ">="),
    ("udp_pps", "direct", 0.95, ">="),
    ("tcp_gbps", "direct", 0.97, ">="),
    ("lat_p50_us", "bridge", 0.9, "<="),
]
METRICS = {
    "tcp_gbps": ("TCP throughput, one stream (iperf3)", "Gbit/s", True),
    "udp_pps": ("UDP 64-byte packet rate received (iperf3 -u -l 64 -b 0)", "Mpps", True),
    "lat_p50_us": ("TCP request/response latency p50 (sockperf ping-pong)", "us", False),
    "lat_p99_us": ("TCP request/response latency p99 (sockperf ping-pong)", "us", False),
}


def sh(*cmd, check=True, capture=False, timeout=120):
    return subprocess.run(cmd, check=check, text=True, timeout=timeout,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Topology:
    """Creates the three variants and removes all of it again, in reverse order."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.undo = []
        self.variants = {}  # name -> (client netns path, server netns path, server ip)
        self.bpfnet_label = "bpfnet"

    def add_undo(self, *cmd):
        self.undo.append(cmd)

    def netns(self, name):
        sh("ip", "netns", "add", name)
        self.add_undo("ip", "netns", "del", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return f"/run/netns/{name}"

    def build_direct(self):
        a, b = self.netns(f"bnb{PID}d1"), self.netns(f"bnb{PID}d2")
        sh("ip", "link", "add", "eth0", "netns", f"bnb{PID}d1", "type", "veth", "peer", "name", "eth0",
           "netns", f"bnb{PID}d2")
        for ns, ip in ((f"bnb{PID}d1", "10.250.1.1/24"), (f"bnb{PID}d2", "10.250.1.2/24")):
            sh("ip", "-n", ns, "addr", "add", ip, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.variants["direct"] = (a, b, "10.250.1.2")

    def build_bridge(self):
        br = f"bnbbr{PID}"
        sh("ip", "link", "add", br, "type", "bridge")
        self.add_undo("ip", "link", "del", br)
        sh("ip", "link", "set", br, "up")
        paths = []
        for i, ip in ((1, "10.250.2.1/24"), (2, "10.250.2.2/24")):
            ns = f"bnb{PID}b{i}"
            paths.append(self.netns(ns))
            host = f"bnbv{PID}{i}"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.add_undo("ip", "link", "del", host)
            sh("ip", "link", "set", host, "master", br, "up")
            sh("ip", "-n", ns, "addr", "add", ip, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.variants["bridge"] = (paths[0], paths[1], "10.250.2.2")

    def build_bpfnet(self):
        work = tempfile.mkdtemp(prefix="bnb-agent.")
        self.add_undo("rm", "-rf", work)
        run_dir = os.path.join(work, "run")
        self.bn = lambda *a, **k: sh(os.path.join(self.bin_dir, "bpfnet"), "--run-dir", run_dir, *a, **k)
        log_file = open(os.path.join(work, "agent.log"), "w")
        agent = subprocess.Popen([os.path.join(self.bin_dir, "bpfnetd"), "--state-dir", f"{work}/state",
                                  "--run-dir", run_dir, "--bpffs-root", f"{work}/bpffs",
                                  "--netns-dir", f"{work}/netns",
                                  "--plugin-socket", f"{run_dir}/docker-plugin.sock", "--uplink", "none", "--default-bridge", "none"], stdout=log_file, stderr=log_file)
        self.undo.append(("__umount__", work))
        self.undo.append(("__stop_agent__", agent))
        for _ in range(100):
            if self.bn("version", check=False).returncode == 0:
                break
            time.sleep(0.1)
        net = f"bnb{PID}"
        self.bn("network", "create", "--subnet", "10.250.3.0/24", net)
        self.undo.append(("__bn__", "network", "rm", net))
        paths = []
        for i in (1, 2):
            sb = f"bnb{PID}s{i}"
            self.bn("sandbox", "create", sb)
            self.undo.append(("__bn__", "sandbox", "rm", sb))
            self.bn("network", "connect", net, sb)
            info = json.loads(self.bn("sandbox", "inspect", sb, capture=True).stdout)[0]
            paths.append(info["NetnsPath"])
        inspect = json.loads(self.bn("network", "inspect", net, capture=True).stdout)[0]
        datapath = inspect["BpfNet"]["Datapath"]
        if datapath != "bpf":
            self.bpfnet_label = f"bpfnet (kernel datapath: {inspect['BpfNet']['DatapathReason']})"
        self.variants["bpfnet"] = (paths[0], paths[1], "10.250.3.3")

    def teardown(self):
        for step in reversed(self.undo):
            try:
                if step[0] == "__stop_agent__":
                    step[1].send_signal(signal.SIGTERM)
                    step[1].wait(timeout=10)
                elif step[0] == "__bn__":
                    self.bn(*step[1:], check=False)
                elif step[0] == "__umount__":
                    for sub in ("netns", "bpffs"):
                        d = os.path.join(step[1], sub)
                        for f in (os.listdir(d) if os.path.isdir(d) else []):
                            sh("umount", "-l", os.path.join(d, f), check=False)
                        sh("umount", "-l", d, check=False)
                else:
                    sh(*step, check=False)
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown: {step}: {exc}", file=sys.stderr)
        self.undo = []


def in_ns(path, *cmd):
    return ["nsenter", f"--net={path}", *cmd]


def free_port():
    global _port
    _port += 1
    return _port


_port = 5200 + PID % 1000


def measure(variant, metric, seconds):
    client, server, ip = variant
    port = str(free_port())
    if metric in ("tcp_gbps", "udp_pps"):
        srv = subprocess.Popen(in_ns(server, "iperf3", "-s", "-1", "-p", port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            args = ["iperf3", "-c", ip, "-p", port, "-t", str(seconds), "-J"]
            if metric == "udp_pps":
                args += ["-u", "-l", "64", "-b", "0"]
            out = json.loads(sh(*in_ns(client, *args), capture=True, timeout=seconds + 30).stdout)
        finally:
            srv.kill()
            srv.wait()
        end = out["end"]
        if metric == "tcp_gbps":
            return end["sum_received"]["bits_per_second"] / 1e9
        s = end["sum"]
        return (s["packets"] - s["lost_packets"]) / s["seconds"] / 1e6
    srv = subprocess.Popen(in_ns(server, "sockperf", "sr", "--tcp", "-i", ip, "-p", port),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        text = sh(*in_ns(client, "sockperf", "pp", "--tcp", "-i", ip, "-p", port, "-t", str(seconds)),
                  capture=True, timeout=seconds + 30).stdout
    finally:
        srv.kill()
        srv.wait()
    pct = {}
    for line in text.splitlines():
        if "percentile" in line and "=" in line:
            parts = line.split("percentile")[1].split("=")
            pct[float(parts[0])] = float(parts[1])
    return {"lat_p50_us": pct[50.0], "lat_p99_us": pct[99.0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="short runs for a smoke test")
    ap.add_argument("--only", choices=["tcp", "udp", "latency"])
    ap.add_argument("--out", help="results directory (default bench/results/<date>-<host>)")
    args = ap.parse_args()
    seconds = 1 if args.quick else 5
    runs = min(args.runs, 2) if args.quick else args.runs
    groups = {"tcp": ["tcp_gbps"], "udp": ["udp_pps"], "latency": ["latency"]}
    todo = groups[args.only] if args.only else ["tcp_gbps", "udp_pps", "latency"]
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                       f"{datetime.date.today().isoformat()}-{socket.gethostname()}")

    topo = Topology(args.bin_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    samples = {}
    try:
        log("building topologies: direct veth pair, kernel bridge, bpfnet")
        topo.build_direct()
        topo.build_bridge()
        topo.build_bpfnet()
        log(f"bpfnet variant: {topo.bpfnet_label}")
        order = ["direct", "bridge", "bpfnet"]
        total = runs * len(todo) * len(order)
        done = 0
        for run in range(runs):
            for metric in todo:
                for name in order:  # interleaved, so drift on a shared machine hits all alike
                    started = time.time()
                    result = measure(topo.variants[name], metric, seconds)
                    values = result if isinstance(result, dict) else {metric: result}
                    for key, value in values.items():
                        samples.setdefault(key, {}).setdefault(name, []).append(value)
                    done += 1
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
                    log(f"[{done}/{total}] run {run + 1} {name:6s} {shown} ({time.time() - started:.1f}s)")
    except KeyboardInterrupt:
        log("interrupted; tearing down")
        return 130
    finally:
        topo.teardown()
    write_report(out_dir, samples, runs, seconds, topo.bpfnet_label)
    return 0


def write_report(out_dir, samples, runs, seconds, bpfnet_label):
    os.makedirs(out_dir, exist_ok=True)
    medians = {m: {v: statistics.median(xs) for v, xs in per.items()} for m, per in samples.items()}
    lines = [f"# Same-host datapath benchmark", "",
             f"{datetime.datetime.now().isoformat(timespec='seconds')} on {socket.gethostname()} "
             f"({os.cpu_count()} CPUs, kernel {os.uname().release}); {runs} interleaved runs of {seconds} s "
             f"per metric; medians with [min, max].", "",
             f"Variants: **direct** = veth pair (the limit), **bridge** = Linux bridge (docker's datapath), "
             f"**bpfnet** = {bpfnet_label}.", ""]
    for metric, per in samples.items():
        title, unit, higher_better = METRICS[metric]
        lines += [f"## {title}", "", f"| variant | median ({unit}) | spread | vs bridge | vs direct |",
                  "|---|---|---|---|---|"]
        for v in ("direct", "bridge", "bpfnet"):
            if v not in per:
                continue
            med = medians[metric][v]
            ratio = lambda ref: f"{med / medians[metric][ref]:.2f}x" if medians[metric].get(ref) else "-"
            lines.append(f"| {v} | {med:.3f} | [{min(per[v]):.3f}, {max(per[v]):.3f}] | {ratio('bridge')} | "
                         f"{ratio('direct')} |")
        lines.append("")
    lines += ["## Targets (ratios of medians, bpfnet vs the reference)", "",
              "| metric | reference | target | measured | result |", "|---|---|---|---|---|"]
    verdicts = []
    for metric, ref, bound, op in TARGETS:
        if metric not in medians or "bpfnet" not in medians[metric]:
            continue
        ratio = medians[metric]["bpfnet"] / medians[metric][ref]
        ok = ratio >= bound if op == ">=" else ratio <= bound
        verdicts.append({"metric": metric, "reference": ref, "target": f"{op} {bound}", "ratio": ratio, "met": ok})
        lines.append(f"| {metric} | {ref} | {op} {bound}x | {ratio:.2f}x | {'pass' if ok else 'miss'} |")
    lines += ["", "Machines here are shared and noisy: compare ratios from one run, not absolute numbers "
              "across runs."]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"runs": runs, "seconds": seconds, "bpfnet_variant": bpfnet_label, "samples": samples,
                   "medians": medians, "targets": verdicts}, f, indent=2)
    log(f"report: {os.path.join(out_dir, 'report.md')}")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

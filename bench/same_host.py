"""Same host: two network namespaces talking over
  direct  - a veth pair between them (the limit),
  bridge  - each on a veth into a Linux bridge (what docker's bridge driver builds),
  bpfnet  - two sandboxes on a bpfnet network with the BPF datapath (bpf_redirect_peer).
TCP throughput, 64-byte UDP packet rate, TCP request/response latency, and the CPU the machine
spent per GB / per million packets meanwhile. Traffic only flows between the namespaces this
creates (10.250.0.0/16); everything is torn down on exit, Ctrl-C included."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import PID, comparison_section, log, measure, sh, target, unmount_agent_dirs

NAME = "same_host"
TITLE = "Same host: two containers on one network (direct veth pair, Linux bridge, bpfnet)"
# The BPF datapath issue's targets: (metric, reference, bound, op).
TARGETS = [
    ("udp_pps", "bridge", 1.5, ">="),
    ("udp_pps", "direct", 0.95, ">="),
    ("tcp_gbps", "direct", 0.97, ">="),
    ("lat_p50_us", "bridge", 0.9, "<="),
]


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
                    unmount_agent_dirs(step[1])
                else:
                    sh(*step, check=False)
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown: {step}: {exc}", file=sys.stderr)
        self.undo = []


def run(opts):
    topo = Topology(opts.bin_dir)
    samples = {}
    try:
        log("same_host: building a direct veth pair, a kernel bridge and a bpfnet network")
        topo.build_direct()
        topo.build_bridge()
        topo.build_bpfnet()
        log(f"same_host: bpfnet variant: {topo.bpfnet_label}")
        order = ["direct", "bridge", "bpfnet"]
        groups = ["tcp_gbps", "udp_pps", "latency"]
        total, done = opts.runs * len(groups) * len(order), 0
        for run_no in range(opts.runs):
            for group in groups:
                for name in order:  # interleaved, so drift on a shared machine hits all alike
                    values = measure(topo.variants[name], group, opts.seconds)
                    for key, value in values.items():
                        samples.setdefault(key, {}).setdefault(name, []).append(value)
                    done += 1
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
                    log(f"same_host [{done}/{total}] run {run_no + 1} {name:6s} {shown}")
    finally:
        topo.teardown()
    text, plots, medians = comparison_section(samples, ["direct", "bridge", "bpfnet"], "bridge", ["direct"])
    text = [f"Variants: **direct** = veth pair (the limit), **bridge** = Linux bridge (docker's "
            f"datapath), **bpfnet** = {topo.bpfnet_label}.", ""] + text
    targets = [target(f"{m} vs {ref}", medians[m]["bpfnet"] / medians[m][ref], bound, op)
               for m, ref, bound, op in TARGETS if m in medians]
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": medians, "bpfnet_variant": topo.bpfnet_label}}

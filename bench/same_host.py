"""Same host: two network namespaces talking over
  direct         a veth pair between them (the limit),
  bridge-docker  each on a veth into a Linux bridge, configured as Docker configures its host:
                 bridge-nf-call-iptables/ip6tables = 1 (br_netfilter hooks every bridged packet),
                 iptables filter and nat tables loaded with Docker's FORWARD chains (DOCKER-USER,
                 DOCKER-ISOLATION-STAGE-1/2, conntrack ACCEPT, -i br -o br ACCEPT), MASQUERADE,
                 FORWARD policy DROP, ip_forward = 1,
  bridge-bare    the same bridge with bridge-nf-call-* = 0 and no iptables tables,
  bpfnet         two sandboxes on a bpfnet network with the BPF datapath (bpf_redirect_peer).
Each bridge lives in a "host" namespace of its own, so its br_netfilter sysctls (per network
namespace) and iptables tables are set there and never on the machine; they are read back and
recorded. TCP throughput (iperf3), UDP packet rate (udp_send/udp_recv), TCP request/response
latency, and the CPU the machine spent per GB / per million packets meanwhile, per CPU. Traffic only
flows between the namespaces this creates (10.250.0.0/16); everything is torn down on exit,
Ctrl-C included."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import (PID, comparison_section, cpu_table, log, measure, record, sh, targets_for,
                      unmount_agent_dirs)

NAME = "same_host"
TITLE = "Same host: two containers on one network (direct veth pair, Linux bridge as Docker runs it and bare, bpfnet)"
ORDER = ["direct", "bridge-bare", "bridge-docker", "bpfnet"]
# The BPF datapath issue's targets: (metric, reference, bound, op). "bridge" there is Docker's
# bridge as Docker runs it: bridge-docker. The CPU-cost targets are the rate targets in cost form
# (1/1.5 and 1/0.95): the same claim, measured independently of how fast the generator is.
# The same two against bridge-bare say how much of the gain is br_netfilter and iptables.
TARGETS = [
    ("udp_pps", "bridge-docker", 1.5, ">="),
    ("udp_cpu_s_per_mpkt", "bridge-docker", 0.67, "<="),
    ("udp_pps", "bridge-bare", 1.5, ">="),
    ("udp_cpu_s_per_mpkt", "bridge-bare", 0.67, "<="),
    ("udp_pps", "direct", 0.95, ">="),
    ("udp_cpu_s_per_mpkt", "direct", 1.05, "<="),
    ("tcp_gbps", "direct", 0.97, ">="),
    ("lat_p50_us", "bridge-docker", 0.9, "<="),
]


def docker_rules(br, subnet):
    """iptables-restore input: the filter and nat rules dockerd installs for one bridge network."""
    return "\n".join([
        "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":DOCKER - [0:0]", ":DOCKER-ISOLATION-STAGE-1 - [0:0]", ":DOCKER-ISOLATION-STAGE-2 - [0:0]",
        ":DOCKER-USER - [0:0]",
        "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        f"-A FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -o {br} -j DOCKER", f"-A FORWARD -i {br} ! -o {br} -j ACCEPT",
        f"-A FORWARD -i {br} -o {br} -j ACCEPT",
        f"-A DOCKER-ISOLATION-STAGE-1 -i {br} ! -o {br} -j DOCKER-ISOLATION-STAGE-2",
        "-A DOCKER-ISOLATION-STAGE-1 -j RETURN", f"-A DOCKER-ISOLATION-STAGE-2 -o {br} -j DROP",
        "-A DOCKER-ISOLATION-STAGE-2 -j RETURN", "-A DOCKER-USER -j RETURN", "COMMIT",
        "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]", ":DOCKER - [0:0]",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        f"-A POSTROUTING -s {subnet} ! -o {br} -j MASQUERADE", f"-A DOCKER -i {br} -j RETURN",
        "COMMIT", ""])


def br_netfilter_presence():
    """How br_netfilter is present on this kernel: a loaded module, built in, or absent."""
    if not os.path.exists("/proc/sys/net/bridge"):
        return "absent (no /proc/sys/net/bridge)"
    if os.path.exists("/sys/module/br_netfilter/initstate"):
        return "loaded module"
    return "built into the kernel" if not os.path.exists("/proc/modules") else "built in or loaded"


def netns_state(ns):
    """The bridge-relevant settings of namespace `ns`, read back: br_netfilter sysctls,
    ip_forward, the iptables tables loaded and their rule counts."""
    def sysctl(key):
        r = sh("ip", "netns", "exec", ns, "cat", f"/proc/sys/{key.replace('.', '/')}", capture=True, check=False)
        return r.stdout.strip() if r.returncode == 0 else "absent"
    tables = {}
    current = None
    for line in sh("ip", "netns", "exec", ns, "iptables-save", capture=True).stdout.splitlines():
        if line.startswith("*"):
            current = line[1:]
            tables[current] = 0
        elif line.startswith("-A") and current:
            tables[current] += 1
    return {"br_netfilter": br_netfilter_presence(),
            "bridge-nf-call-iptables": sysctl("net.bridge.bridge-nf-call-iptables"),
            "bridge-nf-call-ip6tables": sysctl("net.bridge.bridge-nf-call-ip6tables"),
            "ip_forward": sysctl("net.ipv4.ip_forward"),
            "iptables_tables": tables}


class Topology:
    """Creates the three variants and removes all of it again, in reverse order."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.undo = []
        self.variants = {}  # name -> (client netns path, server netns path, server ip)
        self.bpfnet_label = "bpfnet"
        self.states = {}  # variant -> the settings its bridge ran with (read back)

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

    def build_bridge(self, name, docker, third):
        """A Linux bridge with two containers, in a host namespace of its own: `docker` sets it up
        as dockerd does (br_netfilter calls on, Docker's iptables), otherwise bare."""
        host = f"bnb{PID}h{third}"
        self.netns(host)
        br = "docker0" if docker else "br0"
        subnet = f"10.250.{third}.0/24"
        for key, value in (("net.bridge.bridge-nf-call-iptables", int(docker)),
                           ("net.bridge.bridge-nf-call-ip6tables", int(docker)),
                           ("net.bridge.bridge-nf-call-arptables", int(docker)),
                           ("net.ipv4.ip_forward", int(docker))):
            sh("ip", "netns", "exec", host, "sysctl", "-qw", f"{key}={value}")
        sh("ip", "-n", host, "link", "add", br, "type", "bridge")
        sh("ip", "-n", host, "addr", "add", f"10.250.{third}.254/24", "dev", br)
        sh("ip", "-n", host, "link", "set", br, "up")
        if docker:
            sh("ip", "netns", "exec", host, "iptables-restore", input=docker_rules(br, subnet))
        paths = []
        for i in (1, 2):
            ns = f"bnb{PID}b{third}{i}"
            paths.append(self.netns(ns))
            sh("ip", "-n", host, "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", host, "link", "set", f"veth{i}", "master", br, "up")
            sh("ip", "-n", ns, "addr", "add", f"10.250.{third}.{i}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.250.{third}.254")
        self.variants[name] = (paths[0], paths[1], f"10.250.{third}.2")
        self.states[name] = netns_state(host)

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
        root = {"br_netfilter": br_netfilter_presence()}
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
            path = f"/proc/sys/net/bridge/{key}"
            root[key] = open(path).read().strip() if os.path.exists(path) else "absent"
        root["note"] = "the agent's bridge is in the host namespace; the BPF datapath redirects around it"
        self.states["bpfnet"] = root

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
    samples, details = {}, {}
    try:
        log("same_host: building a direct veth pair, a Docker-configured and a bare bridge, a bpfnet network")
        topo.build_direct()
        topo.build_bridge("bridge-docker", True, 2)
        topo.build_bridge("bridge-bare", False, 4)
        topo.build_bpfnet()
        log(f"same_host: bpfnet variant: {topo.bpfnet_label}")
        groups = ["tcp_gbps", "udp_pps", "latency"]
        total, done = opts.runs * len(groups) * len(ORDER), 0
        for run_no in range(opts.runs):
            for group in groups:
                for name in ORDER:  # interleaved, so drift on a shared machine hits all alike
                    values = measure(topo.variants[name], group, opts.seconds)
                    record(samples, details, name, values)
                    done += 1
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
                    log(f"same_host [{done}/{total}] run {run_no + 1} {name:13s} {shown}")
    finally:
        topo.teardown()
    text, plots, medians = comparison_section(samples, ORDER, "bridge-docker", ["bridge-bare", "direct"])
    states = ["| variant | br_netfilter | bridge-nf-call-iptables | bridge-nf-call-ip6tables | ip_forward | "
              "iptables tables (rules) |", "|---|---|---|---|---|---|"]
    for name in ("bridge-docker", "bridge-bare", "bpfnet"):
        st = topo.states.get(name, {})
        tables = ", ".join(f"{t} ({n})" for t, n in st.get("iptables_tables", {}).items()) or "none"
        if name == "bpfnet":
            tables = "host's (bpfnet's own nftables table)"
        states.append(f"| {name} | {st.get('br_netfilter', '-')} | {st.get('bridge-nf-call-iptables', '-')} | "
                      f"{st.get('bridge-nf-call-ip6tables', '-')} | {st.get('ip_forward', '-')} | {tables} |")
    text = [f"Variants: **direct** = veth pair (the limit), **bridge-docker** = Linux bridge as dockerd "
            "configures the host (br_netfilter calls on, Docker's iptables filter/nat rules), "
            "**bridge-bare** = the same bridge without br_netfilter calls or iptables, "
            f"**bpfnet** = {topo.bpfnet_label}. The settings each ran with, read back from its namespace:", "",
            *states, "",
            "UDP: udp_send (sendmmsg, 64-byte payloads, flat out) pinned to one CPU, udp_recv (recvmmsg) "
            "to the other; the rate is what udp_recv counted over its window. The CPU-cost targets "
            "are the rate targets in cost form.", ""] + text + cpu_table(details)
    targets = targets_for(samples, "bpfnet", TARGETS)
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": medians, "bpfnet_variant": topo.bpfnet_label,
                     "baselines": topo.states, "udp_detail": details}}

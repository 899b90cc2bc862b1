"""Egress: a container talking to a server outside the host, behind the host's uplink.
  routed         a namespace routed through a host namespace to the server: no bridge, no NAT, no
                 firewall (the limit),
  docker         a Linux bridge in a host namespace as dockerd configures it: bridge-nf-call-iptables
                 on (br_netfilter hooks every bridged packet), Docker's iptables filter and nat
                 rules (DOCKER-USER, isolation chains, conntrack ACCEPT, FORWARD policy DROP,
                 MASQUERADE of the subnet), ip_forward,
  bpfnet-kernel  a bpfnet network on its kernel datapath (bpfnet.datapath=kernel): bridge, routing,
                 netfilter, nftables masquerade,
  bpfnet         a bpfnet network on the BPF datapath: routed, source-NATed and sent out of the
                 uplink by the endpoint program; answers translated back at the uplink.
Both bpfnet variants are networks of one agent on the host, whose uplink is a veth to the server's
namespace; the other two build a host namespace of their own, so Docker's sysctls and tables are
set there and never on the machine. The server's neighbour entry is resolved before measuring (a
host's gateway always is). UDP packet rate (udp_send/udp_recv, 64-byte payloads) and its CPU per
packet, new TCP connections per second (wrk, a new connection per request, against nginx), TCP
throughput (iperf3) and request/response latency (sockperf), interleaved. Traffic only flows
between the namespaces this creates (10.247.64.0/18); everything is torn down on exit."""

import json
import os
import subprocess
import sys
import tempfile
import time

import same_host
from benchlib import (PID, PrivateAgent, comparison_section, cpu_table, in_ns, log, measure,
                      record, sh, targets_for, unmount_agent_dirs, wrk)
from published_ports import NGINX_CONF

NAME = "egress"
TITLE = "Egress: a container reaching a server behind the uplink (routed limit, Docker's bridge + MASQUERADE, bpfnet kernel and BPF)"
ORDER = ["routed", "docker", "bpfnet-kernel", "bpfnet"]
# The host-routing issue's targets against Docker's layout (the CPU target in cost form).
TARGETS = [
    ("udp_pps", "docker", 1.3, ">="),
    ("udp_cpu_s_per_mpkt", "docker", 0.8, "<="),
    ("conn_per_s", "docker", 1.2, ">="),
    ("tcp_gbps", "docker", 1.05, ">="),
    ("udp_pps", "routed", 0.9, ">="),
]
BPF_NET, KERNEL_NET = "10.247.64.0/24", "10.247.65.0/24"
# server links: host side .1, server .2 (one /30 each)
LINKS = {"bpfnet": "10.247.100", "docker": "10.247.101", "routed": "10.247.102"}


class Topology:
    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.undo = []
        self.variants = {}  # name -> (client netns path, server netns path, server ip)
        self.servers = {}   # server netns path -> nginx process
        self.work = tempfile.mkdtemp(prefix="bnb-egress.")
        self.undo.append(("rm", "-rf", self.work))
        self.agent = None
        self.bpfnet_label = "bpfnet"
        self.kernel_label = "bpfnet-kernel"
        self.states = {}

    def netns(self, name):
        sh("ip", "netns", "add", name)
        self.undo.append(("ip", "netns", "del", name))
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return f"/run/netns/{name}"

    def server(self, name, host_ns, prefix):
        """The server's namespace behind a veth `host_if` of `host_ns` (None: the machine)."""
        path = self.netns(name)
        host_if = f"bnb{PID}{name[-1]}u"[:15]
        where = ["-n", host_ns] if host_ns else []
        sh("ip", *where, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name)
        if not host_ns:
            self.undo.append(("ip", "link", "del", host_if))
        sh("ip", *where, "addr", "add", f"{prefix}.1/30", "dev", host_if)
        sh("ip", *where, "link", "set", host_if, "up")
        sh("ip", "-n", name, "addr", "add", f"{prefix}.2/30", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        conf = os.path.join(self.work, f"nginx-{name}.conf")
        nginx_dir = os.path.join(self.work, name)
        os.makedirs(nginx_dir, exist_ok=True)
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=nginx_dir))
        self.servers[path] = subprocess.Popen(in_ns(path, "nginx", "-c", conf, "-g", "daemon off;"),
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return path, host_if

    def build_routed(self):
        host = f"bnb{PID}er"
        self.netns(host)
        client = self.netns(f"bnb{PID}erc")
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", host, "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", f"bnb{PID}erc")
        sh("ip", "-n", host, "addr", "add", "10.247.67.2/30", "dev", "c0")
        sh("ip", "-n", host, "link", "set", "c0", "up")
        sh("ip", "-n", f"bnb{PID}erc", "addr", "add", "10.247.67.1/30", "dev", "eth0")
        sh("ip", "-n", f"bnb{PID}erc", "link", "set", "eth0", "up")
        sh("ip", "-n", f"bnb{PID}erc", "route", "add", "default", "via", "10.247.67.2")
        server, _ = self.server(f"bnb{PID}ers", host, LINKS["routed"])
        sh("ip", "-n", f"bnb{PID}ers", "route", "add", "10.247.67.0/30", "via", f"{LINKS['routed']}.1")
        self.variants["routed"] = (client, server, f"{LINKS['routed']}.2")

    def build_docker(self):
        host = f"bnb{PID}ed"
        self.netns(host)
        subnet = "10.247.66.0/24"
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
                    "net.bridge.bridge-nf-call-arptables", "net.ipv4.ip_forward"):
            sh("ip", "netns", "exec", host, "sysctl", "-qw", f"{key}=1")
        sh("ip", "-n", host, "link", "add", "docker0", "type", "bridge")
        sh("ip", "-n", host, "addr", "add", "10.247.66.254/24", "dev", "docker0")
        sh("ip", "-n", host, "link", "set", "docker0", "up")
        sh("ip", "netns", "exec", host, "iptables-restore", input=same_host.docker_rules("docker0", subnet))
        client = self.netns(f"bnb{PID}edc")
        sh("ip", "-n", host, "link", "add", "veth1", "type", "veth", "peer", "name", "eth0", "netns", f"bnb{PID}edc")
        sh("ip", "-n", host, "link", "set", "veth1", "master", "docker0", "up")
        sh("ip", "-n", f"bnb{PID}edc", "addr", "add", "10.247.66.1/24", "dev", "eth0")
        sh("ip", "-n", f"bnb{PID}edc", "link", "set", "eth0", "up")
        sh("ip", "-n", f"bnb{PID}edc", "route", "add", "default", "via", "10.247.66.254")
        server, _ = self.server(f"bnb{PID}eds", host, LINKS["docker"])
        self.variants["docker"] = (client, server, f"{LINKS['docker']}.2")
        self.states["docker"] = same_host.netns_state(host)

    def build_bpfnet(self):
        server, uplink = self.server(f"bnb{PID}ebs", None, LINKS["bpfnet"])
        self.agent = PrivateAgent(self.bin_dir, "bnb-egress-agent.", uplink=uplink)
        self.agent.start()
        for net, subnet, opts in ((f"bnb{PID}eb", BPF_NET, []),
                                  (f"bnb{PID}ek", KERNEL_NET, ["-o", "bpfnet.datapath=kernel"])):
            self.agent.bn("network", "create", "--subnet", subnet, *opts, net)
            self.agent.bn("sandbox", "create", net)
            self.agent.bn("network", "connect", net, net)
        paths = {}
        for net in (f"bnb{PID}eb", f"bnb{PID}ek"):
            paths[net] = json.loads(self.agent.bn("sandbox", "inspect", net, capture=True).stdout)[0]["NetnsPath"]
        status = json.loads(self.agent.bn("status", "--format", "json", capture=True).stdout)
        egress = {n["Name"]: n.get("Egress", "") for n in status["Networks"]}
        self.bpfnet_label = f"bpfnet ({egress.get(f'bnb{PID}eb', '?')})"
        self.kernel_label = f"bpfnet-kernel ({egress.get(f'bnb{PID}ek', '?')})"
        if not egress.get(f"bnb{PID}eb", "").startswith("BPF"):
            log(f"egress: the bpfnet network does not egress in BPF: {egress}")
        # One server address per network: the server's TIME_WAIT sockets of one variant's
        # connections must not meet the other's (both leave from the uplink's address).
        kernel_ip = f"{LINKS['bpfnet']}.6"
        sh("ip", "-n", f"bnb{PID}ebs", "addr", "add", f"{kernel_ip}/32", "dev", "lo")
        sh("ip", "route", "add", f"{kernel_ip}/32", "via", f"{LINKS['bpfnet']}.2")
        self.undo.append(("ip", "route", "del", f"{kernel_ip}/32"))
        self.variants["bpfnet"] = (paths[f"bnb{PID}eb"], server, f"{LINKS['bpfnet']}.2")
        self.variants["bpfnet-kernel"] = (paths[f"bnb{PID}ek"], server, kernel_ip)
        forward = sh("iptables", "-w", "-S", "FORWARD", capture=True, check=False).stdout.splitlines()
        self.states["bpfnet"] = {"host FORWARD policy": forward[0] if forward else "unknown",
                                 "br_netfilter": same_host.br_netfilter_presence()}

    def wait_ready(self):
        """Every client reaches its server over HTTP (nginx starts asynchronously), which also
        resolves the route's neighbour."""
        for name, (client, _, ip) in self.variants.items():
            for _ in range(100):
                probe = sh(*in_ns(client, "curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}",
                                  f"http://{ip}/"), capture=True, check=False)
                if probe.stdout.strip() == "200":
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"egress: {name} does not reach its server {ip}")

    def nat_counters(self):
        """The BPF datapath's NAT counters after the runs: what was translated, and what was left to
        the host's stack (egress-stack, snat-exhausted) and would have been measured as kernel."""
        out = self.agent.bn("--bpffs-root", os.path.join(self.agent.work, "bpffs"), "nat", "list",
                            "--format", "json", capture=True, check=False)
        try:
            return {r["counter"]: r["packets"] for r in json.loads(out.stdout)["counters"]}
        except (ValueError, KeyError):
            return {}

    def teardown(self):
        for proc in self.servers.values():
            proc.kill()
            proc.wait()
        if self.agent:
            self.agent.stop()
        for step in reversed(self.undo):
            try:
                sh(*step, check=False)
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown: {step}: {exc}", file=sys.stderr)
        self.undo = []


def conn_rate(variant, seconds):
    client, _, ip = variant
    return {"conn_per_s": wrk(client, f"http://{ip}/", seconds, close=True)}


def run(opts):
    topo = Topology(opts.bin_dir)
    samples, details = {}, {}
    try:
        log("egress: building the routed limit, Docker's layout and a bpfnet agent with a BPF and a kernel network")
        topo.build_routed()
        topo.build_docker()
        topo.build_bpfnet()
        topo.wait_ready()
        log(f"egress: {topo.bpfnet_label}; {topo.kernel_label}")
        groups = ["udp_pps", "conn_per_s", "tcp_gbps", "latency"]
        total, done = opts.runs * len(groups) * len(ORDER), 0
        for run_no in range(opts.runs):
            for group in groups:
                for name in ORDER:  # interleaved, so drift on a shared machine hits all alike
                    variant = topo.variants[name]
                    values = (conn_rate(variant, opts.seconds) if group == "conn_per_s"
                              else measure(variant, group, opts.seconds))
                    record(samples, details, name, values)
                    done += 1
                    shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items() if k != "detail")
                    log(f"egress [{done}/{total}] run {run_no + 1} {name:13s} {shown}")
        nat = topo.nat_counters()
    finally:
        topo.teardown()
    text, plots, medians = comparison_section(samples, ORDER, "docker", ["routed", "bpfnet-kernel"])
    docker = topo.states.get("docker", {})
    text = [f"Variants: **routed** = plain routing through a host namespace, no NAT or firewall (the "
            "limit); **docker** = Docker's bridge + MASQUERADE in a host namespace (br_netfilter "
            f"{docker.get('br_netfilter', '-')}, bridge-nf-call-iptables "
            f"{docker.get('bridge-nf-call-iptables', '-')}, ip_forward {docker.get('ip_forward', '-')}, "
            f"iptables tables {docker.get('iptables_tables', {})}); **{topo.kernel_label}**; "
            f"**{topo.bpfnet_label}**. The bpfnet agent runs on the machine (its FORWARD chain: "
            f"{topo.states.get('bpfnet', {}).get('host FORWARD policy', '-')}).", "",
            "UDP: udp_send (sendmmsg, 64-byte payloads, flat out) pinned to one CPU, udp_recv to the "
            "other; the sender's CPU is in the table below, so a generator at 100% is visible. New "
            "connections: wrk -c32 with `Connection: close` against nginx behind the uplink.", "",
            "The BPF datapath's NAT counters over all runs (both bpfnet networks): " +
            ", ".join(f"{k} {v:,}" for k, v in nat.items() if v and (k.startswith("snat") or k.startswith("egress")
                                                                    or k == "ct-insert-failed")), ""] + text \
        + cpu_table(details)
    targets = targets_for(samples, "bpfnet", TARGETS)
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": medians, "bpfnet_variant": topo.bpfnet_label,
                     "kernel_variant": topo.kernel_label, "baselines": topo.states, "udp_detail": details,
                     "nat_counters": nat}}

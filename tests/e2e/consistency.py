#!/usr/bin/env python3
"""Checks that an agent's store, kernel objects and BPF maps agree (tests/e2e, after crashes):
every network's bridge and every endpoint's host veth exist and nothing the agent owns exists
besides them; the BPF maps hold exactly the store's networks, endpoints and published ports, and
each BPF endpoint's veth (and no other veth of the agent) carries the endpoint program; no namespace without its sandbox; no address given twice.
Usage: consistency.py BPFNET_CLI RUN_DIR BPFFS_DIR NETNS_DIR INSTANCE DATAPATH, DATAPATH being the
one the agent was started for (bpf or kernel): on bpf, maps that are not pinned are a disagreement
(a check of maps that silently skips when they are missing would pass on a datapath that never
loaded); on kernel, no network may say it is on BPF. Prints what disagrees."""

import json
import os
import subprocess
import sys

if len(sys.argv) != 7 or sys.argv[6] not in ("bpf", "kernel"):
    sys.exit(__doc__)
cli, run_dir, bpffs, netns_dir, instance, datapath = sys.argv[1:7]


def bn(*args):
    out = subprocess.run([cli, "--run-dir", run_dir, "--bpffs-root", bpffs, *args], check=True,
                         capture_output=True, text=True).stdout
    return out


problems = []
networks = []
ids = bn("network", "ls", "-q", "--no-trunc").split()
if ids:
    networks = json.loads(bn("network", "inspect", *ids))
sandboxes = [json.loads(line) for line in bn("sandbox", "ls", "--format", "json").splitlines() if line]
details = json.loads(bn("sandbox", "inspect", *[s["Name"] for s in sandboxes])) if sandboxes else []

links = json.loads(subprocess.run(["ip", "-d", "-j", "link", "show"], check=True, capture_output=True,
                                  text=True).stdout)
owned = {l["ifname"] for l in links if l.get("ifalias", "").startswith(f"bpfnet:{instance}:")}
ifindex = {l["ifname"]: l["ifindex"] for l in links}

bridges = {n["BpfNet"]["Bridge"]: n for n in networks if n["BpfNet"]["Bridge"]}
bpf_networks = {b for b, n in bridges.items() if n["BpfNet"]["Datapath"] == "bpf"}
endpoints = {}  # host veth -> (sandbox, network name, ip, ports)
addresses = {}
for d in details:
    for net, e in d["Networks"].items():
        if e.get("HostInterface"):
            endpoints[e["HostInterface"]] = (d["Name"], net, e["IPAddress"], e.get("Ports", []))
        if e["IPAddress"]:
            key = (net, e["IPAddress"])
            if key in addresses:
                problems.append(f"address {e['IPAddress']} on {net} given to {addresses[key]} and {d['Name']}")
            addresses[key] = d["Name"]

expected_links = set(bridges) | set(endpoints)
for name in sorted(expected_links - set(ifindex)):
    problems.append(f"missing in the kernel: {name}")
for name in sorted(owned - expected_links):
    problems.append(f"orphan interface the agent owns: {name}")

for n in networks:
    if n["BpfNet"]["State"] != "ready":
        problems.append(f"network {n['Name']} left {n['BpfNet']['State']}")
for s in sandboxes:
    if s.get("State", "ready") != "ready":
        problems.append(f"sandbox {s['Name']} left {s['State']}")
names = {s["Name"] for s in sandboxes}
for f in os.listdir(netns_dir) if os.path.isdir(netns_dir) else []:
    if f not in names:
        problems.append(f"orphan namespace {f}")

maps_pinned = os.path.exists(os.path.join(bpffs, "bpfnet", "bpfnet_net"))
if datapath == "bpf" and not maps_pinned:
    problems.append(f"the BPF datapath was expected but no maps are pinned under {bpffs}/bpfnet")
if datapath == "kernel" and bpf_networks:
    problems.append(f"the kernel datapath was expected but bridges {sorted(bpf_networks)} are on BPF")
if maps_pinned:
    def dump(name):
        return json.loads(bn("map", "dump", name, "--json"))
    net_keys = {e["key"]["bridge"] for e in dump("bpfnet_net")}
    want_nets = {b for b in bpf_networks}
    if net_keys != want_nets:
        problems.append(f"bpfnet_net holds {sorted(net_keys)}, the store's BPF networks are {sorted(want_nets)}")
    bpf_eps = {veth for veth, (_, net, _, _) in endpoints.items()
               if any(n["Name"] == net and n["BpfNet"]["Datapath"] == "bpf" for n in networks)}
    ep_keys = {e["key"]["interface"] for e in dump("bpfnet_ep_by_if")}
    if ep_keys != bpf_eps:
        problems.append(f"bpfnet_ep_by_if holds {sorted(ep_keys)}, the store's BPF endpoints are {sorted(bpf_eps)}")
    # Endpoint programs are cls_bpf filters on the veths' host ends (nothing pinned for them).
    stale_pins = set(os.listdir(os.path.join(bpffs, "bpfnet", "links"))) if os.path.isdir(
        os.path.join(bpffs, "bpfnet", "links")) else set()
    if stale_pins:
        problems.append(f"endpoint links of an earlier version still pinned: {sorted(stale_pins)}")
    for veth in sorted(owned & set(endpoints)):
        tc = subprocess.run(["tc", "filter", "show", "dev", veth, "ingress"], capture_output=True,
                            text=True).stdout
        programs = sum("bpfnet_from_ep" in line for line in tc.splitlines())
        want = 1 if veth in bpf_eps else 0
        if programs != want:
            problems.append(f"{veth} carries {programs} endpoint programs, expected {want}")
    ports = {(e["key"]["host_port"], e["key"]["proto"]) for e in dump("bpfnet_pub_port")}
    want_ports = set()
    for veth, (_, net, _, published) in endpoints.items():
        if veth in bpf_eps:
            for p in published:  # "0.0.0.0:18080->80/tcp"
                host, _, rest = p.partition("->")
                want_ports.add((int(host.rsplit(":", 1)[1]), rest.rsplit("/", 1)[1]))
    if ports != want_ports:
        problems.append(f"bpfnet_pub_port holds {sorted(ports)}, the store publishes {sorted(want_ports)}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)

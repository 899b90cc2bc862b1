"""Per-packet cost of each BPF program: representative packets run through the live programs with
BPF_PROG_TEST_RUN (`bpftool prog run ... repeat N`: the kernel runs the program N times on the
packet and reports the average), and each program's size as the verifier saw it. The programs are
the ones a private bpfnetd attached to a network of two sandboxes with a published port; packets
are crafted for those endpoints, and the program context names the interface they arrive on.
Nothing is sent anywhere: test runs do not transmit.

Two timing methods, each in a column of its own and measured the same way for every row it has:
  repeat   `repeat N` (N = 1,000,000; 20,000 with --quick): the kernel's average over N runs on the
           same buffer. A program that rewrites its packet (an ARP answer, a DNAT) would see its
           own output from the second run on, so those rows have no value in this column.
  single   `repeat 1`, run K times (200; 20 with --quick): the median of the single durations
           (each includes the kernel's timer overhead around one run), for every row.
The per-run sample of a column is its value in one run; the report gives the median over --runs."""

import json
import os
import re
import signal
import statistics
import struct
import subprocess
import tempfile
import time

from benchlib import PID, log, sh, unmount_agent_dirs

NAME = "prog_cost"
TITLE = "Per-packet cost of each BPF program (BPF_PROG_TEST_RUN) and verifier instruction counts"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip4(text):
    return bytes(int(x) for x in text.split("."))


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def ipv4(src, dst, proto, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, ip4(src), ip4(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def eth(src_mac, dst_mac, ethertype, payload):
    frame = mac(dst_mac) + mac(src_mac) + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def udp(src, dst, sport, dport, size=64):
    body = b"x" * max(0, size - 14 - 20 - 8)
    seg = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    return ipv4(src, dst, 17, seg)


def tcp_syn(src, dst, sport, dport):
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(seg))
    seg = seg[:16] + struct.pack("!H", checksum(pseudo + seg)) + seg[18:]
    return ipv4(src, dst, 6, seg)


def arp_request(src_mac, src_ip, target_ip):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac(src_mac), ip4(src_ip), b"\0" * 6, ip4(target_ip))
    return eth(src_mac, "ff:ff:ff:ff:ff:ff", 0x0806, body)


def run_prog(prog_id, packet, ifindex, repeat, work):
    data, ctx = os.path.join(work, "pkt"), os.path.join(work, "ctx")
    with open(data, "wb") as f:
        f.write(packet)
    with open(ctx, "wb") as f:  # struct __sk_buff up to ifindex (offset 40): the arriving device
        f.write(b"\0" * 40 + struct.pack("=I", ifindex))
    out = sh("bpftool", "prog", "run", "id", str(prog_id), "data_in", data, "ctx_in", ctx,
             "repeat", str(repeat), capture=True).stdout
    # "Return value: 7, duration (average): 43ns" ("duration: ..." for a single run)
    m = re.search(r"Return value: (\d+), duration(?: \(average\))?: (\d+)ns", out)
    if not m:
        raise RuntimeError(f"bpftool prog run printed {out!r}")
    return int(m.group(1)), float(m.group(2))


def run(opts):
    work = tempfile.mkdtemp(prefix="bnb-prog.")
    run_dir, bpffs = os.path.join(work, "run"), os.path.join(work, "bpffs")
    client_ns, uplink = f"bnbq{PID}c", f"bnbq{PID}u"[:15]
    sh("ip", "netns", "add", client_ns)
    sh("ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", client_ns)
    sh("ip", "addr", "add", "10.244.255.1/30", "dev", uplink)
    sh("ip", "link", "set", uplink, "up")
    log_file = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen(
        [os.path.join(opts.bin_dir, "bpfnetd"), "--state-dir", f"{work}/state", "--run-dir", run_dir,
         "--bpffs-root", bpffs, "--netns-dir", f"{work}/netns", "--plugin-socket", "",
         "--uplink", uplink, "--default-bridge", "none"], stdout=log_file, stderr=log_file)
    bn = [os.path.join(opts.bin_dir, "bpfnet"), "--run-dir", run_dir, "--bpffs-root", bpffs]
    net = f"bnbq{PID}"
    repeat = 20000 if opts.quick else 1000000
    results = {}
    try:
        for _ in range(100):
            if subprocess.run(bn + ["version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        sh(*bn, "network", "create", "--subnet", "10.244.0.0/24", net)
        sh(*bn, "sandbox", "create", "--network", net, "a")
        sh(*bn, "sandbox", "create", "--network", net, "--publish", "18888:80", "b")
        eps = {e["sandbox"]: e for e in json.loads(sh(*bn, "endpoint", "list", "--format", "json", capture=True).stdout)}
        a, b = eps["a"], eps["b"]
        gw_mac = json.loads(sh(*bn, "map", "dump", "bpfnet_net", "--json", capture=True).stdout)[0]["value"]["gateway_mac"]
        progs = json.loads(sh(*bn, "prog", "list", "--format", "json", capture=True).stdout)
        by_if = {p["interface"]: p for p in progs}
        ep_prog, up_prog = by_if[a["interface"]], by_if[uplink]
        a_if = int(a["ifindex"])
        up_if = int(open(f"/sys/class/net/{uplink}/ifindex").read())
        client_mac = "02:00:00:00:00:09"
        up_mac = open(f"/sys/class/net/{uplink}/address").read().strip()
        # (role, program, arriving ifindex, short label, what, packet, rewrites the packet)
        cases = [
            ("endpoint", ep_prog, a_if, "ep: forward", "UDP 64 B to an endpoint of the network (redirect_peer)",
             eth(a["mac"], b["mac"], 0x0800, udp(a["ip"], b["ip"], 40000, 5353)), False),
            ("endpoint", ep_prog, a_if, "ep: to stack", "UDP 64 B leaving the network (to the stack)",
             eth(a["mac"], gw_mac, 0x0800, udp(a["ip"], "192.0.2.1", 40000, 53)), False),
            ("endpoint", ep_prog, a_if, "ep: ARP reply", "ARP request for the gateway (answered in BPF)",
             arp_request(a["mac"], a["ip"], "10.244.0.1"), True),
            ("endpoint", ep_prog, a_if, "ep: spoof drop", "spoofed source address (dropped, counted, event)",
             eth(a["mac"], b["mac"], 0x0800, udp("10.244.0.99", b["ip"], 40000, 5353)), False),
            ("uplink", up_prog, up_if, "uplink: DNAT", "TCP to a published port, flow in conntrack (DNAT)",
             eth(client_mac, up_mac, 0x0800, tcp_syn("10.244.255.2", "10.244.255.1", 41000, 18888)), True),
            ("uplink", up_prog, up_if, "uplink: to stack", "UDP to an unpublished port (to the stack)",
             eth(client_mac, up_mac, 0x0800, udp("10.244.255.2", "10.244.255.1", 41000, 9999)), False),
        ]
        singles = 20 if opts.quick else 200
        samples = {}
        for run_no in range(opts.runs):
            for role, prog, ifindex, label, what, packet, rewrites in cases:
                runs = [run_prog(prog["prog_id"], packet, ifindex, 1, work) for _ in range(singles)]
                retval, single = runs[-1][0], statistics.median(r[1] for r in runs)
                c = samples.setdefault(what, {"role": role, "program": prog["name"], "label": label,
                                              "verdict": retval, "rewrites_packet": rewrites,
                                              "ns_repeat_avg": [], "ns_single_median": []})
                c["ns_single_median"].append(single)
                shown = f"single-run median {single:.0f} ns"
                if not rewrites:
                    retval_r, avg = run_prog(prog["prog_id"], packet, ifindex, repeat, work)
                    if retval_r != retval:
                        raise RuntimeError(f"{what}: verdict {retval_r} with repeat, {retval} single")
                    c["ns_repeat_avg"].append(avg)
                    shown += f", repeat={repeat} average {avg:.0f} ns"
                log(f"prog_cost run {run_no + 1}: {prog['name']}: {what}: {shown} (verdict {retval})")
        sizes = {p["name"]: {"instructions": p["instructions"], "verified_instructions": p["verified_instructions"]}
                 for p in progs}
        results = {"cases": samples, "programs": sizes, "repeat": repeat, "single_runs": singles}
    finally:
        subprocess.run(bn + ["sandbox", "rm", "a", "b"], capture_output=True)
        subprocess.run(bn + ["network", "rm", net], capture_output=True)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        unmount_agent_dirs(work)
        sh("ip", "link", "del", uplink, check=False)
        sh("ip", "netns", "del", client_ns, check=False)
        sh("rm", "-rf", work, check=False)
    verdicts = {0: "to stack", 2: "drop", 7: "redirect"}

    def col(xs):
        if not xs:
            return "- (rewrites its packet) | -"
        return f"{statistics.median(xs):.0f} | [{min(xs):.0f}, {max(xs):.0f}]"
    text = [f"Two timing methods, one per column, each measured the same way on every row it has: "
            f"**repeat** = the kernel's average over repeat={results['repeat']:,} runs on one buffer "
            f"(not for packets the program rewrites: from the second run on it would see its own "
            f"output); **single** = the median of {results['single_runs']} runs with repeat=1 (includes "
            f"the timer overhead around one run). Medians over {opts.runs} runs, [min, max].", "",
            f"| program | packet | verdict | repeat={results['repeat']:,} avg ns | spread | "
            f"single-run median ns | spread |", "|---|---|---|---|---|---|---|"]
    for what, c in results["cases"].items():
        text.append(f"| {c['program']} | {what} | {verdicts.get(c['verdict'], c['verdict'])} | "
                    f"{col(c['ns_repeat_avg'])} | {col(c['ns_single_median'])} |")
    text += ["", "| program | instructions (translated) | instructions the verifier processed |", "|---|---|---|"]
    for name, size in sorted(results["programs"].items()):
        text.append(f"| {name} | {size['instructions']} | {size['verified_instructions']} |")
    text.append("")
    plots = [{"file": "prog-cost.png",
              "title": f"BPF program cost, ns/packet (repeat={results['repeat']:,} average; packets the "
                       "program rewrites are not timed this way)",
              "ylabel": "ns/packet", "kind": "bars",
              "series": {c["label"]: [statistics.median(c["ns_repeat_avg"]), min(c["ns_repeat_avg"]),
                                      max(c["ns_repeat_avg"])]
                         for c in results["cases"].values() if c["ns_repeat_avg"]}},
             {"file": "prog-cost-single.png",
              "title": f"BPF program cost, ns/packet (median of {results['single_runs']} single runs)",
              "ylabel": "ns/packet", "kind": "bars",
              "series": {c["label"]: [statistics.median(c["ns_single_median"]), min(c["ns_single_median"]),
                                      max(c["ns_single_median"])]
                         for c in results["cases"].values()}}]
    return {"title": TITLE, "text": text, "plots": plots, "targets": [], "data": results}

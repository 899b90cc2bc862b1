"""One sample of one metric on one variant: server in the variant's server namespace, client in its
client namespace, each pinned to its own CPU (client and the datapath's softirq work on CPU 0, server
on the last CPU) unless pinning is off. Raw tool output goes to the raw directory."""

import json
import os
import re
import subprocess
import time

from util import finish, in_ns, run, spawn

# metric -> (title, unit, higher is better, group)
METRICS = {
    "tcp_gbps": ("TCP throughput", "Gbit/s", True, "tcp"),
    "udp_pps": ("UDP 64-byte packet rate", "Mpps", True, "udp"),
    "lat_p50_us": ("TCP latency p50", "us", False, "latency"),
    "lat_p99_us": ("TCP latency p99", "us", False, "latency"),
}
GROUPS = ["tcp", "udp", "latency"]


class Measurer:
    def __init__(self, raw_dir, durations, pin, udp_tool, udpflood_bin, verbose=False):
        self.raw_dir = raw_dir
        self.durations = durations  # group -> seconds
        cpus = os.cpu_count() or 1
        self.client_cpu, self.server_cpu = (0, cpus - 1) if pin and cpus > 1 else (None, None)
        self.udp_tool = udp_tool
        self.udpflood = udpflood_bin
        self.verbose = verbose
        self.port = 20000

    def next_port(self):
        self.port += 1
        return str(self.port)

    def save(self, name, text):
        with open(os.path.join(self.raw_dir, name), "w") as f:
            f.write(text)

    def server(self, variant, proto, port, cmd):
        """Starts a server and waits until its socket is bound in the server namespace."""
        p = spawn(in_ns(variant.server_ns, self.server_cpu, *cmd), verbose=self.verbose)
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        deadline = time.time() + 10
        while not run(["nsenter", f"--net={variant.server_ns}", "ss", flag, f"sport = :{port}"],
                      check=False).stdout.strip():
            if p.poll() is not None or time.time() > deadline:
                rc, out, err = finish(p, 1)
                raise RuntimeError(f"{cmd[0]} server did not start ({rc}): {err.strip() or out.strip()}")
            time.sleep(0.05)
        return p

    def client(self, variant, cmd, timeout):
        return run(in_ns(variant.client_ns, self.client_cpu, *cmd), check=False, timeout=timeout,
                   verbose=self.verbose)

    def measure(self, group, variant, tag):
        seconds = self.durations[group]
        if group == "tcp":
            return self.iperf3(variant, seconds, tag, udp=False)
        if group == "udp":
            if self.udp_tool == "iperf3":
                return self.iperf3(variant, seconds, tag, udp=True)
            return self.udp_flood(variant, seconds, tag)
        return self.sockperf(variant, seconds, tag)

    def iperf3(self, variant, seconds, tag, udp):
        port = self.next_port()
        srv = self.server(variant, "tcp", port, ["iperf3", "-s", "-1", "-B", variant.server_ip, "-p", port])
        try:
            args = ["iperf3", "-c", variant.server_ip, "-p", port, "-t", str(seconds), "-J"]
            if udp:
                args += ["-u", "-l", "64", "-b", "0"]
            res = self.client(variant, args, seconds + 30)
        finally:
            finish(srv, 10)
        self.save(f"{tag}.iperf3.json", res.stdout)
        try:
            doc = json.loads(res.stdout)
        except ValueError:
            doc = {"error": res.stderr.strip() or "no output"}
        if res.returncode != 0 or "error" in doc:
            raise RuntimeError(f"iperf3 failed: {doc.get('error')}")
        end = doc["end"]
        cpu = end.get("cpu_utilization_percent", {})
        extra = {"client_cpu_pct": round(cpu.get("host_total", 0), 1),
                 "server_cpu_pct": round(cpu.get("remote_total", 0), 1)}
        if not udp:
            extra["retransmits"] = end["sum_sent"].get("retransmits")
            return {"tcp_gbps": end["sum_received"]["bits_per_second"] / 1e9}, extra
        recv = end["sum_received"]
        received = recv["packets"] - recv["lost_packets"]
        extra.update(sent_pps=round(end["sum_sent"]["packets"] / end["sum_sent"]["seconds"]),
                     loss_pct=round(recv["lost_percent"], 2), tool="iperf3")
        return {"udp_pps": received / recv["seconds"] / 1e6}, extra

    def udp_flood(self, variant, seconds, tag):
        port = self.next_port()
        srv = self.server(variant, "udp", port, [self.udpflood, "recv", variant.server_ip, port, "20"])
        try:
            snd = self.client(variant, [self.udpflood, "send", variant.server_ip, port, str(seconds), "64"],
                              seconds + 30)
        finally:
            rc, out, err = finish(srv, 15)
        self.save(f"{tag}.udpflood.json", f"{snd.stdout}{out}")
        if snd.returncode != 0 or rc != 0:
            raise RuntimeError(f"udpflood failed: {snd.stderr.strip()} {err.strip()}")
        sent, got = json.loads(snd.stdout), json.loads(out)
        if got["seconds"] <= 0:
            raise RuntimeError(f"udpflood: too few datagrams arrived: {got}")
        extra = {"sent_pps": round(sent["sent"] / sent["seconds"]),
                 "loss_pct": round(100.0 * (sent["sent"] - got["received"]) / max(sent["sent"], 1), 2),
                 "socket_drops": got["socket_drops"], "tool": "udpflood"}
        return {"udp_pps": got["received"] / got["seconds"] / 1e6}, extra

    def sockperf(self, variant, seconds, tag):
        port = self.next_port()
        srv = self.server(variant, "tcp", port, ["sockperf", "sr", "--tcp", "-i", variant.server_ip, "-p", port])
        try:
            # --full-rtt: round trips (sockperf otherwise prints half of them); --no-rdtsc: clock_gettime
            # instead of a TSC calibrated at start, which is unreliable in VMs.
            res = self.client(variant, ["sockperf", "pp", "--tcp", "--full-rtt", "--no-rdtsc", "-i",
                                        variant.server_ip, "-p", port, "-t", str(seconds)], seconds + 30)
        finally:
            srv.kill()
            finish(srv, 5)
        self.save(f"{tag}.sockperf.txt", res.stdout + res.stderr)
        pct = {}
        for m in re.finditer(r"--->\s+percentile\s+([\d.]+)\s+=\s+([\d.]+)", res.stdout):
            pct[float(m.group(1))] = float(m.group(2))
        avg = re.search(r"Summary: (?:Round trip|Latency) is ([\d.]+) usec", res.stdout)
        obs = re.search(r"\[Valid Duration\].*?SentMessages=(\d+)", res.stdout)
        if res.returncode != 0 or 50.0 not in pct or 99.0 not in pct:
            raise RuntimeError(f"sockperf failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-500:]}")
        extra = {"avg_us": float(avg.group(1)) if avg else None, "p90_us": pct.get(90.0),
                 "p99_9_us": pct.get(99.9), "round_trips": int(obs.group(1)) if obs else None}
        return {"lat_p50_us": pct[50.0], "lat_p99_us": pct[99.0]}, extra


def tool_versions(udpflood_bin):
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return ((r.stdout or r.stderr).strip().splitlines() or ["?"])[0]
        except OSError:
            return "missing"
    return {"iperf3": first_line(["iperf3", "--version"]), "sockperf": first_line(["sockperf", "--version"]),
            "udpflood": f"bench/lib/udpflood.c ({os.path.basename(udpflood_bin)})",
            "cc": first_line(["cc", "--version"])}

"""What every benchmark shares: running commands, progress lines, the measurement tools (iperf3,
sockperf, wrk) run inside namespaces, CPU accounting from /proc/stat, summaries of repeated
samples, and the shape of a report section.

A benchmark module exposes NAME, TITLE and run(opts) -> Section, where opts has bin_dir, runs,
quick and seconds, and a Section is a dict:
  title     the heading of its part of report.md
  text      markdown lines (tables) for the report
  targets   [{"what", "target", "measured", "met"}]: the issue's targets, ratios vs the stock path
  data      anything worth keeping in results.json (raw samples, medians)
  plots     [{"file", "title", "ylabel", "xlabel", "kind": "bars"|"lines", "logx", "series"}]:
            bars: series = {label: [value, low, high]}; lines: series = {label: [[x, y], ...]}
"""

import json
import os
import re
import statistics
import subprocess
import time

PID = os.getpid()


def sh(*cmd, check=True, capture=False, timeout=120, input=None):
    return subprocess.run(cmd, check=check, text=True, timeout=timeout, input=input,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL)


def unmount_agent_dirs(work):
    """What a private bpfnetd mounted under its work directory (sandbox namespaces, bpffs), lazily,
    deepest first; called once the agent has stopped."""
    for sub in ("netns", "bpffs"):
        d = os.path.join(work, sub)
        for f in (os.listdir(d) if os.path.isdir(d) else []):
            sh("umount", "-l", os.path.join(d, f), check=False)
        sh("umount", "-l", d, check=False)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def in_ns(path, *cmd):
    return ["nsenter", f"--net={path}", *cmd]


_port = 5200 + PID % 1000


def free_port():
    global _port
    _port += 1
    return _port


class CpuMeter:
    """CPU seconds the whole machine spent busy (not idle, not waiting for I/O) between start()
    and stop(): the benchmark's traffic dominates that on an otherwise quiet host."""

    def __init__(self):
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.begin = None

    @staticmethod
    def _busy_jiffies():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]) - idle

    def start(self):
        self.begin = self._busy_jiffies()

    def stop(self):
        return (self._busy_jiffies() - self.begin) / self.ticks


def iperf3(variant, metric, seconds):
    """TCP Gbit/s or UDP 64-byte Mpps from client to server of `variant` (client netns, server
    netns, server ip), with the CPU seconds the machine spent meanwhile."""
    client, server, ip = variant
    port = str(free_port())
    srv = subprocess.Popen(in_ns(server, "iperf3", "-s", "-1", "-p", port), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    cpu = CpuMeter()
    try:
        args = ["iperf3", "-c", ip, "-p", port, "-t", str(seconds), "-J"]
        if metric == "udp_pps":
            args += ["-u", "-l", "64", "-b", "0"]
        cpu.start()
        out = json.loads(sh(*in_ns(client, *args), capture=True, timeout=seconds + 30).stdout)
        cpu_s = cpu.stop()
    finally:
        srv.kill()
        srv.wait()
    end = out["end"]
    if metric == "tcp_gbps":
        gbps = end["sum_received"]["bits_per_second"] / 1e9
        gigabytes = end["sum_received"]["bytes"] / 1e9
        return {"tcp_gbps": gbps, "tcp_cpu_s_per_gb": cpu_s / gigabytes if gigabytes else 0.0}
    s = end["sum"]
    packets = s["packets"] - s["lost_packets"]
    return {"udp_pps": packets / s["seconds"] / 1e6,
            "udp_cpu_s_per_mpkt": cpu_s / (packets / 1e6) if packets else 0.0}


def sockperf(variant, seconds):
    """TCP request/response latency p50/p99 (us)."""
    client, server, ip = variant
    port = str(free_port())
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


def measure(variant, metric, seconds):
    """One sample of `metric` group ("tcp_gbps", "udp_pps" or "latency"): a dict of values."""
    if metric == "latency":
        return sockperf(variant, seconds)
    return iperf3(variant, metric, seconds)


def wrk(ns_path, url, seconds, close):
    """HTTP requests/s from wrk -t1 -c32 (new connections each with `close`)."""
    cmd = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    if ns_path:
        cmd = in_ns(ns_path, *cmd)
    out = sh(*cmd, capture=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk printed no rate: {out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and int(errors.group(1)) + int(errors.group(4)) > 0:
        log(f"wrk {url}: {errors.group(0)}")
    return float(m.group(1))


def summary(values):
    """Median and spread of repeated samples."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def target(what, ratio, bound, op):
    met = ratio >= bound if op == ">=" else ratio <= bound
    return {"what": what, "target": f"{op} {bound}x", "measured": round(ratio, 3), "met": met}


# Metric names, units and whether more is better, for tables and plots.
METRICS = {
    "tcp_gbps": ("TCP throughput, one stream (iperf3)", "Gbit/s", True),
    "udp_pps": ("UDP 64-byte packet rate received (iperf3 -u -l 64 -b 0)", "Mpps", True),
    "lat_p50_us": ("TCP request/response latency p50 (sockperf ping-pong)", "us", False),
    "lat_p99_us": ("TCP request/response latency p99 (sockperf ping-pong)", "us", False),
    "tcp_cpu_s_per_gb": ("CPU cost of TCP throughput (machine CPU seconds per GB)", "CPU s/GB", False),
    "udp_cpu_s_per_mpkt": ("CPU cost of 64-byte UDP (machine CPU seconds per million packets)",
                           "CPU s/Mpkt", False),
}


def comparison_section(samples, variants, reference, others=()):
    """Markdown tables (one per metric: median, [min, max], ratios vs `reference` and `others`)
    and bar plots for samples[metric][variant] = [values]."""
    text, plots = [], []
    medians = {m: {v: statistics.median(xs) for v, xs in per.items()} for m, per in samples.items()}
    refs = [reference, *others]
    for metric, per in samples.items():
        title, unit, _ = METRICS[metric]
        text += [f"#### {title}", "",
                 f"| variant | median ({unit}) | spread | " + " | ".join(f"vs {r}" for r in refs) + " |",
                 "|---|---|---|" + "---|" * len(refs)]
        for v in variants:
            if v not in per:
                continue
            med = medians[metric][v]
            ratios = [f"{med / medians[metric][r]:.2f}x" if medians[metric].get(r) else "-" for r in refs]
            text.append(f"| {v} | {med:.3f} | [{min(per[v]):.3f}, {max(per[v]):.3f}] | " + " | ".join(ratios) + " |")
        text.append("")
        plots.append({"metric": metric, "title": title, "ylabel": unit, "kind": "bars",
                      "series": {v: [medians[metric][v], min(per[v]), max(per[v])] for v in variants if v in per}})
    return text, plots, medians

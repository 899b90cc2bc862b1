"""What every benchmark shares: running commands, progress lines, the measurement tools run
inside namespaces (udp_send/udp_recv for packet rates, iperf3 for TCP throughput, sockperf, wrk),
per-CPU accounting from /proc/stat, targets with bootstrap intervals (stats.py), and the shape of
a report section.

A benchmark module exposes NAME, TITLE and run(opts) -> Section, where opts has bin_dir, runs,
quick and seconds, and a Section is a dict:
  title     the heading of its part of report.md
  text      markdown lines (tables) for the report
  targets   [{"what", "target", "bound", "op", "measured", "ci95", "runs", "verdict", "spread"}]:
            the issues' targets, ratios of medians vs the stock path (stats.ratio_target)
  data      anything worth keeping in results.json (raw samples, medians)
  plots     [{"file", "title", "ylabel", "xlabel", "kind": "bars"|"lines", "logx", "categorical_x", "series"}]:
            bars: series = {label: [value, low, high]}; lines: series = {label: [[x, y], ...]}
            or {label: [[x, y, low, high], ...]} (error bars: an interval at every point);
            "categorical_x": the points' x values evenly spaced and labelled (when one is 0)
"""

import http.client
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import stats

PID = os.getpid()


def sh(*cmd, check=True, capture=False, timeout=120, input=None):
    """Runs a command. stderr is always kept so that a failing command's error says why."""
    result = subprocess.run(cmd, check=False, text=True, timeout=timeout, input=input,
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {result.returncode}: "
                           f"{result.stderr.strip()}")
    return result


def unmount_agent_dirs(work):
    """What a private bpfnetd mounted under its work directory (sandbox namespaces, bpffs), lazily,
    deepest first; called once the agent has stopped."""
    for sub in ("netns", "bpffs"):
        d = os.path.join(work, sub)
        for f in (os.listdir(d) if os.path.isdir(d) else []):
            sh("umount", "-l", os.path.join(d, f), check=False)
        sh("umount", "-l", d, check=False)


class UnixHttp(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Api:
    """bpfnet's native API over its unix socket, one keep-alive connection (as a client library
    would use it)."""

    def __init__(self, run_dir, timeout=120):
        self.conn = UnixHttp(os.path.join(run_dir, "bpfnetd.sock"), timeout)

    def call(self, method, path, body=None):
        self.conn.request(method, "/v1" + path, body=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:200]!r}")
        return json.loads(data) if data else None


class PrivateAgent:
    """A bpfnetd of the benchmark's own: state, run, bpffs and netns directories in a temporary
    directory, no Docker plugin socket, no default bridge, an uplink program only where asked. stop() removes every
    sandbox and network through the API (a stopped agent leaves its networks up), stops the agent,
    then removes whatever its instance still left on the host (links by their alias, nftables
    tables, its DOCKER-USER rule), unmounts and deletes the directories: safe to call after any
    failure. stop(discard=True) skips the API: the agent stops with everything up, its sandboxes'
    namespaces are unmounted (the kernel destroys them and their veths in one batch, where the
    agent removes one veth at a time, ~50 ms each) and the rest goes as after a crash: for
    populations of endpoints whose removal nobody measures."""

    def __init__(self, bin_dir, prefix, uplink="none"):
        self.bin_dir = bin_dir
        self.uplink = uplink  # the device its uplink program goes on, "none" for none
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.run_dir = os.path.join(self.work, "run")
        self.proc = None
        self.api = None
        self.instance = None
        self.had_docker_user = True  # until start() looks

    def start(self, timeout=20):
        # The agent makes DOCKER-USER and FORWARD's jump to it when missing (docker_user_chain.h);
        # stop() removes them after a crashed agent only if they were not there before.
        self.had_docker_user = sh("iptables", "-w", "-S", "DOCKER-USER", check=False).returncode == 0
        log_file = open(os.path.join(self.work, "agent.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(self.bin_dir, "bpfnetd"), "--state-dir", f"{self.work}/state", "--run-dir",
             self.run_dir, "--bpffs-root", f"{self.work}/bpffs", "--netns-dir", f"{self.work}/netns",
             "--plugin-socket", "", "--uplink", self.uplink, "--default-bridge", "none"],
            stdout=log_file, stderr=log_file)
        log_file.close()
        deadline = time.monotonic() + timeout
        while True:  # poll until the API answers
            if self.proc.poll() is not None:
                raise RuntimeError(f"bpfnetd exited at start: {self.log_tail()}")
            if os.path.exists(os.path.join(self.run_dir, "bpfnetd.sock")):
                try:
                    self.api = Api(self.run_dir)
                    self.instance = self.api.call("GET", "/version")["Instance"]
                    return self.api
                except (OSError, http.client.HTTPException, RuntimeError):
                    self.api = None
            if time.monotonic() > deadline:
                raise RuntimeError(f"bpfnetd did not answer within {timeout} s: {self.log_tail()}")
            time.sleep(0.05)

    def _owned_links(self):
        tag = f"alias bpfnet:{self.instance}:"
        return [line for line in sh("ip", "-o", "-d", "link", "show", capture=True, check=False).stdout.splitlines()
                if tag in line]

    def _veth_names(self):
        return [line.split(": ")[1].split("@")[0] for line in self._owned_links() if " veth " in line]

    def _wait_gone(self, names, timeout=60):
        """Polls until the kernel has destroyed these links (the veths of unmounted namespaces)."""
        deadline = time.monotonic() + timeout
        while any(os.path.exists(f"/sys/class/net/{n}") for n in names) and time.monotonic() < deadline:
            time.sleep(0.05)

    def bn(self, *args, **kw):
        """The bpfnet CLI against this agent."""
        return sh(os.path.join(self.bin_dir, "bpfnet"), "--run-dir", self.run_dir, *args, **kw)

    def log_tail(self, chars=1500):
        try:
            return open(os.path.join(self.work, "agent.log")).read()[-chars:]
        except OSError:
            return ""

    def stop(self, discard=False):
        try:
            if self.proc and self.proc.poll() is None and discard:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=30)
                veths = self._veth_names()
                unmount_agent_dirs(self.work)
                self._wait_gone(veths)
            elif self.proc and self.proc.poll() is None:
                api = Api(self.run_dir)  # a fresh connection: the measuring one may be mid-request
                for what in ("sandboxes", "networks"):
                    try:
                        names = [x["Name"] for x in api.call("GET", f"/{what}")]
                    except Exception:  # noqa: BLE001 - removal below is best effort
                        api, names = Api(self.run_dir), []
                    for name in names:
                        try:
                            api.call("DELETE", f"/{what}/{name}")
                        except Exception:  # noqa: BLE001 - builtin networks (host, none) stay
                            api = Api(self.run_dir)
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.instance:  # what the agent could not remove
                for line in self._owned_links():
                    sh("ip", "link", "del", line.split(": ")[1].split("@")[0], check=False)
                for family in ("ip", "ip6", "bridge", "inet"):
                    sh("nft", "delete", "table", family, f"bpfnet_{self.instance}", check=False)
                # Its accept rule in iptables' DOCKER-USER (docker_user_chain.h), by its comment.
                rules = sh("iptables", "-w", "-S", "DOCKER-USER", capture=True, check=False).stdout
                for rule in rules.splitlines():
                    if rule.startswith("-A ") and f'--comment "bpfnet {self.instance}:' in rule:
                        sh("iptables", "-w", "-D", *shlex.split(rule)[1:], check=False)
                left = sh("iptables", "-w", "-S", "DOCKER-USER", capture=True, check=False)
                if not self.had_docker_user and left.returncode == 0 and left.stdout.strip() == "-N DOCKER-USER":
                    sh("iptables", "-w", "-D", "FORWARD", "-j", "DOCKER-USER", check=False)
                    sh("iptables", "-w", "-X", "DOCKER-USER", check=False)
            unmount_agent_dirs(self.work)
            sh("rm", "-rf", self.work, check=False)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def in_ns(path, *cmd):
    return ["nsenter", f"--net={path}", *cmd]


_port = 5200 + PID % 1000


def free_port():
    global _port
    _port += 1
    return _port


# Where the load generators run: the sender on one CPU, the receiver on the other (taskset), so
# the two never compete for a core and each run puts the same work on the same CPU. For veth
# pairs the kernel does the receive-side softirq work on the sending CPU (the veth's NAPI/backlog
# runs where the packet was transmitted): the per-CPU accounting below shows where it went.
NCPUS = os.cpu_count() or 1
SEND_CPU = "0"
RECV_CPU = "1" if NCPUS > 1 else "0"
TOOLS_DIR = os.environ.get("BNB_TOOLS_DIR", "")  # udp_send/udp_recv, built by bench/run
UDP_PAYLOAD = 64


def pinned(cpu, *cmd):
    return ["taskset", "-c", cpu, *cmd]


def tool(name):
    path = os.path.join(TOOLS_DIR, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: bench/run builds it (BNB_TOOLS_DIR)")
    return path


class CpuMeter:
    """CPU time per CPU between start() and stop(), from /proc/stat: user (with nice), sys,
    softirq (with hardirq) and busy (everything but idle and iowait), in seconds. `busy_s` is the
    whole machine's: the benchmark's traffic dominates it on an otherwise quiet host."""

    def __init__(self):
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.begin = None

    @staticmethod
    def _read():
        cpus = {}
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *fields = line.split()
                fields = [int(x) for x in fields] + [0] * 8
                idle = fields[3] + fields[4]
                cpus[name] = {"user": fields[0] + fields[1], "sys": fields[2], "softirq": fields[5] + fields[6],
                              "busy": sum(fields[:8]) - idle}
        return cpus

    def start(self):
        self.begin = self._read()

    def stop(self):
        end = self._read()
        per_cpu = {c: {k: (end[c][k] - self.begin[c][k]) / self.ticks for k in end[c]}
                   for c in end if c != "cpu"}
        return {"busy_s": (end["cpu"]["busy"] - self.begin["cpu"]["busy"]) / self.ticks, "per_cpu": per_cpu}


def wait_listening(netns, port, timeout=10):
    """Polls until a TCP socket listens on `port` in `netns` (a server just started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sh(*in_ns(netns, "ss", "-Hltn", f"sport = :{port}"), capture=True, check=False).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on TCP port {port} in {netns} after {timeout} s")


def iperf3_tcp(variant, seconds):
    """TCP Gbit/s from client to server of `variant` (client netns, server netns, server ip), one
    stream, client and server pinned like the UDP tools, with the CPU seconds the machine spent."""
    client, server, ip = variant
    port = str(free_port())
    srv = subprocess.Popen(in_ns(server, *pinned(RECV_CPU, "iperf3", "-s", "-1", "-p", port)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = CpuMeter()
    try:
        wait_listening(server, port)
        cpu.start()
        out = json.loads(sh(*in_ns(client, *pinned(SEND_CPU, "iperf3", "-c", ip, "-p", port, "-t",
                                                   str(seconds), "-J")),
                            capture=True, timeout=seconds + 30).stdout)
        used = cpu.stop()
    finally:
        srv.kill()
        srv.wait()
    end = out["end"]
    gbps = end["sum_received"]["bits_per_second"] / 1e9
    gigabytes = end["sum_received"]["bytes"] / 1e9
    return {"tcp_gbps": gbps, "tcp_cpu_s_per_gb": used["busy_s"] / gigabytes if gigabytes else 0.0}


def udp_flood(client, server, ip, seconds, port=None, dport=None):
    """UDP packet rate from `client` (a netns path, or None for the host) to ip:port in `server`
    (netns path or None; the sender aims at `dport` instead when given, a published port):
    udp_recv pinned to RECV_CPU, udp_send (sendmmsg batches of 64-byte payloads, flat out) pinned
    to SEND_CPU. Returns the received rate (Mpps), the CPU seconds per million received packets,
    the sender's own CPU (user + sys, as a share of its core), what was sent and the share lost,
    plus a "detail" dict (per-CPU times, both tools' raw output)."""
    port = str(port or free_port())
    recv_cmd = pinned(RECV_CPU, tool("udp_recv"), "-p", port, "-t", str(seconds + 15), "-i", "0.3")
    recv = subprocess.Popen(in_ns(server, *recv_cmd) if server else recv_cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        if recv.stdout.readline().strip() != "ready":
            raise RuntimeError(f"udp_recv did not start: {recv.stderr.read()[:300]}")
        send_cmd = pinned(SEND_CPU, tool("udp_send"), "-d", ip, "-p", str(dport or port), "-s", str(UDP_PAYLOAD),
                          "-t", str(seconds))
        cpu = CpuMeter()
        cpu.start()
        sent = json.loads(sh(*(in_ns(client, *send_cmd) if client else send_cmd), capture=True,
                             timeout=seconds + 30).stdout)
        used = cpu.stop()
        out, err = recv.communicate(timeout=30)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    got = json.loads(out.strip().splitlines()[-1])
    if not got["packets"]:
        raise RuntimeError(f"udp_recv on {ip}:{port} received nothing ({sent['packets']} sent)")
    mpkt = got["packets"] / 1e6
    window = got["window_s"] or sent["seconds"]
    sender_cpu = sent["cpu_user_s"] + sent["cpu_sys_s"]
    # The packets' CPU: kernel time on every CPU (sys + softirq ticks from /proc/stat: the send
    # path, veths, bridges, netfilter, BPF programs, the copy out of the socket all run there)
    # plus the two tools' own user time (getrusage). Each tick is counted once: the tools' kernel
    # time is in the per-CPU sys/softirq figures, their user time is not. Other processes' user
    # time on a shared machine is left out (their sys time cannot be told apart); the machine-wide
    # busy time is kept in the detail.
    kernel_s = sum(c["sys"] + c["softirq"] for c in used["per_cpu"].values())
    packet_cpu_s = kernel_s + sent["cpu_user_s"] + got["cpu_user_s"]
    return {"udp_pps": mpkt / window,
            "udp_cpu_s_per_mpkt": packet_cpu_s / mpkt,
            "udp_sender_cpu": sender_cpu / sent["seconds"],
            "udp_sent_pps": sent["packets"] / sent["seconds"] / 1e6,
            "udp_loss": max(0.0, 1 - got["packets"] / sent["packets"]) if sent["packets"] else 0.0,
            "detail": {"sent": sent, "received": got, "machine_busy_s": used["busy_s"],
                       "per_cpu": used["per_cpu"], "send_cpu": SEND_CPU, "recv_cpu": RECV_CPU}}


def sockperf(variant, seconds):
    """TCP request/response latency p50/p99 (us)."""
    client, server, ip = variant
    port = str(free_port())
    srv = subprocess.Popen(in_ns(server, "sockperf", "sr", "--tcp", "-i", ip, "-p", port),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(server, port)
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
    """One sample of `metric` group ("tcp_gbps", "udp_pps" or "latency"): a dict of values (and,
    for udp_pps, a "detail" dict that is not a metric)."""
    if metric == "latency":
        return sockperf(variant, seconds)
    if metric == "udp_pps":
        return udp_flood(*variant, seconds)
    return iperf3_tcp(variant, seconds)


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


def target(what, num, den, bound, op):
    """A target of the issues: median(num) / median(den) `op` bound, with its bootstrap 95%
    interval over the interleaved runs and the verdict that interval supports (stats.py)."""
    return stats.ratio_target(what, num, den, bound, op)


def targets_for(samples, variant, specs):
    """targets from specs [(metric, reference, bound, op)] for samples[metric][variant]."""
    return [target(f"{m} {variant} / {ref}", samples[m][variant], samples[m][ref], bound, op)
            for m, ref, bound, op in specs if m in samples and variant in samples[m] and ref in samples[m]]


# Metric names, units and whether more is better, for tables and plots.
METRICS = {
    "tcp_gbps": ("TCP throughput, one stream (iperf3)", "Gbit/s", True),
    "udp_pps": ("UDP packet rate received, 64-byte payloads (udp_send flat out, sendmmsg)", "Mpps", True),
    "lat_p50_us": ("TCP request/response latency p50 (sockperf ping-pong)", "us", False),
    "lat_p99_us": ("TCP request/response latency p99 (sockperf ping-pong)", "us", False),
    "tcp_cpu_s_per_gb": ("CPU cost of TCP throughput (machine CPU seconds per GB)", "CPU s/GB", False),
    "udp_cpu_s_per_mpkt": ("CPU cost of 64-byte UDP (CPU seconds per million packets received: sys + "
                           "softirq on all CPUs + the tools' user time)",
                           "CPU s/Mpkt", False),
    "udp_sender_cpu": ("The UDP generator's own CPU (udp_send user+sys, share of its pinned core)",
                       "share of a CPU", False),
    "udp_sent_pps": ("UDP packets the generator got into the kernel", "Mpps", True),
    "udp_loss": ("UDP packets sent but not received (share)", "share", False),
    "conn_per_s": ("New TCP connections per second (wrk -t1 -c32, a new connection per request)",
                   "conn/s", True),
}


def record(samples, details, name, values):
    """Adds one measure() result for variant `name` to samples[metric][name] and its detail (per-
    CPU times of a UDP run) to details[name]."""
    detail = values.pop("detail", None)
    if detail is not None:
        details.setdefault(name, []).append(detail)
    for key, value in values.items():
        samples.setdefault(key, {}).setdefault(name, []).append(value)


def cpu_table(details):
    """Markdown: where the CPU went during the UDP runs, per variant (medians over runs): per CPU
    user/sys/softirq seconds per million packets received, and the sender's own share."""
    if not details:
        return []
    cpus = sorted({c for runs in details.values() for d in runs for c in d["per_cpu"]})
    first = next(iter(details.values()))[0]
    text = [f"#### Where the CPU went during the UDP runs (sender pinned to CPU {first['send_cpu']}, "
            f"receiver to CPU {first['recv_cpu']}; CPU seconds per million packets received, medians)", "",
            "| variant | " + " | ".join(f"{c} user / sys / softirq" for c in cpus) + " | sender user+sys |",
            "|---|" + "---|" * len(cpus) + "---|"]
    for name, runs in details.items():
        cells = []
        for c in cpus:
            parts = []
            for k in ("user", "sys", "softirq"):
                parts.append(statistics.median(d["per_cpu"][c][k] / (d["received"]["packets"] / 1e6) for d in runs))
            cells.append(" / ".join(f"{x:.2f}" for x in parts))
        snd = statistics.median((d["sent"]["cpu_user_s"] + d["sent"]["cpu_sys_s"]) / (d["received"]["packets"] / 1e6)
                                for d in runs)
        text.append(f"| {name} | " + " | ".join(cells) + f" | {snd:.2f} |")
    return text + [""]


def comparison_section(samples, variants, reference, others=()):
    """Markdown tables (one per metric: median, [min, max], coefficient of variation over the
    runs, ratios of medians vs `reference` and `others`) and bar plots for
    samples[metric][variant] = [values]."""
    text, plots = [], []
    medians = {m: {v: statistics.median(xs) for v, xs in per.items()} for m, per in samples.items()}
    refs = [reference, *others]
    for metric in [m for m in METRICS if m in samples]:
        per = samples[metric]
        title, unit, _ = METRICS[metric]
        text += [f"#### {title}", "",
                 f"| variant | median ({unit}) | [min, max] | run-to-run CV | " +
                 " | ".join(f"vs {r}" for r in refs) + " |",
                 "|---|---|---|---|" + "---|" * len(refs)]
        for v in variants:
            if v not in per:
                continue
            med = medians[metric][v]
            ratios = [f"{med / medians[metric][r]:.2f}x" if medians[metric].get(r) else "-" for r in refs]
            cv = stats.spread(per[v])["cv"]
            text.append(f"| {v} | {med:.3f} | [{min(per[v]):.3f}, {max(per[v]):.3f}] | {cv * 100:.1f}% | "
                        + " | ".join(ratios) + " |")
        text.append("")
        plots.append({"metric": metric, "title": title, "ylabel": unit, "kind": "bars",
                      "series": {v: [medians[metric][v], min(per[v]), max(per[v])] for v in variants if v in per}})
    return text, plots, medians

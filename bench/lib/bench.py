#!/usr/bin/env python3
"""Same-host datapath benchmark (run it through bench/run, as root).

Two network namespaces exchange traffic over three paths built side by side: a direct veth pair (the
limit), a Linux bridge (docker's datapath) and a bpfnet network of a private bpfnetd (BPF datapath, or
its kernel fallback where the agent refuses BPF). Metrics: TCP throughput, 64-byte UDP packet rate,
TCP request/response latency p50/p99. Variants run interleaved, round-robin, --runs times; medians,
spread, ratios and target verdicts go to report.md and results.json. Traffic flows only between the
namespaces the bench creates (10.250.0.0/16); everything is removed on exit, Ctrl-C included."""

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import report
from measure import GROUPS, METRICS, Measurer, tool_versions
from topology import Topology, cleanup_stale
from util import ForeignLoad, fail, kill_all, log, run

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(HERE)


class Interrupted(BaseException):
    """A signal asked the bench to stop (derives from BaseException so no `except Exception` eats it)."""


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, help="interleaved rounds (default 5, or 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short samples (1-2 s) and 2 runs: a smoke test")
    ap.add_argument("--only", metavar="NAME[,NAME...]",
                    help="variants (direct, bridge, bpfnet) and/or metric groups (tcp, udp, latency) to run")
    ap.add_argument("--out", metavar="DIR", help="results directory (default bench/results/<date>-<host>)")
    ap.add_argument("--duration", type=float, metavar="S", help="seconds per sample (default 5; latency >= 2)")
    ap.add_argument("--udp-tool", choices=["udpflood", "iperf3"], default="udpflood",
                    help="64-byte UDP generator (default udpflood; see bench/README.md)")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place client and server")
    ap.add_argument("--tx-offload-off", action="store_true",
                    help="turn TX checksum offload off on every sandbox eth0 (needed only by XDP redirection)")
    ap.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                    help="extra bpfnetd argument, repeatable (e.g. --agent-arg=--probe-disable --agent-arg=bpf "
                         "to measure the kernel fallback)")
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(BENCH_DIR), "build", "tools"),
                    help="directory of bpfnetd and bpfnet (default build/tools)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every command")
    args = ap.parse_args(argv)
    variants, groups = [], []
    for token in (args.only.split(",") if args.only else []):
        token = token.strip()
        if token in report.VARIANTS:
            variants.append(token)
        elif token in GROUPS:
            groups.append(token)
        else:
            ap.error(f"--only: unknown name {token!r} (variants: {', '.join(report.VARIANTS)}; "
                     f"metric groups: {', '.join(GROUPS)})")
    args.variants = [v for v in report.VARIANTS if v in variants] or list(report.VARIANTS)
    args.groups = [g for g in GROUPS if g in groups] or list(GROUPS)
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.duration:
        d = args.duration
        args.durations = {"tcp": d, "udp": d, "latency": max(d, 2)}
    else:
        args.durations = {"tcp": 1, "udp": 1, "latency": 2} if args.quick else {"tcp": 5, "udp": 5, "latency": 5}
    for g, d in args.durations.items():
        args.durations[g] = int(d) if float(d).is_integer() else d
    return args


def check_tools(args):
    needed = {"ip": "iproute2", "ss": "iproute2", "nsenter": "util-linux", "taskset": "util-linux",
              "ping": "iputils-ping"}
    if "tcp" in args.groups or ("udp" in args.groups and args.udp_tool == "iperf3"):
        needed["iperf3"] = "iperf3"
    if "latency" in args.groups:
        needed["sockperf"] = "sockperf"
    if "udp" in args.groups and args.udp_tool == "udpflood":
        needed["cc"] = "build-essential"
    if args.tx_offload_off:
        needed["ethtool"] = "ethtool"
    if "bpfnet" in args.variants:
        needed["nft"] = "nftables"
    missing = sorted({pkg for tool, pkg in needed.items() if shutil.which(tool) is None})
    if missing:
        fail(f"missing tools; install them with ./scripts/install-deps.sh (packages: {' '.join(missing)})")


def environment():
    def read(path, default="?"):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return default
    nft = run(["nft", "list", "tables"], check=False).stdout.split("\n") if shutil.which("nft") else []
    return {"kernel": os.uname().release, "cpus": os.cpu_count(),
            "loadavg_start": " ".join(read("/proc/loadavg").split()[:3]),
            "bridge_nf_call_iptables": read("/proc/sys/net/bridge/bridge-nf-call-iptables", "n/a"),
            "nft_tables": ", ".join(t.removeprefix("table ").strip() for t in nft if t.strip())}


def build_udpflood(work):
    binary = os.path.join(work, "udpflood")
    run(["cc", "-O2", "-Wall", "-o", binary, os.path.join(HERE, "udpflood.c")], timeout=120)
    return binary


def check_paths(topo, verbose):
    """Every variant must carry traffic before the bench measures it."""
    for v in topo.variants.values():
        res = None
        for _ in range(3):
            res = run(["nsenter", f"--net={v.client_ns}", "ping", "-c", "1", "-W", "2", v.server_ip],
                      check=False, verbose=verbose)
            if res.returncode == 0:
                break
        if res.returncode != 0:
            raise RuntimeError(f"{v.name}: {v.client_ip} cannot reach {v.server_ip}: {res.stdout.strip()[-300:]}")


def tx_offload_off(topo, verbose):
    for v in topo.variants.values():
        for ns in (v.client_ns, v.server_ns):
            run(["nsenter", f"--net={ns}", "ethtool", "-K", "eth0", "tx", "off"], verbose=verbose)


def fmt_duration(s):
    s = int(s)
    return f"{s // 60}:{s % 60:02d}"


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        fail("needs root (namespaces, veths, bridges, BPF)")
    check_tools(args)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    host = socket.gethostname()
    today = datetime.date.today().isoformat()
    out_dir = os.path.abspath(args.out or os.path.join(BENCH_DIR, "results", f"{today}-{host}"))
    raw_dir = os.path.join(out_dir, "raw")
    shutil.rmtree(raw_dir, ignore_errors=True)
    os.makedirs(raw_dir)

    for what in cleanup_stale(tempfile.gettempdir()):
        log(f"removed leftover of a killed bench: {what}")
    work = tempfile.mkdtemp(prefix=f"bnb-{os.getpid()}.", dir=tempfile.gettempdir())
    topo = Topology(args.bin_dir, work, args.agent_arg, args.verbose)
    env = environment()
    samples = {m: {} for m, spec in METRICS.items() if spec[3] in args.groups}
    details, failures, interrupted = [], 0, None
    pinning = "unpinned"
    udpflood = None
    try:
        if "udp" in args.groups and args.udp_tool == "udpflood":
            udpflood = build_udpflood(work)
        log(f"building {', '.join(args.variants)} (namespaces bnb-{os.getpid()}-*, 10.250.0.0/16)")
        for name in args.variants:
            t0 = time.time()
            getattr(topo, f"build_{name}")()
            v = topo.variants[name]
            agent = f", agent instance {topo.agent_instance}" if name == "bpfnet" else ""
            log(f"  {v.label}: {v.client_ip} -> {v.server_ip} ready in {time.time() - t0:.1f} s{agent}")
        if args.tx_offload_off:
            tx_offload_off(topo, args.verbose)
        check_paths(topo, args.verbose)
        m = Measurer(raw_dir, args.durations, not args.no_pin, args.udp_tool, udpflood, args.verbose)
        if m.client_cpu is not None:
            pinning = (f"client (and the sender-side softirq work of the datapath) on CPU {m.client_cpu}, "
                       f"server on CPU {m.server_cpu}, with taskset")
        load = ForeignLoad()
        total = args.runs * len(args.groups) * len(args.variants)
        done, started = 0, time.time()
        for r in range(1, args.runs + 1):
            for group in args.groups:
                for name in args.variants:  # interleaved: drift on a shared machine hits every variant alike
                    v = topo.variants[name]
                    t0 = time.time()
                    load.start()
                    try:
                        values, extra = m.measure(group, v, f"run{r}-{group}-{name}")
                        error = None
                    except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
                        values, extra, error = {}, {}, str(exc)
                        failures += 1
                    other, steal = load.stop()
                    done += 1
                    wall = time.time() - t0
                    for k, x in values.items():
                        samples[k].setdefault(name, []).append(x)
                    details.append({"run": r, "group": group, "variant": name, "values": values, "extra": extra,
                                    "error": error, "seconds": round(wall, 2), "foreign_cpu_pct": other,
                                    "steal_pct": steal})
                    eta = (time.time() - started) / done * (total - done)
                    shown = error and f"FAILED: {error}" or ", ".join(
                        f"{k}={report.fmt(x, k)} {METRICS[k][1]}" for k, x in values.items())
                    log(f"[{done}/{total}] run {r}/{args.runs} {group:7s} {name:6s} {shown} "
                        f"({wall:.1f} s, other CPU {other}%{f', steal {steal}%' if steal else ''}, "
                        f"ETA {fmt_duration(eta)})")
    except Interrupted as exc:
        interrupted = str(exc)
        log(f"interrupted by {interrupted}; tearing down")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log(f"error: {exc}")
        failures += 1
        interrupted = f"error: {exc}"
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the teardown short
        kill_all()
        t0 = time.time()
        variants = {n: v.as_json() for n, v in topo.variants.items()}
        topo.teardown()
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(work):
            log(f"warning: could not remove {work} entirely")
        log(f"torn down in {time.time() - t0:.1f} s")

    if not details:
        log(f"no samples taken ({interrupted}); no report written")
        return 130 if interrupted and not interrupted.startswith("error") else 1
    env["loadavg_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "host": host,
            "runs": args.runs, "quick": args.quick, "durations": args.durations, "udp_tool": args.udp_tool,
            "pinning": pinning, "tx_offload_off": args.tx_offload_off, "agent_args": args.agent_arg,
            "interrupted": interrupted, "failures": failures, "environment": env,
            "tools": tool_versions(udpflood or "udpflood"), "selection": {"variants": args.variants,
                                                                           "groups": args.groups}}
    samples = {k: per for k, per in samples.items()}
    text, targets = report.write(out_dir, meta, variants, samples, details)
    print()
    print(text.split("\n## Samples")[0])
    log(f"report: {os.path.join(out_dir, 'report.md')} (raw tool output in {raw_dir})")
    if interrupted and not interrupted.startswith("error"):
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

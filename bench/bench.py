#!/usr/bin/env python3
"""bpfnet's benchmark suite: every datapath against the stock path it replaces, measured in one
run, reported side by side.

  same_host      two containers on one network: veth pair, Linux bridge as Docker configures it
                 (bridge-docker) and bare (bridge-bare), bpfnet (+ CPU cost per CPU)
  ports          published ports: iptables DNAT (1 and 10k rules), docker-proxy, dockerd's
                 --userland-proxy=false OUTPUT DNAT, bpfnet (TCP and UDP, + CPU cost)
  egress         a container reaching a server behind the uplink: routed limit, Docker's bridge +
                 MASQUERADE, bpfnet kernel and BPF (+ CPU cost, new connections/s)
  overlay        two hosts: kernel-vxlan (VXLAN + bridge) vs bpfnet's BPF overlay (+ CPU cost)
  scaling        conn/s vs published ports (1..10k); packet rate vs endpoints (2..1,000)
  control_plane  creating endpoints, publishing ports, one network connect: API vs ip/iptables;
                 one connect -p / connect vs ports published (0..10k) / endpoints on the host (0..4k)
  prog_cost      ns/packet of each BPF program (BPF_PROG_TEST_RUN), verifier instruction counts

Packet rates come from udp_send/udp_recv (built by bench/run, BNB_TOOLS_DIR), pinned to CPU0/CPU1.
Targets carry a 95% bootstrap interval and pass/miss/inconclusive (stats.py).
Results: bench/results/<date>-<host>/report.md, results.json and PNG plots (gnuplot). Every
benchmark builds and removes its own namespaces; traffic never leaves them (or loopback)."""

import argparse
import datetime
import os
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import control_plane  # noqa: E402
import egress  # noqa: E402
import overlay  # noqa: E402
import prog_cost  # noqa: E402
import published_ports  # noqa: E402
import report  # noqa: E402
import benchlib  # noqa: E402
import same_host  # noqa: E402
import scaling  # noqa: E402
from benchlib import log  # noqa: E402

SUITES = [same_host, published_ports, egress, overlay, scaling, control_plane, prog_cost]


def host_state():
    """The host-wide settings the baselines depend on, as they were (the benchmarks set theirs
    inside their own namespaces)."""
    def read(path):
        try:
            return open(path).read().strip()
        except OSError:
            return "absent"
    return {"br_netfilter": same_host.br_netfilter_presence(),
            "host bridge-nf-call-iptables": read("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            "host ip_forward": read("/proc/sys/net/ipv4/ip_forward"),
            "udp_send CPU": benchlib.SEND_CPU, "udp_recv CPU": benchlib.RECV_CPU}


def main():
    names = [s.NAME for s in SUITES]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="the build's tools directory (bpfnetd, bpfnet)")
    ap.add_argument("--only", help=f"comma-separated benchmarks to run (of {', '.join(names)})")
    ap.add_argument("--runs", type=int, default=5, help="repetitions of every measurement (default 5)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 s measurements, fewer points")
    ap.add_argument("--seconds", type=float, help="length of one measurement (default 5, --quick 1)")
    ap.add_argument("--out", help="results directory (default bench/results/<date>-<host>)")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmarks need root (namespaces, veths, bridges, BPF, iptables)")
    chosen = opts.only.split(",") if opts.only else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(names)}")
    opts.seconds = opts.seconds or (1 if opts.quick else 5)
    opts.seconds = int(opts.seconds) if float(opts.seconds).is_integer() else opts.seconds
    out_dir = opts.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                       f"{datetime.date.today().isoformat()}-{socket.gethostname()}")
    # SIGTERM and Ctrl-C unwind through every benchmark's cleanup (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sections = []
    interrupted = False
    for suite in [s for s in SUITES if s.NAME in chosen]:
        started = time.monotonic()
        log(f"=== {suite.NAME}: {suite.TITLE}")
        try:
            sections.append((suite.NAME, suite.run(opts)))
            log(f"=== {suite.NAME} done in {time.monotonic() - started:.0f}s")
        except KeyboardInterrupt:
            log(f"=== {suite.NAME} interrupted; its topology is removed")
            sections.append((suite.NAME, {"title": suite.TITLE, "error": "interrupted"}))
            interrupted = True
            break
        except Exception as exc:  # one failing benchmark does not lose the others' results
            traceback.print_exc()
            sections.append((suite.NAME, {"title": suite.TITLE, "error": f"{type(exc).__name__}: {exc}"}))
    path = report.write(out_dir, sections, {"runs": opts.runs, "quick": opts.quick, "seconds": opts.seconds,
                                            "benchmarks": chosen, "host_state": host_state()})
    log(f"report: {path}")
    failed = [n for n, s in sections if "error" in s]
    if failed:
        log(f"did not complete: {', '.join(failed)}")
    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Plumbing of the benchmark suite, not speed: `bench/run --quick --runs 1` must run every
# benchmark to the end and produce report.md with every section and the targets table (intervals,
# and no verdict from a single run), results.json with every benchmark's data (UDP rates from
# udp_send/udp_recv with per-CPU times, the bridge baselines' settings as read back), and the PNG
# plots; and leave no namespace, link, iptables chain, mount or host setting behind.
source "$(dirname "$0")/../e2e/lib.sh"
BENCH="$(cd "$(dirname "$0")/../../bench" && pwd)"
OUT="$WORK/results"
# Chains by name and policy, and rules; iptables-save's [packets:bytes] counters move with any traffic.
chains() { iptables-save -t "$1" | grep '^[:-]' | sed 's/ \[[0-9]*:[0-9]*\]$//'; }
# The host-wide settings a baseline could be tempted to change (the bridge ones live in the
# bench's own namespaces).
settings() { for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/ipv4/ip_forward; do echo "$f $(cat "$f" 2>/dev/null)"; done; }
snapshot() { { ip netns list; ip -o link show | awk -F': ' '{print $2}'; chains nat; chains filter; grep -c . /proc/mounts; settings; } | sort; }
snapshot >"$WORK/before"
BPFNET_BIN_DIR="$BPFNET_BIN_DIR" "$BENCH/run" --quick --runs 1 --out "$OUT" >"$WORK/bench.log" 2>&1 \
    || { grep -A30 '^Traceback' "$WORK/bench.log" >&2; tail -40 "$WORK/bench.log" >&2; die "bench/run --quick failed"; }
python3 - "$OUT" <<'PY' || die "the report is incomplete (see above)"
import json, os, sys
out = sys.argv[1]
report = open(os.path.join(out, "report.md")).read()
results = json.load(open(os.path.join(out, "results.json")))
expected = ["same_host", "ports", "egress", "overlay", "scaling", "control_plane", "prog_cost"]
assert list(results["sections"]) == expected, list(results["sections"])
assert "## Targets" in report and "| 95% interval |" in report, "no targets table with intervals"
assert "Did not run" not in report, "a benchmark did not run"
for name in expected:
    sec = results["sections"][name]
    assert "error" not in sec, (name, sec)
    assert f"## {sec['title']}" in report, ("no section", name)
    assert sec["data"], ("no data", name)
    for png in sec["plots"]:
        path = os.path.join(out, png)
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", ("not a PNG", path)
        assert f"]({png})" in report, ("plot not in the report", png)
plots = {p for s in results["sections"].values() for p in s["plots"]}
for want in ("scaling-ports.png", "scaling-endpoints.png", "same_host-tcp_gbps.png", "overlay-udp_pps.png",
             "same_host-udp_cpu_s_per_mpkt.png", "ports-udp_pps.png", "ports-udp_cpu_s_per_mpkt.png",
             "prog-cost.png", "prog-cost-single.png", "control-plane.png", "control-plane-ports.png",
             "control-plane-endpoints.png", "egress-udp_pps.png", "egress-conn_per_s.png"):
    assert want in plots, (want, sorted(plots))
# Targets: every one a ratio with a bootstrap interval and a verdict; one run decides nothing.
targets = {(n, t["what"]): t for n, s in results["sections"].items() for t in s["targets"]}
keys = {"what", "target", "bound", "op", "measured", "ci95", "runs", "verdict", "spread"}
assert len(targets) >= 15 and all(keys <= set(t) for t in targets.values()), targets
assert all(t["verdict"] == "inconclusive" and t["runs"] == 1 for t in targets.values()), targets
assert report.count("| inconclusive |") == len(targets), "a verdict in the report is not inconclusive"
assert not results["sections"]["scaling"]["targets"], "the scaling section repeats the ports targets"
for sec, what in (("same_host", "udp_cpu_s_per_mpkt bpfnet / bridge-docker"),
                  ("overlay", "udp_cpu_s_per_mpkt bpfnet / kernel-vxlan"),
                  ("ports", "udp_cpu_s_per_mpkt bpfnet-1 / iptables-1"),
                  ("ports", "conn_per_s bpfnet-10k / bpfnet-1"),
                  ("egress", "udp_pps bpfnet / docker"),
                  ("egress", "conn_per_s bpfnet / docker")):
    assert (sec, what) in targets, (sec, what, sorted(targets))
# The UDP measurements: udp_send/udp_recv, the sender's CPU, per-CPU times of every run.
for name, variants in (("same_host", ("direct", "bridge-bare", "bridge-docker", "bpfnet")),
                       ("overlay", ("kernel-vxlan", "bpfnet")),
                       ("ports", ("iptables-1", "iptables-10k", "bpfnet-1", "bpfnet-10k")),
                       ("egress", ("routed", "docker", "bpfnet-kernel", "bpfnet"))):
    data = results["sections"][name]["data"]
    for v in variants:
        for metric in ("udp_pps", "udp_cpu_s_per_mpkt", "udp_sender_cpu"):
            assert data["samples"][metric][v][0] > 0, (name, metric, v)
        detail = data["udp_detail"][v][0]
        assert {"cpu0", "cpu1"} <= set(detail["per_cpu"]), (name, v, detail)
        assert detail["received"]["packets"] > 0 and detail["sent"]["packets"] >= detail["received"]["packets"]
assert "#### Where the CPU went during the UDP runs" in report
# The control-plane curves (issue 18): every point of both curves timed, the iptables curve beside.
curves = results["sections"]["control_plane"]["data"]["scaling"]
for curve, ops in (("ports", ("connect", "disconnect", "cli_connect", "iptables_add", "iptables_remove")),
                   ("endpoints", ("connect", "disconnect"))):
    summary = curves[curve]["summary"]
    for op in ops:
        assert len(summary[op]) >= 2 and all(p["p50"] > 0 for p in summary[op].values()), (curve, op, summary[op])
assert sum(1 for t in results["sections"]["control_plane"]["targets"] if "/ at 0" in t["what"]) == 4
# The bridge baselines as run, read back from their namespaces.
base = results["sections"]["same_host"]["data"]["baselines"]
assert base["bridge-docker"]["bridge-nf-call-iptables"] == "1", base
assert {"filter", "nat"} <= set(base["bridge-docker"]["iptables_tables"]), base
assert base["bridge-bare"]["bridge-nf-call-iptables"] == "0" and not base["bridge-bare"]["iptables_tables"], base
assert "| bridge-docker | " in report and "| bridge-bare | " in report
assert results["sections"]["same_host"]["data"]["medians"]["tcp_cpu_s_per_gb"]["bpfnet"] > 0
ports = results["sections"]["ports"]["data"]
assert ports["samples"]["keepalive_rps"]["iptables-output"][0] > 0, ports["samples"]["keepalive_rps"]
assert "host_state" in results and "br_netfilter" in results["host_state"], results.keys()
# prog_cost: one timing method per column; rows that rewrite their packet have no repeat average.
cases = results["sections"]["prog_cost"]["data"]["cases"]
assert any(c["verdict"] == 7 for c in cases.values()) and any(c["verdict"] == 2 for c in cases.values()), cases
for what, c in cases.items():
    assert len(c["ns_single_median"]) == 1, (what, c)
    assert (len(c["ns_repeat_avg"]) == 0) == c["rewrites_packet"], (what, c)
assert all(p["verified_instructions"] > 0 for p in results["sections"]["prog_cost"]["data"]["programs"].values())
PY
snapshot >"$WORK/after"
diff "$WORK/before" "$WORK/after" >"$WORK/leftovers" || die "the benchmarks left things behind: $(cat "$WORK/leftovers")"
log "ok: $(grep -c '^| ' "$OUT/report.md") table rows, $(ls "$OUT"/*.png | wc -l) plots"

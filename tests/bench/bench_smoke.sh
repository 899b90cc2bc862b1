#!/usr/bin/env bash
# Plumbing of the benchmark suite, not speed: `bench/run --quick --runs 1` must run every
# benchmark to the end and produce report.md with every section and the targets table,
# results.json with every benchmark's data, and the PNG plots; and leave no namespace, link,
# iptables chain or mount behind.
source "$(dirname "$0")/../e2e/lib.sh"
BENCH="$(cd "$(dirname "$0")/../../bench" && pwd)"
OUT="$WORK/results"
# Chains by name and policy; iptables-save's [packets:bytes] counters move with any traffic.
chains() { iptables-save -t "$1" | grep '^:' | sed 's/ \[[0-9]*:[0-9]*\]$//'; }
snapshot() { { ip netns list; ip -o link show | awk -F': ' '{print $2}'; chains nat; chains filter; grep -c . /proc/mounts; } | sort; }
snapshot >"$WORK/before"
BPFNET_BIN_DIR="$BPFNET_BIN_DIR" "$BENCH/run" --quick --runs 1 --out "$OUT" >"$WORK/bench.log" 2>&1 \
    || { tail -40 "$WORK/bench.log" >&2; die "bench/run --quick failed"; }
python3 - "$OUT" <<'PY' || die "the report is incomplete (see above)"
import json, os, sys
out = sys.argv[1]
report = open(os.path.join(out, "report.md")).read()
results = json.load(open(os.path.join(out, "results.json")))
expected = ["same_host", "ports", "overlay", "scaling", "control_plane", "prog_cost"]
assert list(results["sections"]) == expected, list(results["sections"])
assert "## Targets" in report and ("| pass |" in report or "| miss |" in report), "no targets table"
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
             "prog-cost.png", "control-plane.png"):
    assert want in plots, (want, sorted(plots))
targets = [t for s in results["sections"].values() for t in s["targets"]]
assert len(targets) >= 11 and all({"what", "target", "measured", "met"} <= set(t) for t in targets), targets
same = results["sections"]["same_host"]["data"]["medians"]
assert same["tcp_cpu_s_per_gb"]["bpfnet"] > 0 and same["udp_cpu_s_per_mpkt"]["bridge"] > 0, same
cases = results["sections"]["prog_cost"]["data"]["cases"]
assert any(c["verdict"] == 7 for c in cases.values()) and any(c["verdict"] == 2 for c in cases.values()), cases
assert all(p["verified_instructions"] > 0 for p in results["sections"]["prog_cost"]["data"]["programs"].values())
PY
snapshot >"$WORK/after"
diff "$WORK/before" "$WORK/after" >"$WORK/leftovers" || die "the benchmarks left things behind: $(cat "$WORK/leftovers")"
log "ok: $(grep -c '^| ' "$OUT/report.md") table rows, $(ls "$OUT"/*.png | wc -l) plots"

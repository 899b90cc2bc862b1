#!/usr/bin/env bash
# Plumbing of the benchmark (bench/run), not its numbers: a --quick --runs 1 run writes a report.md with
# every section and a results.json with a sample of every metric for every variant, the bpfnet variant
# runs on the datapath this ctest variant asks for (kernel: the agent refuses BPF and the bench falls
# back and says so), and nothing the bench made is left behind, also when it is interrupted (SIGINT,
# as Ctrl-C) in the middle of a sample. Needs iperf3 and sockperf (scripts/install-deps.sh).
source "$(dirname "$0")/lib.sh"
BENCH=$(cd "$(dirname "$0")/../../bench" && pwd)/run
export BPFNET_BIN_DIR
for tool in iperf3 sockperf cc; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
BENCH_ARGS=()
[ "$E2E_DATAPATH" = kernel ] && BENCH_ARGS+=(--agent-arg=--probe-disable --agent-arg=bpf)

# Nothing named after bench process $1 may remain: namespaces, links, work dir, mounts, agent leftovers.
assert_no_leftovers() {
    local pid=$1 instance=${2:-} left
    left=$(ip netns list | grep "^bnb-$pid-" || true)
    [ -z "$left" ] || die "namespaces of bench $pid left: $left"
    left=$(ip -o link show | grep ": bnb-$pid-" || true)
    [ -z "$left" ] || die "links of bench $pid left: $left"
    left=$(compgen -G "/tmp/bnb-$pid.*" || true)
    [ -z "$left" ] || die "work dir of bench $pid left: $left"
    left=$(grep "/bnb-$pid\." /proc/self/mountinfo || true)
    [ -z "$left" ] || die "mounts of bench $pid left: $left"
    left=$(pgrep -af "/tmp/bnb-$pid\." || true)  # its agent and udpflood run from its work dir
    [ -z "$left" ] || die "processes of bench $pid left: $left"
    if [ -n "$instance" ]; then
        left=$(owned_links "$instance")
        [ -z "$left" ] || die "links of the bench's agent left: $left"
        left=$(nft list tables | grep "bpfnet_$instance" || true)
        [ -z "$left" ] || die "nftables tables of the bench's agent left: $left"
    fi
}

log "full quick run (${BENCH_ARGS[*]:-default agent})"
OUT="$WORK/out"
"$BENCH" --quick --runs 1 --out "$OUT" "${BENCH_ARGS[@]}" >"$WORK/bench.log" 2>&1 &
BENCH_PID=$!
rc=0; wait "$BENCH_PID" || rc=$?
cat "$WORK/bench.log"
[ "$rc" -eq 0 ] || die "bench/run exited with $rc"

for section in "# Same-host datapath benchmark" "## Variants" "## TCP throughput" "## UDP 64-byte packet rate" \
               "## TCP latency p50" "## TCP latency p99" "## Targets" "## Samples" "## Method"; do
    grep -qx -- "$section" "$OUT/report.md" || die "report.md has no section '$section'"
done
INSTANCE=$(python3 - "$OUT/results.json" "$E2E_DATAPATH" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
variants, metrics = ["direct", "bridge", "bpfnet"], ["tcp_gbps", "udp_pps", "lat_p50_us", "lat_p99_us"]
assert doc["schema"] == 1 and doc["runs"] == 1 and doc["quick"] is True, doc
assert doc["failures"] == 0 and not doc["interrupted"], (doc["failures"], doc["interrupted"])
assert sorted(doc["variants"]) == sorted(variants), doc["variants"]
for m in metrics:
    for v in variants:
        xs = doc["samples"][m][v]
        assert len(xs) == 1 and all(isinstance(x, (int, float)) and x > 0 for x in xs), (m, v, xs)
        s = doc["summary"][m][v]
        assert s["median"] > 0 and s["min"] <= s["median"] <= s["max"], (m, v, s)
        assert s["vs_bridge"] and s["vs_direct"], (m, v, s)
assert len(doc["targets"]) == 4 and all(t["ratio"] and t["met"] in (True, False) for t in doc["targets"]), doc["targets"]
assert len(doc["details"]) == 9 and not any(d["error"] for d in doc["details"]), doc["details"]
bpf = doc["variants"]["bpfnet"]
assert bpf["datapath"] == sys.argv[2], bpf
if sys.argv[2] == "kernel":  # refused, fallen back, and labelled so
    assert bpf["bpf_create_error"] and bpf["label"].startswith("bpfnet (kernel datapath: BPF unavailable: "), bpf
else:
    assert bpf["label"] == "bpfnet" and bpf["bpf_create_error"] is None, bpf
print(bpf["agent_instance"])
PY
) || die "results.json is not as expected"
grep -qF -- "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["variants"]["bpfnet"]["label"])' \
    "$OUT/results.json")" "$OUT/report.md" || die "report.md does not name the bpfnet variant as results.json does"
assert_no_leftovers "$BENCH_PID" "$INSTANCE"
log "report and results complete; nothing left behind"

log "interrupted run (SIGINT during the first sample)"
"$BENCH" --quick --runs 3 --out "$WORK/out2" "${BENCH_ARGS[@]}" >"$WORK/bench2.log" 2>&1 &
BENCH_PID=$!
for _ in $(seq 1 300); do  # until a traffic tool runs (the bench's direct children; nsenter execs them)
    pgrep -P "$BENCH_PID" -x 'iperf3|sockperf|udpflood' >/dev/null && break
    kill -0 "$BENCH_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 0.2
INSTANCE=$(sed -n 's/.*agent instance \([0-9a-f]*\).*/\1/p' "$WORK/bench2.log")
kill -INT "$BENCH_PID" 2>/dev/null || die "the bench ended before it could be interrupted"
rc=0; wait "$BENCH_PID" || rc=$?
cat "$WORK/bench2.log"
[ "$rc" -eq 130 ] || die "interrupted bench/run exited with $rc, expected 130"
grep -q "interrupted by SIGINT" "$WORK/bench2.log" || die "the bench did not report the interruption"
[ -n "$INSTANCE" ] || die "the bench did not log its agent's instance"
assert_no_leftovers "$BENCH_PID" "$INSTANCE"
log "interrupted run cleaned up"

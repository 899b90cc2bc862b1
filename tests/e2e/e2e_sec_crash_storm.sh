#!/usr/bin/env bash
# Crash consistency under a storm: 200 times (BPFNET_CRASH_KILLS; 60 in the sanitizer build), an
# operation (network create/rm, sandbox create with a connection and published ports, connect,
# disconnect, sandbox rm) is started and the agent is
# SIGKILLed at a random moment during it, then restarted. Meanwhile two long-lived containers ping
# each other. At the end the store, the kernel objects and the BPF maps must agree
# (tests/e2e/consistency.py: no orphan or missing interface, map entry, pinned link or namespace, no
# address given twice), every operation that reported success before its kill must have lasted,
# and the ping between the survivors must never have stopped.
source "$(dirname "$0")/lib.sh"
KILLS=${BPFNET_CRASH_KILLS:-200}
start_agent
INST=$(agent_instance)
STABLE=stable-$$
bn network create --subnet 10.222.0.0/24 "$STABLE" >/dev/null
bn sandbox create --network "$STABLE" "p1-$$" >/dev/null
bn sandbox create --network "$STABLE" "p2-$$" >/dev/null
P2=$(bn sandbox inspect "p2-$$" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['$STABLE']['IPAddress'])")
# 20 pings a second for the whole storm; -D stamps each reply so gaps can be measured.
nsenter --net="$NETNS_DIR/p1-$$" ping -D -i 0.05 -W 1 "$P2" >"$WORK/ping.log" 2>&1 &
PING=$!
CLEANUP_HOOKS+=("kill $PING 2>/dev/null")

# Kill at a random moment of an operation: the moments range over 1.5 times the time an operation
# takes on this build (an ASan build is several times slower than a release one).
started=$(date +%s%N)
for i in 1 2 3; do
    bn sandbox create --network "$STABLE" --publish "$((19990 + i))":80 "cal$i-$$" >/dev/null
    bn sandbox rm "cal$i-$$" >/dev/null
done
OP_MS=$(( ($(date +%s%N) - started) / 6000000 ))
KILL_WINDOW_MS=$(( OP_MS * 3 / 2 > 100 ? OP_MS * 3 / 2 : 100 ))
log "an operation takes ${OP_MS} ms: kills within ${KILL_WINDOW_MS} ms of its start"

RANDOM=$$
OKS=0
declare -A DONE  # what reported success: "net NAME" / "sb NAME" -> 1
op() {  # one operation chosen at random, in the background; writes its outcome to $WORK/op
    local i=$1 kind=$((RANDOM % 6)) n s
    n="n$((RANDOM % 4))-$$"; s="s$((RANDOM % 6))-$$"
    case $kind in
        0) cmd=(network create --subnet "10.223.$((${n:1:1})).0/24" "$n") ;;
        1) cmd=(network rm "$n") ;;
        2) cmd=(sandbox create --network "$STABLE" --publish "$((20000 + i))":80 "$s") ;;
        3) cmd=(network connect "$n" "$s") ;;
        4) cmd=(network disconnect "$n" "$s") ;;
        5) cmd=(sandbox rm "$s") ;;
    esac
    ( if bn "${cmd[@]}" >/dev/null 2>&1; then echo "ok ${cmd[*]}"; else echo "failed ${cmd[*]}"; fi ) >"$WORK/op" &
    OP=$!
}
for i in $(seq 1 "$KILLS"); do
    op "$i"
    ms=$((RANDOM % KILL_WINDOW_MS))
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    kill_agent
    wait "$OP" 2>/dev/null || true
    start_agent
    # What finished before the kill must survive it (and every later restart).
    # A removal that failed may still have happened (the kill came between doing and answering):
    # from then on nothing is known about that object.
    read -r outcome rest <"$WORK/op" || true
    [ "$outcome" = ok ] && OKS=$((OKS + 1))
    set -- $rest
    case "$outcome $1 $2" in
        "ok network create") DONE["net ${!#}"]=1 ;;
        "ok sandbox create") DONE["sb ${!#}"]=1 ;;
        *" network rm") unset "DONE[net ${!#}]" ;;
        *" sandbox rm") unset "DONE[sb ${!#}]" ;;
    esac
done
stop_agent
start_agent

python3 "$(dirname "$0")/consistency.py" "$BPFNET" "$RUN_DIR" "$BPFFS_DIR" "$NETNS_DIR" "$INST" "$E2E_DATAPATH" \
    >"$WORK/consistency.txt" || die "after $KILLS kills the agent's state disagrees: $(cat "$WORK/consistency.txt")"
for what in "${!DONE[@]}"; do
    set -- $what
    if [ "$1" = net ]; then
        bn network inspect "$2" >/dev/null 2>&1 || die "network $2 was created (reported success) but is lost"
    else
        bn sandbox inspect "$2" >/dev/null 2>&1 || die "sandbox $2 was created (reported success) but is lost"
    fi
done

# The survivors' ping never stopped: replies kept coming, with no gap over a second.
kill "$PING" 2>/dev/null; wait "$PING" 2>/dev/null || true
python3 - "$WORK/ping.log" <<'PY' || die "the ping between the long-lived containers stopped: $(tail -5 "$WORK/ping.log")"
import re, sys
stamps = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\].*bytes from", open(sys.argv[1]).read(), re.M)]
assert len(stamps) > 100, len(stamps)
gap = max(b - a for a, b in zip(stamps, stamps[1:]))
print(f"{len(stamps)} replies, longest gap {gap:.2f}s")
assert gap < 1.0, gap
PY
[ "$OKS" -ge $((KILLS / 10)) ] || die "only $OKS of $KILLS operations completed before their kill: the storm tested little"
log "ok: $KILLS kills ($OKS operations completed first, ${#DONE[@]} objects checked), $(bn sandbox ls -q | wc -l) sandboxes and $(bn network ls -q | wc -l) networks at the end"

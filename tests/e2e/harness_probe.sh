#!/usr/bin/env bash
# A small scenario for e2e_sec_sanitizer_harness.sh, which runs it with failpoints set and checks
# whether the harness (lib.sh) passes or fails it. Not a test of its own (ctest runs e2e_*.sh only).
# Usage: harness_probe.sh graceful|crash FAILPOINTS
#   graceful  the agent makes and removes a network, then is stopped with SIGTERM; prints how many
#             failpoints it reached
#   crash     as in e2e_crash.sh: the agent must die in the middle of a network create (the failpoint
#             kills it), is reaped as killed and restarted, and the create then succeeds
source "$(dirname "$0")/lib.sh"
MODE=$1 POINTS=$2
NET=probe-$$
SUBNET=10.237.0.0/24
BPFNET_FAILPOINTS=$POINTS start_agent
case $MODE in
    graceful)
        bn network create --subnet "$SUBNET" "$NET" >/dev/null
        bn network rm "$NET" >/dev/null
        stop_agent
        log "failpoints reached: $(grep -c "failpoint .* reached" "$AGENT_LOG" || true)"
        ;;
    crash)
        bn network create --subnet "$SUBNET" "$NET" >/dev/null 2>&1 &&
            die "the create finished although the agent should have died in it"
        for _ in $(seq 1 50); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$AGENT_PID" 2>/dev/null && die "the agent did not die in the create"
        reap_killed_agent
        start_agent
        bn network create --subnet "$SUBNET" "$NET" >/dev/null || die "no create after the restart"
        ;;
    *) die "unknown mode $MODE" ;;
esac

#!/usr/bin/env bash
# A sick agent fails the e2e harness (lib.sh) under make test-sanitize: a leak LeakSanitizer reports
# when the agent exits fails the test, through the exit status of the graceful stop and, should the
# status hide it, through the scan of the agent's log at cleanup; and an AddressSanitizer abort in
# the middle of an operation fails it too, not taken for the deliberate kill of a crash test. The
# leak and the out-of-bounds read are real ones, made by failpoints (NAME=leak, NAME=oob) that only
# the sanitizer build has (userspace/agent/failpoint.cpp). Controls: a clean run and a deliberate
# kill pass. In any other build the test proves those failpoints do not exist there.
source "$(dirname "$0")/lib.sh"
: "${BPFNET_SANITIZE_BUILD:?set by CMake: 1 in the sanitizer build, else 0}"
PROBE="$(dirname "$0")/harness_probe.sh"
POINT=network.create.recorded

# probe NAME MODE FAILPOINTS [VAR=VALUE..]: runs harness_probe.sh; output in $WORK/NAME.out.
probe() {
    local name=$1 mode=$2 points=$3; shift 3
    PROBE_RC=0
    env "$@" bash "$PROBE" "$mode" "$points" >"$WORK/$name.out" 2>&1 || PROBE_RC=$?
}
passes() {  # passes NAME MODE FAILPOINTS [VAR=VALUE..]
    probe "$@"
    [ "$PROBE_RC" -eq 0 ] || die "probe $1 should pass, it ended with $PROBE_RC: $(tail -30 "$WORK/$1.out")"
    log "probe $1 passes"
}
fails_with() {  # fails_with NAME TEXT...: the probe NAME failed, and its output holds every TEXT
    local name=$1 text; shift
    [ "$PROBE_RC" -ne 0 ] || die "probe $name should fail, it passed: $(tail -30 "$WORK/$name.out")"
    for text in "$@"; do
        grep -F >/dev/null -- "$text" "$WORK/$name.out" ||
            die "probe $name failed without '$text': $(tail -30 "$WORK/$name.out")"
    done
    log "probe $name fails: $(grep -m1 FAIL "$WORK/$name.out")"
}

passes clean graceful ""
grep >/dev/null "failpoints reached: 0" "$WORK/clean.out" || die "the clean probe reached a failpoint"
passes kill crash "$POINT"

if [ "$BPFNET_SANITIZE_BUILD" != 1 ]; then
    # Without the sanitizers the leak and the out-of-bounds read would go unseen: the build must not
    # have them. Listed, they are not reached (and the agent neither dies nor leaks).
    passes absent graceful "$POINT=leak,$POINT=oob"
    grep >/dev/null "failpoints reached: 0" "$WORK/absent.out" ||
        die "a build without sanitizers has the leak or oob failpoint: $(cat "$WORK/absent.out")"
    ! grep -a >/dev/null "reading past the end of a heap block" "$BPFNETD" ||
        die "$BPFNETD holds the out-of-bounds failpoint"
    log "ok: no sanitizer failpoints in this build; a clean run and a deliberate kill pass"
    exit 0
fi

# A leak: the agent's clean SIGTERM exit turns into an abort (abort_on_error=1) or into LSan's
# exit code 23 (without ASAN_OPTIONS); either fails the stop.
probe leak graceful "$POINT=leak"
fails_with leak "after SIGTERM, expected 0" "ERROR: LeakSanitizer: detected memory leaks" "leak_block"
# The same leak with an exit status of 0 (exitcode=0): the scan of the log alone fails the test.
probe leak-scan graceful "$POINT=leak" "ASAN_OPTIONS=${ASAN_OPTIONS:-}:exitcode=0"
fails_with leak-scan "sanitizer reports in the agents' logs" "ERROR: LeakSanitizer: detected memory leaks"
! grep >/dev/null "after SIGTERM" "$WORK/leak-scan.out" ||
    die "with exitcode=0 the agent's exit status still failed: the scan was not what failed the probe"
# An out-of-bounds read in the middle of a create: the agent dies, as it would of a failpoint's
# SIGKILL, but of an ASan abort, which the crash harness must not take for the deliberate kill.
probe oob crash "$POINT=oob"
fails_with oob "after SIGKILL, expected 137" "ERROR: AddressSanitizer: heap-buffer-overflow" "read_past_end"
log "ok: a leak at exit and an abort mid-operation fail the harness; a clean run and a kill pass"

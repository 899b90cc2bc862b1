# Shared harness for the end-to-end tests: each test starts its own bpfnetd with private state, run,
# bpffs and netns directories, uses names and subnets unique to it, and removes everything it made on
# exit, whether it passed or not. Sourced by tests/e2e/*.sh.
set -euo pipefail
# Under pipefail, `cmd | grep -q x` fails when grep exits at the first match and cmd then dies of
# SIGPIPE writing the rest: tests write `cmd | grep >/dev/null x`, which reads everything.

: "${BPFNET_BIN_DIR:?BPFNET_BIN_DIR must point at the tools directory of the build}"
BPFNET="$BPFNET_BIN_DIR/bpfnet"
BPFNETD="$BPFNET_BIN_DIR/bpfnetd"
TEST_NAME=$(basename "$0" .sh)

require_privileged() {
    if [ "$(id -u)" -ne 0 ]; then
        if [ "${BPFNET_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
            echo "FAIL: $TEST_NAME needs root and BPFNET_REQUIRE_PRIVILEGED=1 forbids skipping" >&2
            exit 1
        fi
        echo "SKIP: $TEST_NAME needs root"
        exit 77
    fi
}
require_privileged

WORK=$(mktemp -d "/tmp/bpfnet-$TEST_NAME.XXXXXX")
STATE_DIR="$WORK/state"
RUN_DIR="$WORK/run"
NETNS_DIR="$WORK/netns"
BPFFS_DIR="$WORK/bpffs"
AGENT_LOG="$WORK/agent.log"
# Every log a bpfnetd of this test writes: cleanup scans them all for sanitizer reports. A test that
# runs an agent with its own log adds it here.
AGENT_LOGS=("$AGENT_LOG")
AGENT_PID=""
AGENT_INSTANCE=""  # learnt at the first start; names what cleanup may remove even if the agent is sick
EXTRA_NETNS=()   # namespaces the test made with `ip netns add`
EXTRA_LINKS=()   # host links the test made itself
CLEANUP_HOOKS=()
# Run at the very end of cleanup, after the agent has stopped: they restore host-wide state (e.g. the
# host's firewall after a dockerd with its defaults, tests/docker/lib.sh) that must not be restored
# while something may still change it. A hook that finds the host not as it was sets CLEANUP_FAILED=1.
POST_CLEANUP_HOOKS=()

log() { echo "[$TEST_NAME] $*"; }
die() { echo "[$TEST_NAME] FAIL: $*" >&2; exit 1; }

bn() { "$BPFNET" --run-dir "$RUN_DIR" "$@"; }
in_sb() { local sb=$1; shift; bn sandbox exec "$sb" -- "$@"; }
# Like in_sb but without asking the agent, for commands that must keep running while it is down.
in_ns() { local sb=$1; shift; nsenter --net="$NETNS_DIR/$sb" "$@"; }

# Which datapath the scenarios run on: ctest runs every script once per datapath. "kernel" forces
# the fallback the way a host without BPF would get it.
E2E_DATAPATH=${BPFNET_E2E_DATAPATH:-bpf}
# The Docker plugin socket defaults to /run/docker/plugins/bpfnet.sock, which parallel tests must not
# fight over: each agent serves it inside its private run dir unless a test passes its own
# --plugin-socket (the last one given wins).
# --uplink none: a test's agent never puts its program on the machine's real uplink; tests that
# need one name the veth they created (AGENT_FLAGS+=(--uplink ...) before start_agent).
# --default-bridge none: tests run agents side by side, and the predefined bridge network (one
# Linux bridge name, one default subnet) is tested by its own script.
AGENT_FLAGS=(--plugin-socket "$RUN_DIR/docker-plugin.sock" --uplink none --default-bridge none)
[ "$E2E_DATAPATH" = kernel ] && AGENT_FLAGS+=(--probe-disable bpf)

# A command line start_agent puts before bpfnetd, e.g. (nsenter --net=/run/netns/X) for an agent
# whose "host" is a namespace of the test's own.
AGENT_WRAP=()
start_agent() {
    mkdir -p "$NETNS_DIR"
    "${AGENT_WRAP[@]}" "$BPFNETD" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR" --bpffs-root "$BPFFS_DIR" \
        --netns-dir "$NETNS_DIR" --log-level debug "${AGENT_FLAGS[@]}" "$@" >>"$AGENT_LOG" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 1 100); do
        if bn version >/dev/null 2>&1; then
            [ -n "$AGENT_INSTANCE" ] || AGENT_INSTANCE=$(agent_instance)
            return 0
        fi
        kill -0 "$AGENT_PID" 2>/dev/null || { tail -20 "$AGENT_LOG" >&2; die "bpfnetd exited at start"; }
        sleep 0.1
    done
    die "bpfnetd did not answer within 10 s"
}

# Whether the endpoint program is attached to a host interface (a cls_bpf filter on its ingress qdisc).
# Usage: ep_program_attached HOST_IFNAME
ep_program_attached() {
    tc filter show dev "$1" ingress 2>/dev/null | grep -q bpfnet_from_ep
}

# Sum of a per-CPU counter field of one endpoint in the pinned bpfnet_ep_stats map, read with
# bpftool straight from bpffs (no agent involved). Usage: ep_stat HOST_IFNAME FIELD
ep_stat() {
    local ifindex
    ifindex=$(cat "/sys/class/net/$1/ifindex")
    { bpftool -j map lookup pinned "$BPFFS_DIR/bpfnet/bpfnet_ep_stats" key $(printf '%d %d %d %d' \
        $((ifindex & 255)) $(((ifindex >> 8) & 255)) $(((ifindex >> 16) & 255)) $(((ifindex >> 24) & 255))) \
        2>/dev/null || true; } | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    doc = None
if not isinstance(doc, dict) or "formatted" not in doc:  # no entry yet: nothing counted
    print(0)
    sys.exit()
print(sum(cpu["value"][sys.argv[1]] for cpu in doc["formatted"]["values"]))' "$2"
}
# Sum of the drop counter for a reason number (enum bpfnet_drop_reason in include/bpfnet/abi.h).
drop_count() {
    bpftool -j map lookup pinned "$BPFFS_DIR/bpfnet/bpfnet_drops" key "$1" 0 0 0 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(cpu["value"]["packets"] for cpu in doc["formatted"]["values"]))'
}
host_if_of() {  # host-side veth of SANDBOX on NETWORK
    bn sandbox inspect "$1" | python3 -c '
import json, sys
net = json.load(sys.stdin)[0]["Networks"][sys.argv[1]]
print("bnv-" + net["EndpointID"][:11])' "$2"
}

# nft_counter COMMENT [NETNS]: packets counted by the rules of this agent's nftables forward chain
# that carry COMMENT (e.g. "bpfnet direct routing: bn-..."), in NETNS (a name under /run/netns) for
# an agent whose host is a namespace of the test's own.
nft_counter() {
    local wrap=()
    [ -z "${2:-}" ] || wrap=(ip netns exec "$2")
    "${wrap[@]}" nft -j list chain ip "bpfnet_$AGENT_INSTANCE" forward | python3 -c '
import json, sys
want, n, found = sys.argv[1], 0, False
for item in json.load(sys.stdin)["nftables"]:
    rule = item.get("rule")
    if not rule or rule.get("comment") != want:
        continue
    found = True
    n += sum(e["counter"]["packets"] for e in rule["expr"] if isinstance(e, dict) and "counter" in e)
if not found:
    sys.exit(f"no rule with comment {want!r} in the forward chain")
print(n)' "$1" || die "cannot read the nftables counter '$1': $("${wrap[@]}" nft list chain ip "bpfnet_$AGENT_INSTANCE" forward 2>&1)"
}
# The Linux bridge of a bpfnet network.
bridge_of() {
    bn network inspect "$1" | python3 -c '
import json, sys
n = json.load(sys.stdin)[0]
print(n["Options"].get("com.docker.network.bridge.name") or "bn-" + n["Id"][:12])'
}

# How a bpfnetd must end: 0 after SIGTERM (a graceful stop), 137 after SIGKILL (a deliberate kill,
# by kill_agent or by a failpoint). Anything else is a crash of its own: under make test-sanitize an
# ASan abort is 134 and a leak found at exit makes a clean exit 134 too (abort_on_error=1).
# check_agent_exit WHO TERM|KILL STATUS LOG dies with what the log's reports say; during cleanup,
# where dying would skip the rest of it, it prints the failure and fails the test at the end.
check_agent_exit() {
    local who=$1 sig=$2 status=$3 agent_log=$4 expected=0
    [ "$sig" = KILL ] && expected=137
    [ "$status" -eq "$expected" ] && return 0
    local msg="$who ended with status $status after SIG$sig, expected $expected"
    local first
    first=$(sanitizer_reports "$agent_log" | head -1)
    [ -z "$first" ] || msg+=" ($first)"
    if [ "$IN_CLEANUP" = 1 ]; then
        echo "[$TEST_NAME] FAIL: $msg" >&2
        CLEANUP_FAILED=1
        return 1
    fi
    die "$msg"
}
IN_CLEANUP=0
CLEANUP_FAILED=0

# The lines of sanitizer reports (ASan, LSan, UBSan's "runtime error") in the given logs.
sanitizer_reports() { grep -h -E 'AddressSanitizer|LeakSanitizer|runtime error' "$@" 2>/dev/null || true; }

stop_agent() {  # graceful: SIGTERM, datapath stays up; the agent must exit 0
    [ -n "$AGENT_PID" ] || return 0
    local status=0
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || status=$?
    AGENT_PID=""
    check_agent_exit bpfnetd TERM "$status" "$AGENT_LOG"
}

kill_agent() {  # SIGKILL, as a crash
    [ -n "$AGENT_PID" ] || return 0
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    reap_killed_agent
}

# After a deliberate SIGKILL (kill_agent, or a failpoint the agent reached): the agent must have died
# of it, not of anything before (an abort in the middle of the operation is not a kill).
reap_killed_agent() {
    local status=0
    wait "$AGENT_PID" 2>/dev/null || status=$?
    AGENT_PID=""
    check_agent_exit bpfnetd KILL "$status" "$AGENT_LOG"
}

agent_instance() { bn status --format json | sed -n 's/.*"Instance": "\([0-9a-f]*\)".*/\1/p'; }

# Host links whose alias marks them as made by this test's agent.
owned_links() {
    local inst=$1
    ip -d -o link show | awk -v tag="bpfnet:$inst:" '
        { name=$2; sub(/:$/, "", name); sub(/@.*/, "", name) }
        index($0, "alias " tag) { print name }' | sort
}

# Runs a command that must fail, and checks its stderr contains the expected text.
expect_fail() {
    local expected=$1; shift
    local out
    if out=$("$@" 2>&1); then die "expected failure of '$*' but it succeeded: $out"; fi
    # A sanitizer abort is a failure too, but not the expected one.
    [ -z "$(sanitizer_reports <<<"$out")" ] || die "'$*' failed with a sanitizer report: $out"
    case "$out" in
        *"$expected"*) log "refused as expected: $out" ;;
        *) die "'$*' failed with an unexpected message: $out (expected: $expected)" ;;
    esac
}

# Makes a namespace standing for "the outside world" reachable from the host through a veth, so
# tests can check routing/NAT without sending a packet anywhere but into namespaces they made.
make_outside() {  # make_outside NAME HOST_IP/30 OUTSIDE_IP/30
    local name=$1 host_ip=$2 out_ip=$3
    ip netns add "$name"; EXTRA_NETNS+=("$name")
    ip link add "${name}h" type veth peer name eth0 netns "$name"; EXTRA_LINKS+=("${name}h")
    ip addr add "$host_ip" dev "${name}h"; ip link set "${name}h" up
    ip -n "$name" addr add "$out_ip" dev eth0
    ip -n "$name" link set eth0 up; ip -n "$name" link set lo up
}

# serve_http SANDBOX PORT: python's http.server in the sandbox, serving /whoami with the sandbox's
# name; returns once it accepts connections, killed at cleanup.
SERVER_PIDS=()
serve_http() {
    local dir="$WORK/www-$1"
    mkdir -p "$dir" && echo "$1" >"$dir/whoami"
    # nsenter execs python, so $! is the server itself (a backgrounded shell function would be a
    # subshell that cleanup could kill while its server lived on, holding ctest's output open).
    nsenter --net="$NETNS_DIR/$1" python3 -m http.server "$2" --bind 0.0.0.0 --directory "$dir" \
        >/dev/null 2>&1 &
    SERVER_PIDS+=($!)
    for _ in $(seq 1 50); do
        in_ns "$1" python3 -c "import socket; socket.create_connection(('127.0.0.1', $2), 1)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    die "http server in $1 on port $2 did not start"
}

cleanup() {
    local rc=$?
    set +e
    IN_CLEANUP=1
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for hook in "${CLEANUP_HOOKS[@]}"; do eval "$hook"; done
    if [ -z "$AGENT_PID" ] && [ -d "$STATE_DIR" ]; then start_agent >/dev/null 2>&1; fi
    local inst=$AGENT_INSTANCE
    if [ -n "$AGENT_PID" ]; then
        for sb in $(bn sandbox ls -q 2>/dev/null); do bn sandbox rm "$sb" >/dev/null 2>&1; done
        for net in $(bn network ls -q 2>/dev/null); do bn network rm "$net" >/dev/null 2>&1; done
        stop_agent
    fi
    # Belt and braces: whatever the agent could not remove is removed here.
    if [ -n "$inst" ]; then
        for l in $(owned_links "$inst"); do ip link del "$l" 2>/dev/null; done
        for family in ip ip6 bridge inet; do nft delete table "$family" "bpfnet_$inst" 2>/dev/null; done
        # The agent's accept rule in iptables' DOCKER-USER (see docker_user_chain.h), by its comment.
        iptables -w -S DOCKER-USER 2>/dev/null | grep -F -- "--comment \"bpfnet $inst:" | sed 's/^-A /-D /' |
            while read -r rule; do eval "iptables -w $rule"; done
    fi
    for l in "${EXTRA_LINKS[@]}"; do ip link del "$l" 2>/dev/null; done
    for ns in "${EXTRA_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    for f in "$NETNS_DIR"/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
    umount -l "$NETNS_DIR" 2>/dev/null
    umount -l "$BPFFS_DIR" 2>/dev/null
    for hook in "${POST_CLEANUP_HOOKS[@]}"; do eval "$hook"; done
    # Any sanitizer report of any agent fails the test, whenever it came (leaks are reported at exit).
    local reports
    reports=$(sanitizer_reports "${AGENT_LOGS[@]}")
    if [ -n "$reports" ]; then
        echo "[$TEST_NAME] FAIL: sanitizer reports in the agents' logs:" >&2
        echo "$reports" | head -20 >&2
        for f in "${AGENT_LOGS[@]}"; do
            [ -n "$(sanitizer_reports "$f")" ] || continue
            echo "---- the first report in $f ----" >&2
            grep -E -A25 -m1 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' "$f" >&2
        done
        CLEANUP_FAILED=1
    fi
    [ "$CLEANUP_FAILED" = 0 ] || [ $rc -ne 0 ] || rc=1
    if [ $rc -ne 0 ] && [ -f "$AGENT_LOG" ]; then  # tests of their own agents (bench) have none
        echo "---- last lines of the agent log ($AGENT_LOG) ----" >&2
        tail -40 "$AGENT_LOG" >&2
    fi
    rm -rf "$WORK"
    [ $rc -eq 0 ] && log "PASS"
    exit $rc
}
source "$(dirname "${BASH_SOURCE[0]}")/lib_datapath.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$(dirname "${BASH_SOURCE[0]}")/lib_wait.sh"

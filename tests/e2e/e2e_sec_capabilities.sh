#!/usr/bin/env bash
# Least privilege inside the agent: started by root with every capability, bpfnetd keeps exactly
# CAP_CHOWN, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON and CAP_BPF in its
# effective, permitted and bounding sets (every thread), nothing inheritable or ambient, with
# no_new_privs; `bpfnet status` says so; and with only those it does the real work: a network, two
# sandboxes that ping each other, a published port reached from the host, a low host port a host
# process holds refused, sockets given to --socket-group, the network removed. --keep-capabilities
# keeps everything; an agent started without capabilities behaves as before.
source "$(dirname "$0")/lib.sh"
command -v capsh >/dev/null || die "capsh is missing (libcap2-bin, scripts/install-deps.sh)"
EXPECTED=cap_chown,cap_net_bind_service,cap_net_admin,cap_sys_admin,cap_perfmon,cap_bpf
EXPECTED_UPPER=$(echo "$EXPECTED" | tr a-z, A-Z' ')
NET=caps-$$
LOW_PORT=927  # below 1024: the port-conflict probe needs CAP_NET_BIND_SERVICE to bind it
PIDS=()
CLEANUP_HOOKS+=('for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done')

status_field() { awk -v f="$2:" '$1 == f { print $2 }' "$1"; }
decode() { capsh --decode="$1" | sed 's/^0x[0-9a-f]*=//'; }
# Every thread of the agent holds exactly the expected sets (capabilities are per thread).
check_agent_sets() {
    local task threads=0
    for task in /proc/"$AGENT_PID"/task/*; do
        threads=$((threads + 1))
        local st="$task/status"
        for field in CapEff CapPrm CapBnd; do
            local got
            got=$(decode "$(status_field "$st" "$field")")
            [ "$got" = "$EXPECTED" ] || die "thread ${task##*/}: $field is '$got', expected '$EXPECTED'"
        done
        for field in CapInh CapAmb; do
            [ "$(status_field "$st" "$field")" = 0000000000000000 ] ||
                die "thread ${task##*/}: $field is $(decode "$(status_field "$st" "$field")"), expected none"
        done
        [ "$(status_field "$st" NoNewPrivs)" = 1 ] || die "thread ${task##*/}: no_new_privs is not set"
    done
    [ "$threads" -gt 1 ] || die "expected the agent to run several threads, found $threads"
    log "all $threads threads of the agent hold exactly $EXPECTED, no_new_privs"
}

# The shell running the test has the full set: the drop is the agent's own doing.
[ "$(decode "$(status_field /proc/self/status CapEff)")" != "$EXPECTED" ] ||
    die "the test itself already runs with the reduced set: nothing would be proven"

# The systemd unit bounds the agent to the same set, and systemd accepts it (offline: no systemd
# needs to run here), with ExecStart pointed at this build.
UNIT_FILE="$(dirname "$0")/../../packaging/bpfnetd.service"
unit_set=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT_FILE" | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$unit_set" = "$(echo "$EXPECTED_UPPER" | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
    die "packaging/bpfnetd.service bounds the agent to '$unit_set', the agent keeps '$EXPECTED_UPPER'"
mkdir -p "$WORK/unit"
sed "s|^ExecStart=/usr/local/sbin/bpfnetd|ExecStart=$BPFNETD|" "$UNIT_FILE" >"$WORK/unit/bpfnetd.service"
verify=$(systemd-analyze verify "$WORK/unit/bpfnetd.service" 2>&1) ||
    die "systemd-analyze rejects the unit: $verify"
[ -z "$(echo "$verify" | grep bpfnetd.service)" ] || die "systemd-analyze complains about the unit: $verify"

start_agent --socket-group nogroup
check_agent_sets
grep "capabilities: keeping ${EXPECTED_UPPER// /, }; every other one is dropped" "$AGENT_LOG" \
    >/dev/null || die "the agent did not log the capabilities it keeps"

# `bpfnet status` reports the effective set, as JSON and as text.
bn status --format json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["Capabilities"] == sys.argv[1].split(), s["Capabilities"]
assert s["NoNewPrivs"] is True, s["NoNewPrivs"]' "$EXPECTED_UPPER" || die "status --format json does not report the capabilities"
bn status | grep -x >/dev/null "Capabilities: $EXPECTED_UPPER (no_new_privs)" ||
    die "status does not show the capabilities: $(bn status | grep Capabilities)"

# CAP_CHOWN: the API and plugin sockets belong to the socket group.
for sock in "$RUN_DIR/bpfnetd.sock" "$RUN_DIR/docker-plugin.sock"; do
    [ "$(stat -c '%a %U:%G' "$sock")" = "660 root:nogroup" ] || die "$sock is $(stat -c '%a %U:%G' "$sock")"
done

# Real work with only those capabilities.
bn network create --subnet 10.227.0.0/24 "$NET" >/dev/null
BRIDGE=bn-$(bn network inspect "$NET" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Id"][:12])')
ip link show "$BRIDGE" >/dev/null || die "no bridge $BRIDGE for $NET"
bn sandbox create "capa-$$" >/dev/null
bn sandbox create "capb-$$" >/dev/null
bn network connect "$NET" "capa-$$"
bn network connect --publish 18227:80 "$NET" "capb-$$"
in_sb "capa-$$" ping -c 2 -W 2 10.227.0.3 >/dev/null || die "capa cannot ping capb"
in_sb "capb-$$" ping -c 2 -W 2 10.227.0.2 >/dev/null || die "capb cannot ping capa"
assert_datapath_is "$NET" bpf  # the capabilities kept are enough for the BPF datapath

serve_http "capb-$$" 80
got=$(python3 -c "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:18227/whoami', timeout=3).read().decode().strip())") ||
    die "the published port 18227 does not answer from the host"
[ "$got" = "capb-$$" ] || die "127.0.0.1:18227 answered '$got', expected capb-$$"
log "published port reached from the host"

# CAP_NET_BIND_SERVICE: a host process listening on a port below 1024 keeps it from being published
# (without the capability the agent's probe bind fails with EACCES and misses the conflict).
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', $LOW_PORT)); s.listen(); time.sleep(60)" >/dev/null 2>&1 &
LISTENER=$!
PIDS+=("$LISTENER")
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $LOW_PORT), 1)" 2>/dev/null && break
    sleep 0.1
done
bn sandbox create "capc-$$" >/dev/null
expect_fail "already allocated" bn network connect --publish "$LOW_PORT:80" "$NET" "capc-$$"
kill "$LISTENER"

bn network disconnect "$NET" "capa-$$"
bn network disconnect "$NET" "capb-$$"
bn network rm "$NET" >/dev/null
bn network ls | grep >/dev/null "$NET" && die "$NET is still there after rm"
ip link show "$BRIDGE" >/dev/null 2>&1 && die "the bridge $BRIDGE is still there after rm"
grep -i "operation not permitted\|permission denied" "$AGENT_LOG" &&
    die "the agent was refused something with the reduced capabilities"
check_agent_sets  # nothing along the way changed them
stop_agent

# --keep-capabilities: everything the agent was started with, no no_new_privs.
start_agent --keep-capabilities
[ "$(status_field "/proc/$AGENT_PID/status" CapEff)" = "$(status_field /proc/self/status CapEff)" ] ||
    die "--keep-capabilities dropped capabilities: $(decode "$(status_field "/proc/$AGENT_PID/status" CapEff)")"
[ "$(status_field "/proc/$AGENT_PID/status" NoNewPrivs)" = 0 ] || die "--keep-capabilities set no_new_privs"
bn status --format json | python3 -c '
import json, sys
assert "CAP_SYS_MODULE" in json.load(sys.stdin)["Capabilities"]' || die "status does not report the kept set"
stop_agent

# An agent without any capability (an ordinary user) has nothing to drop and behaves as it always
# did (as with --keep-capabilities): the probe finds BPF unusable, and it stops at the first thing
# that needs root (today: nftables), with the same error either way.
UNPRIV="$WORK/unprivileged"
mkdir -p "$UNPRIV" && chown 65534:65534 "$UNPRIV" && chmod 0755 "$WORK"
run_unprivileged() {  # run_unprivileged NAME [FLAG..]: exit code and log in $UNPRIV/NAME.{rc,log}
    local name=$1; shift
    local rc=0
    AGENT_LOGS+=("$UNPRIV/$name.log")
    timeout 20 setpriv --reuid 65534 --regid 65534 --clear-groups "$BPFNETD" \
        --state-dir "$UNPRIV/$name/state" --run-dir "$UNPRIV/$name/run" --bpffs-root "$UNPRIV/$name/bpffs" \
        --netns-dir "$UNPRIV/$name/netns" "${AGENT_FLAGS[@]}" --plugin-socket "" "$@" \
        >"$UNPRIV/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$UNPRIV/$name.rc"
}
run_unprivileged dropping
run_unprivileged keeping --keep-capabilities
grep >/dev/null "capabilities: keeping none" "$UNPRIV/dropping.log" ||
    die "the unprivileged agent did not report holding none: $(cat "$UNPRIV/dropping.log")"
grep >/dev/null "datapath: BPF unavailable" "$UNPRIV/dropping.log" ||
    die "the unprivileged agent did not reach the probe: $(cat "$UNPRIV/dropping.log")"
last_error() { grep " error " "$1" | tail -1 | cut -d' ' -f2-; }
[ "$(cat "$UNPRIV/dropping.rc")" = "$(cat "$UNPRIV/keeping.rc")" ] &&
    [ "$(last_error "$UNPRIV/dropping.log")" = "$(last_error "$UNPRIV/keeping.log")" ] ||
    die "unprivileged, the agent ends differently with and without the drop: $(last_error "$UNPRIV/dropping.log") / $(last_error "$UNPRIV/keeping.log")"
log "unprivileged agent, as before: exit $(cat "$UNPRIV/dropping.rc"), $(last_error "$UNPRIV/dropping.log")"

start_agent  # for cleanup
log "ok"

# Multi-host harness for overlay tests, sourced after lib.sh (tests/e2e or tests/docker): an
# underlay namespace with a switch (a bridge) and etcd, and one namespace per "host" on it, each
# running its own bpfnetd (own state, run, bpffs and netns directories) with the cluster store.
# The test sets, before sourcing:
#   HOSTS=(1 2 ...)            the hosts; host H has the VTEP address 10.231.0.1H
#   HOST_FLAGS[H]="..."        extra bpfnetd flags for host H (optional, no empty values)
#   HOST_PLUGIN[H]=PATH        the Docker plugin socket host H serves (optional, default none)
# and calls cluster_up, then start_etcd and start_host H. Everything goes at exit.
UND=bnt-und-$$
UNDERLAY=10.231.0
ETCD_URL=http://$UNDERLAY.2:23790
declare -A AGENT
declare -p HOST_FLAGS >/dev/null 2>&1 || declare -A HOST_FLAGS=()
declare -p HOST_PLUGIN >/dev/null 2>&1 || declare -A HOST_PLUGIN=()
hns() { echo "bnt-h$1-$$"; }
vtep_of() { echo "$UNDERLAY.1$1"; }
bnh() { local h=$1; shift; "$BPFNET" --run-dir "$WORK/h$h/run" "$@"; }
in_h() { local h=$1 sb=$2; shift 2; nsenter --net="$WORK/h$h/netns/$sb" "$@"; }
# Runs a command in host H's network namespace (as its agent and its dockerd see the world).
on_host() { local h=$1; shift; nsenter --net="/run/netns/$(hns "$h")" "$@"; }

cluster_up() {
    ip netns add "$UND"; EXTRA_NETNS+=("$UND")
    ip -n "$UND" link add ubr type bridge
    ip -n "$UND" addr add "$UNDERLAY.2/24" dev ubr
    ip -n "$UND" link set ubr up; ip -n "$UND" link set lo up
    local h ns
    for h in "${HOSTS[@]}"; do
        ns=$(hns "$h")
        ip netns add "$ns"; EXTRA_NETNS+=("$ns")
        ip link add "bnu$h-$$" type veth peer name eth0 netns "$ns"
        ip link set "bnu$h-$$" netns "$UND"
        ip -n "$UND" link set "bnu$h-$$" master ubr up
        ip -n "$ns" addr add "$(vtep_of "$h")/24" dev eth0
        ip -n "$ns" link set eth0 up; ip -n "$ns" link set lo up
    done
}

start_etcd() {
    nsenter --net="/run/netns/$UND" etcd --name u --data-dir "$WORK/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://$UNDERLAY.2:23800" --initial-advertise-peer-urls "http://$UNDERLAY.2:23800" \
        --initial-cluster "u=http://$UNDERLAY.2:23800" >>"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 1 100); do
        nsenter --net="/run/netns/$UND" etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "etcd did not start: $(tail -5 "$WORK/etcd.log")"
}
start_host() {  # start_host H
    local h=$1
    mkdir -p "$WORK/h$h"
    [[ " ${AGENT_LOGS[*]} " =~ " $WORK/h$h.log " ]] || AGENT_LOGS+=("$WORK/h$h.log")
    # nsenter execs the agent: $! is the agent itself, which stop_host may SIGKILL.
    # shellcheck disable=SC2086  # HOST_FLAGS[H] is a list of flags
    nsenter --net="/run/netns/$(hns "$h")" "$BPFNETD" --state-dir "$WORK/h$h/state" \
        --run-dir "$WORK/h$h/run" --bpffs-root "$WORK/h$h/bpffs" --netns-dir "$WORK/h$h/netns" \
        --store etcd --etcd-endpoints "$ETCD_URL" --vtep-ip "$(vtep_of "$h")" --uplink none \
        --default-bridge none --log-level debug --plugin-socket "${HOST_PLUGIN[$h]:-}" ${HOST_FLAGS[$h]:-} \
        >>"$WORK/h$h.log" 2>&1 &
    AGENT[$h]=$!
    for _ in $(seq 1 100); do
        bnh "$h" version >/dev/null 2>&1 && return 0
        kill -0 "${AGENT[$h]}" 2>/dev/null || die "agent of host $h exited: $(tail -20 "$WORK/h$h.log")"
        sleep 0.1
    done
    die "agent of host $h did not answer"
}
stop_host() {  # stop_host H [KILL]: SIGTERM must end the agent with 0, SIGKILL with 137 (lib.sh)
    local h=$1 sig=${2:-TERM} status=0
    kill -"$sig" "${AGENT[$h]}" 2>/dev/null
    wait "${AGENT[$h]}" 2>/dev/null || status=$?
    AGENT[$h]=""
    check_agent_exit "the agent of host $h" "$sig" "$status" "$WORK/h$h.log"
}
cleanup_cluster() {
    local h f
    for h in "${HOSTS[@]}"; do
        [ -n "${AGENT[$h]:-}" ] && stop_host "$h"
        for f in "$WORK/h$h/netns"/* "$WORK/h$h/netns" "$WORK/h$h/bpffs"; do
            [ -e "$f" ] && umount -l "$f" 2>/dev/null
        done
    done
    [ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID" 2>/dev/null
    return 0
}
# On failure, what the hosts' agents said (the harness only shows its own agent's log).
host_logs() { local h; for h in "${HOSTS[@]}"; do echo "--- host $h:"; grep -E " (warning|error) " "$WORK/h$h.log" | tail -8; done; }
CLEANUP_HOOKS+=('[ $rc -ne 0 ] && host_logs >&2' cleanup_cluster)
# Waits up to $1 seconds for a command to succeed.
eventually() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.2; done
}
# "MAC VTEP" of every remote endpoint HOST tunnels to on NETWORK (a name or ID there).
tunnels_of() {
    local id vni
    id=$(bnh "$1" network inspect "$2" | python3 -c "import json,sys; o=json.load(sys.stdin)[0]['Options']; print(o.get('bpfnet.overlay', ''))")
    [ -n "$id" ] || id=$(bnh "$1" network inspect "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Id'])")
    id=${id:0:12}
    vni=$(bnh "$1" network inspect "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Options']['bpfnet.vni'])")
    if ! ip -n "$(hns "$1")" -o link show bpfnet_vx >/dev/null 2>&1; then  # kernel: the VXLAN device's FDB
        ip -n "$(hns "$1")" -o link show "vx-$id" >/dev/null 2>&1 || return 0
        bridge -n "$(hns "$1")" fdb show dev "vx-$id" | awk '$2 == "dst" {print $1, $3}'
    else  # BPF: the pinned tunnel map, this VNI's entries
        bpftool -j map dump pinned "$WORK/h$1/bpffs/bpfnet/bpfnet_tunnel" | python3 -c "
import json, socket, struct, sys
for e in json.load(sys.stdin):
    v = e['formatted']['value']
    if v['vni'] != $vni: continue
    print(':'.join('%02x' % b for b in v['mac']), socket.inet_ntoa(struct.pack('<I', v['vtep'])))"
    fi
}
fdb_of() { tunnels_of "$@"; }
has_network() { bnh "$1" network ls -q -f name="$2" | grep . >/dev/null; }
# The negative forms read first and fail when the reading fails (an agent that does not answer
# or a map that cannot be dumped has not shown that something is gone).
lacks_network() { local ids; ids=$(bnh "$1" network ls -q -f name="$2") || return 1; [ -z "$ids" ]; }
tunnels_to() { fdb_of "$1" "$2" | grep "^$3 $4\$" >/dev/null; }  # HOST NETWORK MAC VTEP
no_tunnel_for() {  # HOST NETWORK MAC
    local t; t=$(fdb_of "$1" "$2") || return 1
    ! grep "^$3 " >/dev/null <<<"$t"
}

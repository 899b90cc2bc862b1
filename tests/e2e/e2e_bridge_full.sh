#!/usr/bin/env bash
# A full bridge routes the next endpoint (endpoint mode auto, the default): a Linux bridge holds
# 1,023 ports (BR_MAX_PORTS). With a network's bridge filled by ports the test adds (veths),
# its next endpoint becomes a routed port (no master, the network's interface group, a /32 route)
# and talks to an endpoint that is a bridge port, to the gateway and to the host; removed, it leaves
# no route; with a port free again, the next endpoint is a bridge port. e2e_sec_scale (make
# test-all) gets there with 4,096 real endpoints in minutes; this is the same switch in seconds.
source "$(dirname "$0")/lib.sh"
start_agent
NET=full-$$
bn network create --subnet 10.236.0.0/24 "$NET" >/dev/null
bn sandbox create --network "$NET" --ip 10.236.0.10 "port-$$" >/dev/null
NET_ID=$(bn network inspect "$NET" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Id'])")
BRIDGE=bn-${NET_ID:0:12}
GROUP=$((16#${NET_ID:0:8} & 0x7fffffff))
[ "$GROUP" != 0 ] || GROUP=1
PORT_IF=$(host_if_of "port-$$" "$NET")
ip -o link show "$PORT_IF" | grep >/dev/null " master $BRIDGE " || die "$PORT_IF is not a port of $BRIDGE"

# Fill the bridge to 1,023 ports with veths whose peers live in a namespace of the test's own: one
# batch makes them, and the namespace's removal at exit takes them all at once (one by one, link
# deletions take ~20 ms each).
PEERS=bnt-bf-$$
ip netns add "$PEERS"; EXTRA_NETNS+=("$PEERS")
FILL=$((1023 - $(ls "/sys/class/net/$BRIDGE/brif" | wc -l)))
for i in $(seq 1 "$FILL"); do
    echo "link add bf$$-$i master $BRIDGE type veth peer name p$i netns $PEERS"
done | ip -batch - || die "could not add $FILL ports to $BRIDGE"
[ "$(ls "/sys/class/net/$BRIDGE/brif" | wc -l)" -eq 1023 ] || die "$BRIDGE does not have 1,023 ports"
log "$BRIDGE filled with $FILL veth ports"

# The next endpoint is routed.
bn sandbox create --network "$NET" --ip 10.236.0.11 "routed-$$" >/dev/null ||
    die "no endpoint on a network whose bridge is full"
R_IF=$(host_if_of "routed-$$" "$NET")
link=$(ip -d -o link show "$R_IF")
case "$link" in *" master "*) die "$R_IF is a bridge port although the bridge is full: $link" ;; esac
case "$link" in *" group $GROUP "*) ;; *) die "$R_IF is not in the network's group $GROUP: $link" ;; esac
ip route get 10.236.0.11 | grep >/dev/null "dev $R_IF" || die "no route to 10.236.0.11 via $R_IF"
in_sb "routed-$$" ping -c 1 -W 2 10.236.0.10 >/dev/null || die "the routed endpoint cannot reach the bridge port"
in_sb "port-$$" ping -c 1 -W 2 10.236.0.11 >/dev/null || die "the bridge port cannot reach the routed endpoint"
in_sb "routed-$$" ping -c 1 -W 2 10.236.0.1 >/dev/null || die "the routed endpoint cannot reach its gateway"
ping -c 1 -W 2 10.236.0.11 >/dev/null || die "the host cannot reach the routed endpoint"
assert_datapath "$NET"  # the routed endpoint too
ip route show exact 10.236.0.11/32 | grep >/dev/null "dev $R_IF" || die "no /32 route via $R_IF"
bn sandbox rm "routed-$$" >/dev/null
ip route show exact 10.236.0.11/32 | grep >/dev/null . &&
    die "the routed endpoint's route outlived it: $(ip route show exact 10.236.0.11/32)"

# A port free again: the next endpoint is a bridge port.
ip link del "bf$$-1"
bn sandbox create --network "$NET" --ip 10.236.0.12 "again-$$" >/dev/null
ip -o link show "$(host_if_of "again-$$" "$NET")" | grep >/dev/null " master $BRIDGE " ||
    die "with room on the bridge, the new endpoint is not a bridge port"
in_sb "again-$$" ping -c 1 -W 2 10.236.0.10 >/dev/null || die "the new bridge port cannot reach the first"
log "ok: a full bridge routed the next endpoint; with room again, a bridge port"

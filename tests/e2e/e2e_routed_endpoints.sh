#!/usr/bin/env bash
# Routed endpoints (-o bpfnet.endpoint_mode=routed; what every endpoint past a full bridge's 1,023
# ports becomes under `auto`): the host end is no bridge port but carries the bridge's MAC and the
# network's interface group, with a /32 route and a permanent neighbour entry. Endpoints reach each
# other, the gateway, the host and the outside (masqueraded); the host and the outside reach a
# published port (hairpin too); isolation from other networks, icc=false and --internal hold; a
# restart and a crash keep it all; a disconnect leaves no route behind.
source "$(dirname "$0")/lib.sh"
OUT=bnt-ro-$$
HOST_IP=10.226.255.1
make_outside "$OUT" "$HOST_IP/30" 10.226.255.2/30
AGENT_FLAGS+=(--uplink "${OUT}h")
start_agent
ROUTED=(-o bpfnet.endpoint_mode=routed)

NET=routed-$$
bn network create --subnet 10.226.1.0/24 "${ROUTED[@]}" "$NET" >/dev/null
bn network create --subnet 10.226.2.0/24 "other-$$" >/dev/null
bn network create --subnet 10.226.3.0/24 "${ROUTED[@]}" -o com.docker.network.bridge.enable_icc=false \
    "noicc-$$" >/dev/null
bn network create --subnet 10.226.4.0/24 "${ROUTED[@]}" --internal "intern-$$" >/dev/null
bn sandbox create --network "$NET" --ip 10.226.1.10 --publish 18400:80 "r1-$$" >/dev/null
bn sandbox create --network "$NET" --ip 10.226.1.11 "r2-$$" >/dev/null
bn sandbox create --network "other-$$" --ip 10.226.2.10 "o1-$$" >/dev/null
bn sandbox create --network "noicc-$$" --ip 10.226.3.10 "n1-$$" >/dev/null
bn sandbox create --network "noicc-$$" --ip 10.226.3.11 "n2-$$" >/dev/null
bn sandbox create --network "intern-$$" --ip 10.226.4.10 "i1-$$" >/dev/null
bn sandbox create --network "intern-$$" --ip 10.226.4.11 "i2-$$" >/dev/null

# The host end: no master, the bridge's MAC, the network's group; the host routes to it directly.
NET_ID=$(bn network inspect "$NET" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Id'])")
BRIDGE=bn-${NET_ID:0:12}
GROUP=$((16#${NET_ID:0:8} & 0x7fffffff))
[ "$GROUP" != 0 ] || GROUP=1
R1_IF=$(host_if_of "r1-$$" "$NET")
link=$(ip -d -o link show "$R1_IF")
case "$link" in *" master "*) die "routed endpoint $R1_IF is a bridge port: $link" ;; esac
case "$link" in *" group $GROUP "*) ;; *) die "$R1_IF is not in group $GROUP: $link" ;; esac
[ "$(cat "/sys/class/net/$R1_IF/address")" = "$(cat "/sys/class/net/$BRIDGE/address")" ] ||
    die "$R1_IF does not carry the bridge's MAC"
ip route get 10.226.1.10 | grep >/dev/null "dev $R1_IF" || die "no route to 10.226.1.10 via $R1_IF: $(ip route get 10.226.1.10)"
ip neigh show 10.226.1.10 dev "$R1_IF" | grep >/dev/null PERMANENT || die "no permanent neighbour entry for r1"

# Endpoints, gateway, host, outside.
in_sb "r1-$$" ping -c 1 -W 2 10.226.1.11 >/dev/null || die "r1 cannot reach r2"
in_sb "r2-$$" ping -c 1 -W 2 10.226.1.10 >/dev/null || die "r2 cannot reach r1"
in_sb "r1-$$" ping -c 1 -W 2 10.226.1.1 >/dev/null || die "r1 cannot reach its gateway"
ping -c 1 -W 2 10.226.1.10 >/dev/null || die "the host cannot reach r1"
# The outside namespace has no route back to 10.226.1.0/24: only a masqueraded ping returns.
in_sb "r1-$$" ping -c 1 -W 2 10.226.255.2 >/dev/null || die "r1 cannot reach the outside"

# A published port, from outside, from the host (a host address and loopback) and hairpin.
serve_http "r1-$$" 80
fetch() {  # fetch NETNS-PATH|host ADDR:PORT
    local run=()
    [ "$1" = host ] || run=(nsenter --net="$1")
    "${run[@]}" python3 -c "
import urllib.request
print(urllib.request.urlopen('http://$2/whoami', timeout=3).read().decode().strip())" 2>/dev/null || true
}
[ "$(fetch "/run/netns/$OUT" "$HOST_IP:18400")" = "r1-$$" ] || die "the published port is not reachable from outside"
[ "$(fetch host "$HOST_IP:18400")" = "r1-$$" ] || die "the published port is not reachable from the host"
[ "$(fetch host "127.0.0.1:18400")" = "r1-$$" ] || die "the published port is not reachable from the host's loopback"
[ "$(fetch "$NETNS_DIR/r2-$$" "$HOST_IP:18400")" = "r1-$$" ] || die "r2 cannot reach r1's published port through the host"
[ "$(fetch "$NETNS_DIR/r1-$$" "$HOST_IP:18400")" = "r1-$$" ] || die "r1 cannot reach its own published port (hairpin)"
assert_datapath "$NET"
[ "$(fetch "$NETNS_DIR/o1-$$" "$HOST_IP:18400")" = "r1-$$" ] || die "published ports are reachable from every network"
# ...but the loopback route a routed port allows for this is closed to the endpoint itself.
if in_sb "r1-$$" python3 -c "
import socket; s = socket.create_connection(('127.0.0.1', 18400), 1)" 2>/dev/null; then
    die "127.0.0.1:18400 inside a sandbox reached the published port"
fi

# Isolation both ways, icc=false, internal.
if in_sb "o1-$$" ping -c 1 -W 1 10.226.1.10 >/dev/null; then die "another network reached a routed endpoint"; fi
if in_sb "r1-$$" ping -c 1 -W 1 10.226.2.10 >/dev/null; then die "a routed endpoint reached another network"; fi
in_sb "r1-$$" ip route add 10.226.2.0/24 via 10.226.1.1  # (must take: the check below needs the route)
if in_sb "r1-$$" ping -c 1 -W 1 10.226.2.10 >/dev/null; then die "a routed endpoint reached another network through its gateway"; fi
if in_sb "n1-$$" ping -c 1 -W 1 10.226.3.11 >/dev/null; then die "icc=false lets routed endpoints talk"; fi
in_sb "n1-$$" ping -c 1 -W 2 10.226.3.1 >/dev/null || die "icc=false must still reach the gateway"
in_sb "n1-$$" ping -c 1 -W 2 10.226.255.2 >/dev/null || die "icc=false must still reach the outside"
in_sb "i1-$$" ping -c 1 -W 2 10.226.4.11 >/dev/null || die "routed endpoints of an internal network must reach each other"
in_sb "i1-$$" ip route add 10.226.255.0/30 via 10.226.4.1
if in_sb "i1-$$" ping -c 1 -W 1 10.226.255.2 >/dev/null; then die "a routed endpoint of an internal network reached the outside"; fi

# A restart and a crash keep the endpoints routed and reachable.
stop_agent
start_agent
kill_agent
start_agent
link=$(ip -d -o link show "$R1_IF")
case "$link" in *" master "*) die "after restarts $R1_IF became a bridge port: $link" ;; esac
in_sb "r1-$$" ping -c 1 -W 2 10.226.1.11 >/dev/null || die "after restarts r1 cannot reach r2"
ping -c 1 -W 2 10.226.1.11 >/dev/null || die "after restarts the host cannot reach r2"

# Disconnecting takes the route and the neighbour entry with the link.
R2_IF=$(host_if_of "r2-$$" "$NET")
ip route show 10.226.1.11 | grep >/dev/null "dev $R2_IF" || die "no route to r2 via $R2_IF: $(ip route show 10.226.1.11)"
ip neigh show 10.226.1.11 | grep >/dev/null PERMANENT || die "no permanent neighbour entry for r2"
bn network disconnect "$NET" "r2-$$"
ip route show 10.226.1.11 | grep >/dev/null . && die "a route to the disconnected r2 is left"
ip neigh show 10.226.1.11 | grep >/dev/null PERMANENT && die "a neighbour entry of the disconnected r2 is left"
# A bridge-only network refuses nothing at this size, and its endpoints stay bridge ports.
bn network create --subnet 10.226.5.0/24 -o bpfnet.endpoint_mode=bridge "ports-$$" >/dev/null
bn sandbox create --network "ports-$$" "p1-$$" >/dev/null
ip -d -o link show "$(host_if_of "p1-$$" "ports-$$")" | grep >/dev/null " master " ||
    die "endpoint_mode=bridge did not make a bridge port"
# The host knows a bridge port's endpoint without ARP (a flood to ~1,000 ports can lose the answer)
# and forgets it with the endpoint.
P1_IP=$(bn sandbox inspect "p1-$$" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['ports-$$']['IPAddress'])")
ip neigh show "$P1_IP" | grep >/dev/null PERMANENT || die "no permanent neighbour entry for p1 on its bridge"
bn network disconnect "ports-$$" "p1-$$"
ip neigh show "$P1_IP" | grep >/dev/null PERMANENT && die "the neighbour entry of the disconnected p1 is left"
expect_fail "expected auto, bridge or routed" bn network create --subnet 10.226.6.0/24 \
    -o bpfnet.endpoint_mode=sideways "bad-$$"
log "ok"

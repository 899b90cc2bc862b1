#!/usr/bin/env bash
# Gateway modes (com.docker.network.bridge.gateway_mode_ipv4) and the firewall around bpfnet's
# networks, from three namespaces standing for the outside: one behind the uplink (--uplink), one
# behind a veth that is no uplink, one behind a veth a network trusts (trusted_host_interfaces);
# each routes the networks' subnets back through the host, as a router next to it would.
#  - nat (the default): masqueraded; published ports answer from every interface; a packet routed
#    to a container's own address is dropped from the uplink (on BPF already by the uplink
#    program, reason unpublished) and from any other interface (nftables, counter "bpfnet direct
#    routing: <bridge>"), but from a trusted interface.
#  - nat-unprotected: masqueraded, every container port reachable at the container's address.
#  - routed: not masqueraded; the published container ports and ICMP reachable at the container's
#    address, nothing else; the host port of -p is not used.
#  - isolated (--internal only): the bridge has no address; containers reach each other only.
#  - invalid modes and unknown com.docker.network.* options are refused by name.
#  - host_binding_ipv4: -p without an address binds to that host address only.
#  - container_iface_prefix names the sandbox interfaces <prefix>0, <prefix>1; the endpoint option
#    com.docker.network.endpoint.ifname names one.
#  - another container runtime's bridge (a plain Linux bridge with a namespace behind it) is
#    isolated both ways (on BPF the endpoint program drops, reason other-bridge, seen by monitor;
#    nftables counts the rest), but for the host's own address on it and published ports.
#  - `bpfnet status` names each network's gateway mode.
source "$(dirname "$0")/lib.sh"
OUT=bnt-gu-$$      # behind the uplink
OTHER=bnt-gv-$$    # behind a veth that is no uplink
TRUST=bnt-gt-$$    # behind a veth the trusted network names
HOST_IP=10.238.255.1; OUT_IP=10.238.255.2
OTHER_HOST_IP=10.238.254.1; OTHER_IP=10.238.254.2
TRUST_HOST_IP=10.238.253.1; TRUST_IP=10.238.253.2
make_outside "$OUT" "$HOST_IP/30" "$OUT_IP/30"
make_outside "$OTHER" "$OTHER_HOST_IP/30" "$OTHER_IP/30"
make_outside "$TRUST" "$TRUST_HOST_IP/30" "$TRUST_IP/30"
ip -n "$OUT" route add 10.238.0.0/20 via "$HOST_IP"
ip -n "$OTHER" route add 10.238.0.0/20 via "$OTHER_HOST_IP"
ip -n "$TRUST" route add 10.238.0.0/20 via "$TRUST_HOST_IP"
AGENT_FLAGS+=(--uplink "${OUT}h")
start_agent

ns_path() { if [ -e "$NETNS_DIR/$1" ]; then echo "$NETNS_DIR/$1"; else echo "/run/netns/$1"; fi; }
# serve WHERE PORT: busybox httpd in a sandbox or namespace answering /whoami with WHERE's name and
# /cgi-bin/peer with the client's address as the server sees it; returns once it listens.
serve() {
    local dir="$WORK/www-$1"
    if [ ! -d "$dir" ]; then
        mkdir -p "$dir/cgi-bin"
        echo "$1" >"$dir/whoami"
        printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%%s\\n" "$REMOTE_ADDR"\n' \
            >"$dir/cgi-bin/peer"
        chmod +x "$dir/cgi-bin/peer"
    fi
    nsenter --net="$(ns_path "$1")" busybox httpd -f -p "0.0.0.0:$2" -h "$dir" &
    SERVER_PIDS+=($!)
    wait_listening "$(ns_path "$1")" tcp "$2"
}
# fetch WHERE ADDR:PORT [PATH [TIMEOUT]]: the body of http://ADDR:PORT/PATH fetched from WHERE
# ("host", a sandbox or a namespace); curl's status.
fetch() {
    local run=()
    [ "$1" = host ] || run=(nsenter --net="$(ns_path "$1")")
    "${run[@]}" curl -sf --noproxy '*' --max-time "${4:-3}" "http://$2/${3:-whoami}" 2>/dev/null
}
expect_body() {  # expect_body WHERE ADDR:PORT EXPECTED [PATH]
    local got
    got=$(fetch "$1" "$2" "${4:-whoami}") || true
    [ "$got" = "$3" ] || die "from $1, http://$2/${4:-whoami} answered '$got', expected '$3'"
}
# expect_dropped WHERE ADDR:PORT WHY: the connection gets no answer at all (curl times out: the SYN
# was dropped, not refused). Half a second: between namespaces of one host an answer takes well
# under a millisecond, and the drops are also proven by their counters.
expect_dropped() {
    local got rc=0
    got=$(fetch "$1" "$2" whoami 0.5) || rc=$?
    [ "$rc" -ne 0 ] || die "from $1, http://$2 answered '$got': $3"
    [ "$rc" -eq 28 ] || die "from $1, http://$2 failed with curl status $rc, not a timeout (a drop): $3"
}
expect_no_ping() {  # expect_no_ping WHERE ADDR WHY
    if nsenter --net="$(ns_path "$1")" ping -c 1 -W 0.5 "$2" >/dev/null 2>&1; then die "from $1, $2 answered a ping: $3"; fi
}
expect_ping() {  # expect_ping WHERE ADDR WHAT
    nsenter --net="$(ns_path "$1")" ping -c 1 -W 2 "$2" >/dev/null || die "from $1, no answer to a ping of $2 ($3)"
}
GW=com.docker.network.bridge.gateway_mode_ipv4

# Refused options, by name; nothing is left behind.
expect_fail "$GW" bn network create --subnet 10.238.9.0/24 -o "$GW=isolated" "bad-$$"
expect_fail "$GW" bn network create --subnet 10.238.9.0/24 -o "$GW=natted" "bad-$$"
expect_fail "com.docker.network.bridge.bogus" bn network create --subnet 10.238.9.0/24 \
    -o com.docker.network.bridge.bogus=1 "bad-$$"
if bn network ls -q -f "name=bad-$$" | grep >/dev/null .; then die "a refused network exists"; fi

NAT=gwnat-$$; TRUSTED=gwtrust-$$; UNPROT=gwunp-$$; ROUTED=gwrt-$$; ISO=gwiso-$$; HB=gwhb-$$
PFX=gwpfx-$$; PFX2=gwpfx2-$$
bn network create --subnet 10.238.1.0/24 "$NAT" >/dev/null   # nat: the default
# Two names, as Docker writes them: the second does not exist (a name, not a device, is trusted).
bn network create --subnet 10.238.2.0/24 -o "$GW=nat" \
    -o "com.docker.network.bridge.trusted_host_interfaces=bnx$$:${TRUST}h" "$TRUSTED" >/dev/null
bn network create --subnet 10.238.3.0/24 -o "$GW=nat-unprotected" "$UNPROT" >/dev/null
bn network create --subnet 10.238.4.0/24 -o "$GW=routed" "$ROUTED" >/dev/null
bn network create --subnet 10.238.5.0/24 --internal -o "$GW=isolated" "$ISO" >/dev/null
bn network create --subnet 10.238.6.0/24 -o "com.docker.network.bridge.host_binding_ipv4=$OTHER_HOST_IP" \
    "$HB" >/dev/null
bn network create --subnet 10.238.7.0/24 -o com.docker.network.container_iface_prefix=ctr "$PFX" >/dev/null
bn network create --subnet 10.238.8.0/24 -o com.docker.network.container_iface_prefix=ctr "$PFX2" >/dev/null
N1=10.238.1.10; T1=10.238.2.10; U1=10.238.3.10; R1=10.238.4.10; I1=10.238.5.10; I2=10.238.5.11
bn sandbox create --network "$NAT" --ip "$N1" -p 18381:80 "n1-$$" >/dev/null
bn sandbox create --network "$TRUSTED" --ip "$T1" "t1-$$" >/dev/null
bn sandbox create --network "$UNPROT" --ip "$U1" "u1-$$" >/dev/null
bn sandbox create --network "$ROUTED" --ip "$R1" -p 18384:80 "r1-$$" >/dev/null
bn sandbox create --network "$ISO" --ip "$I1" "i1-$$" >/dev/null
bn sandbox create --network "$ISO" --ip "$I2" "i2-$$" >/dev/null
bn sandbox create --network "$HB" --ip 10.238.6.10 -p 18386:80 "h1-$$" >/dev/null
for s in n1:80 n1:8080 t1:8080 u1:8080 r1:80 r1:8080 h1:80; do serve "${s%:*}-$$" "${s#*:}"; done
serve "$OUT" 80

# --- nat: published ports answer from the uplink, from another interface and from the host;
# outbound is masqueraded (the outside sees the host's address).
expect_body "$OUT" "$HOST_IP:18381" "n1-$$"
expect_body "$OTHER" "$OTHER_HOST_IP:18381" "n1-$$"
expect_body host "127.0.0.1:18381" "n1-$$"
expect_body "n1-$$" "$OUT_IP:80" "$HOST_IP" cgi-bin/peer
NAT_BR=$(bridge_of "$NAT")
DIRECT="bpfnet direct routing: $NAT_BR"
# The same paths, routed straight to the container's address: nothing answers, neither its
# unpublished port nor its published container port, nor ping.
before_nft=$(nft_counter "$DIRECT")
[ "$E2E_DATAPATH" = bpf ] && before_bpf=$(drop_count 10)
expect_dropped "$OUT" "$N1:8080" "nat: an unpublished port reached from the uplink by routing"
expect_dropped "$OUT" "$N1:80" "nat: a container port reached from the uplink by routing"
expect_no_ping "$OUT" "$N1" "nat: a container pinged from the uplink by routing"
after_nft=$(nft_counter "$DIRECT")
if [ "$E2E_DATAPATH" = bpf ]; then
    # Dropped by the uplink program before netfilter saw them.
    [ "$(drop_count 10)" -gt "$before_bpf" ] || die "no drop counted under reason unpublished (10)"
    [ "$after_nft" -eq "$before_nft" ] || die "'$DIRECT' counted $((after_nft - before_nft)) packets from the uplink: the uplink program should have dropped them"
else
    [ "$after_nft" -gt "$before_nft" ] || die "'$DIRECT' counted nothing from the uplink"
fi
expect_dropped "$OTHER" "$N1:8080" "nat: an unpublished port reached from a non-uplink veth"
expect_no_ping "$OTHER" "$N1" "nat: a container pinged from a non-uplink veth"
[ "$(nft_counter "$DIRECT")" -gt "$after_nft" ] || die "'$DIRECT' counted nothing from a non-uplink veth"

# --- nat-unprotected: any port at the container's address, from any interface; masqueraded.
expect_body "$OUT" "$U1:8080" "u1-$$"
expect_body "$OTHER" "$U1:8080" "u1-$$"
expect_ping "$OUT" "$U1" "nat-unprotected"
expect_body "u1-$$" "$OUT_IP:80" "$HOST_IP" cgi-bin/peer

# --- nat with trusted interfaces: direct routing from those only.
expect_body "$TRUST" "$T1:8080" "t1-$$"
TRUST_DIRECT="bpfnet direct routing: $(bridge_of "$TRUSTED")"
before_nft=$(nft_counter "$TRUST_DIRECT")
expect_dropped "$OTHER" "$T1:8080" "nat with trusted interfaces: reached from an untrusted veth"
[ "$(nft_counter "$TRUST_DIRECT")" -gt "$before_nft" ] || die "'$TRUST_DIRECT' counted nothing"

# --- routed: published container ports and ICMP at the container's own address, not masqueraded;
# other ports dropped; the host port of -p is not used.
expect_body "$OUT" "$R1:80" "r1-$$"
expect_body "$OTHER" "$R1:80" "r1-$$"
expect_ping "$OUT" "$R1" "routed: ICMP echo is open"
expect_body "r1-$$" "$OUT_IP:80" "$R1" cgi-bin/peer   # the outside sees the container's address
ROUTED_DIRECT="bpfnet direct routing: $(bridge_of "$ROUTED")"
before_nft=$(nft_counter "$ROUTED_DIRECT")
expect_dropped "$OUT" "$R1:8080" "routed: an unpublished container port"
[ "$(nft_counter "$ROUTED_DIRECT")" -gt "$before_nft" ] || die "'$ROUTED_DIRECT' counted nothing"
if got=$(fetch "$OUT" "$HOST_IP:18384" whoami 1); then die "routed: the host port 18384 answered '$got'"; fi

# --- isolated: no address on the bridge (so no route to it on the host); containers reach each
# other but not the gateway address.
ISO_BR=$(bridge_of "$ISO")
[ -z "$(ip -4 -o addr show dev "$ISO_BR")" ] || die "isolated: $ISO_BR has $(ip -4 -o addr show dev "$ISO_BR")"
[ -z "$(ip -4 route show dev "$ISO_BR")" ] || die "isolated: the host routes to $ISO_BR: $(ip -4 route show dev "$ISO_BR")"
expect_ping "i1-$$" "$I2" "isolated: containers of the network"
expect_no_ping "i1-$$" 10.238.5.1 "isolated: the gateway address belongs to nobody"
if in_ns "i1-$$" ip route | grep >/dev/null default; then die "isolated: a default route in i1"; fi

# --- host_binding_ipv4: -p 18386:80 binds to that address only.
[ "$(bn port "h1-$$")" = "80/tcp -> $OTHER_HOST_IP:18386" ] || die "host_binding_ipv4: bpfnet port says $(bn port "h1-$$")"
expect_body "$OTHER" "$OTHER_HOST_IP:18386" "h1-$$"
expect_body host "$OTHER_HOST_IP:18386" "h1-$$"
# The uplink path works for another network's port (above), not for this one on another address.
if got=$(fetch "$OUT" "$HOST_IP:18386" whoami 1); then die "host_binding_ipv4: $HOST_IP:18386 answered '$got' from outside"; fi
if got=$(fetch host "$HOST_IP:18386" whoami 1); then die "host_binding_ipv4: $HOST_IP:18386 answered '$got' on the host"; fi
if got=$(fetch host "127.0.0.1:18386" whoami 1); then die "host_binding_ipv4: 127.0.0.1:18386 answered '$got'"; fi

# --- container_iface_prefix and endpoint.ifname.
bn sandbox create --network "$PFX" --ip 10.238.7.10 "p1-$$" >/dev/null
bn network connect --ip 10.238.8.10 "$PFX2" "p1-$$"
bn sandbox create "p2-$$" >/dev/null
bn network connect --ip 10.238.7.11 --driver-opt com.docker.network.endpoint.ifname=front "$PFX" "p2-$$"
in_ns "p1-$$" ip -o -4 addr show dev ctr0 | grep >/dev/null "10.238.7.10/24" || die "p1 has no ctr0 on $PFX: $(in_ns "p1-$$" ip -o -4 addr)"
in_ns "p1-$$" ip -o -4 addr show dev ctr1 | grep >/dev/null "10.238.8.10/24" || die "p1 has no ctr1 on $PFX2: $(in_ns "p1-$$" ip -o -4 addr)"
in_ns "p2-$$" ip -o -4 addr show dev front | grep >/dev/null "10.238.7.11/24" || die "p2 has no interface 'front': $(in_ns "p2-$$" ip -o -4 addr)"
if in_ns "p1-$$" ip link show eth0 >/dev/null 2>&1; then die "p1 has an eth0 besides ctr0"; fi
expect_ping "p1-$$" 10.238.7.11 "from ctr0 to the endpoint named front"
expect_fail "front" bn network connect --driver-opt com.docker.network.endpoint.ifname=front "$PFX2" "p2-$$"

# --- another container runtime's bridge (a plain Linux bridge, a namespace behind it), made while
# the agent runs: isolated both ways but for the host's own address on it and published ports.
FBR=bnt-fb-$$; FNS=bnt-fn-$$; FOREIGN_GW=10.238.50.1; FOREIGN_IP=10.238.50.2
ip link add "$FBR" type bridge; EXTRA_LINKS+=("$FBR")
ip addr add "$FOREIGN_GW/24" dev "$FBR"; ip link set "$FBR" up
ip netns add "$FNS"; EXTRA_NETNS+=("$FNS")
ip link add "bnt-fv-$$" type veth peer name eth0 netns "$FNS"; EXTRA_LINKS+=("bnt-fv-$$")
ip link set "bnt-fv-$$" master "$FBR" up
ip -n "$FNS" addr add "$FOREIGN_IP/24" dev eth0
ip -n "$FNS" link set eth0 up; ip -n "$FNS" link set lo up
ip -n "$FNS" route add default via "$FOREIGN_GW"
serve "$FNS" 80
expect_body host "$FOREIGN_IP:80" "$FNS"   # the foreign "container" serves
# The agent follows the host's links and addresses: it lists the bridge as another network.
other_bridge_listed() { bn status | grep >/dev/null -- "$FBR"; }
wait_until 10 other_bridge_listed || die "bpfnet status does not list $FBR: $(bn status | grep -i interfaces)"
# Outbound: the host's address on that bridge is reachable (and the outside, above); what is behind
# it is not.
expect_ping "n1-$$" "$FOREIGN_GW" "the host's own address on another bridge"
OUTBOUND="bpfnet isolation from other bridges, outbound: $NAT_BR"
before_nft=$(nft_counter "$OUTBOUND")
if [ "$E2E_DATAPATH" = bpf ]; then
    before_bpf=$(drop_count 11)
    # By n1's host interface: the monitor also shows events from before it started, such as the
    # uplink's drops of packets to n1's address above.
    bn --bpffs-root "$BPFFS_DIR" monitor --type drop --endpoint "$(host_if_of "n1-$$" "$NAT")" \
        --count 1 --duration 10 \
        --format json >"$WORK/drop.json" 2>"$WORK/drop.err" &
    MON=$!; SERVER_PIDS+=("$MON")
    wait_until 10 ringbuf_reader "$MON" \
        || die "the drop monitor did not open the event ring buffer: $(cat "$WORK/drop.err" "$WORK/drop.json")"
fi
expect_no_ping "n1-$$" "$FOREIGN_IP" "a container reached another runtime's container"
expect_dropped "n1-$$" "$FOREIGN_IP:80" "a container reached another runtime's container"
if [ "$E2E_DATAPATH" = bpf ]; then
    [ "$(drop_count 11)" -gt "$before_bpf" ] || die "no drop counted under reason other-bridge (11)"
    wait "$MON" || true
    python3 - "$WORK/drop.json" "$N1" "$FOREIGN_IP" <<'PY' || die "monitor did not report the drop: $(cat "$WORK/drop.json")"
import json, sys
ev = json.loads(open(sys.argv[1]).readline())
assert ev["type"] == "drop" and ev["reason"] == "other-bridge", ev
assert ev["src"] == sys.argv[2] and ev["dst"] == sys.argv[3], ev
PY
else
    [ "$(nft_counter "$OUTBOUND")" -gt "$before_nft" ] || die "'$OUTBOUND' counted nothing"
fi
# Inbound: a published port through the host's address on that bridge answers; the container's
# own address does not.
expect_body "$FNS" "$FOREIGN_GW:18381" "n1-$$"
INBOUND="bpfnet isolation from other bridges, inbound: $NAT_BR"
before_nft=$(nft_counter "$INBOUND")
expect_dropped "$FNS" "$N1:8080" "another runtime's container reached an unpublished port"
expect_dropped "$FNS" "$N1:80" "another runtime's container reached a container port directly"
[ "$(nft_counter "$INBOUND")" -gt "$before_nft" ] || die "'$INBOUND' counted nothing"

# --- bpfnet status names each network's gateway mode in its Firewall section.
firewall=$(bn status | sed -n '/^Firewall:/,$p')
for nm in "$NAT:nat" "$TRUSTED:nat" "$UNPROT:nat-unprotected" "$ROUTED:routed" "$ISO:isolated"; do
    grep -E >/dev/null -- "${nm%%:*}.*(^|[^[:alnum:]-])${nm#*:}([^[:alnum:]-]|$)" <<<"$firewall" \
        || die "status has no Firewall line naming ${nm%%:*} with mode ${nm#*:}: $firewall"
done

for n in "$NAT" "$TRUSTED" "$UNPROT" "$ROUTED" "$ISO" "$HB" "$PFX"; do assert_datapath "$n"; done

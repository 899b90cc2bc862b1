#!/usr/bin/env bash
# Isolation under attack, on the BPF datapath: a container that forges its source MAC or IP,
# answers ARP for another container's address, or sends into another network's subnet, and an
# outside host that routes straight to a container's address instead of through a published
# port: every such packet is dropped before it reaches anyone, and counted under its own drop
# reason (bpfnet stats). Legitimate traffic keeps flowing throughout.
source "$(dirname "$0")/lib.sh"
OUT=bnt-at-$$
HOST_IP=10.221.255.1
make_outside "$OUT" "$HOST_IP/30" 10.221.255.2/30
AGENT_FLAGS+=(--uplink "${OUT}h")
start_agent
bi() { bn --bpffs-root "$BPFFS_DIR" "$@"; }
N1=atk1-$$; N2=atk2-$$
bn network create --subnet 10.221.1.0/24 "$N1" >/dev/null
bn network create --subnet 10.221.2.0/24 "$N2" >/dev/null
bn sandbox create --network "$N1" "a-$$" >/dev/null
bn sandbox create --network "$N1" --publish 18921:8000 "b-$$" >/dev/null
bn sandbox create --network "$N2" "c-$$" >/dev/null
ip_of() { bn sandbox inspect "$1" | python3 -c "import json,sys; print(list(json.load(sys.stdin)[0]['Networks'].values())[0]['IPAddress'])"; }
A=$(ip_of "a-$$"); B=$(ip_of "b-$$"); C=$(ip_of "c-$$")
drops() { bi stats --format json | python3 -c "import json,sys; print({d['reason']: d['packets'] for d in json.load(sys.stdin)['drops']}.get('$1', 0))"; }
expect_drops() {  # expect_drops REASON BEFORE: the count grew
    local now; now=$(drops "$1")
    [ "$now" -gt "$2" ] || die "no packet was counted under $1 (still $now)"
}
in_ns "a-$$" ping -c 1 -W 2 "$B" >/dev/null || die "a cannot reach b before the attacks"

# 1. A forged source MAC.
before=$(drops spoofed-mac)
real_mac=$(in_ns "a-$$" ip -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)  # (sysfs would show the host's)
in_ns "a-$$" ip link set eth0 address 02:de:ad:be:ef:01
if in_ns "a-$$" ping -c 2 -W 1 "$B" >/dev/null 2>&1; then die "a reached b with a forged MAC"; fi
in_ns "a-$$" ip link set eth0 address "$real_mac"
expect_drops spoofed-mac "$before"

# 2. A forged source IP (another container's, and one nobody has).
before=$(drops spoofed-ip)
in_ns "a-$$" ip addr add 10.221.1.250/32 dev eth0
if in_ns "a-$$" ping -c 2 -W 1 -I 10.221.1.250 "$B" >/dev/null 2>&1; then die "a reached b from a forged address"; fi
in_ns "a-$$" ip addr del 10.221.1.250/32 dev eth0
expect_drops spoofed-ip "$before"

# 3. ARP replies claiming b's address (cache poisoning of the gateway and of b).
before=$(drops spoofed-ip)
in_ns "a-$$" python3 - "$A" "$B" "$real_mac" <<'PY'
import socket, struct, sys
a_ip, b_ip, a_mac = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, a_mac, socket.inet_aton(b_ip), b"\xff" * 6,
                  socket.inet_aton(b_ip))
for _ in range(3):
    s.send(b"\xff" * 6 + a_mac + b"\x08\x06" + arp + b"\0" * 18)
PY
expect_drops spoofed-ip "$before"

# 4. Into another network's subnet (c is on N2).
before=$(drops cross-network)
if in_ns "a-$$" ping -c 2 -W 1 "$C" >/dev/null 2>&1; then die "a reached c on another network"; fi
expect_drops cross-network "$before"

# 5. From outside, routed straight to a container's address (its real port) instead of the
#    published host port: dropped; the published port still works.
ip netns exec "$OUT" ip route add 10.221.1.0/24 via "$HOST_IP"
mkdir -p "$WORK/www" && echo hi >"$WORK/www/hi"
nsenter --net="$NETNS_DIR/b-$$" python3 -m http.server 8000 --bind 0.0.0.0 --directory "$WORK/www" >/dev/null 2>&1 &
SERVER=$!; CLEANUP_HOOKS+=("kill $SERVER 2>/dev/null")
fetch() { ip netns exec "$OUT" python3 -c "import urllib.request; print(urllib.request.urlopen('http://$1/hi', timeout=2).read().decode().strip())" 2>/dev/null; }
for _ in $(seq 1 30); do [ "$(fetch "$HOST_IP:18921")" = hi ] && break; sleep 0.2; done
[ "$(fetch "$HOST_IP:18921")" = hi ] || die "the published port does not answer"
before=$(drops unpublished)
[ -z "$(fetch "$B:8000")" ] || die "outside reached b's unpublished port by routing to its address"
if ip netns exec "$OUT" ping -c 2 -W 1 "$A" >/dev/null 2>&1; then die "outside pinged a container directly"; fi
expect_drops unpublished "$before"
[ "$(fetch "$HOST_IP:18921")" = hi ] || die "the published port stopped answering"

assert_datapath_is "$N1" bpf

# Legitimate traffic never stopped; the monitor names a reason for each kind of drop.
in_ns "a-$$" ping -c 1 -W 2 "$B" >/dev/null || die "a cannot reach b after the attacks"
for reason in spoofed-mac spoofed-ip cross-network unpublished; do
    [ "$(drops "$reason")" -gt 0 ] || die "nothing counted under $reason"
done
log "ok"

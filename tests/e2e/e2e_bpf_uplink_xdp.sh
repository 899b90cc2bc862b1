#!/usr/bin/env bash
# Published ports from outside through the uplink's XDP program: an uplink veth with XDP forced
# on (--uplink-xdp always; the client side sends fully checksummed packets, as a NIC delivers
# them), HTTP and UDP from the outside namespace translated in XDP and redirected into the sandbox,
# replies translated by the endpoint program; the pinned XDP link keeps serving while the agent is
# stopped and is re-adopted on start; --uplink-xdp never takes it off (TC serves alone); the
# default policy leaves veth uplinks to TC and says why.
source "$(dirname "$0")/lib.sh"
OUT=bnt-xd-$$
HOST_IP=10.220.255.1
make_outside "$OUT" "$HOST_IP/30" 10.220.255.2/30
# veth peers hand over TCP/UDP with partial checksums (offload), which XDP cannot see; a physical
# NIC delivers complete ones. Turning the client's offload off gives the uplink real-NIC input.
ip netns exec "$OUT" ethtool -K eth0 tx off >/dev/null
AGENT_FLAGS+=(--uplink "${OUT}h" --uplink-xdp always)
start_agent
PIDS=()
CLEANUP_HOOKS+=('for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done')

NET=xdp-$$
bn network create --subnet 10.220.1.0/24 "$NET" >/dev/null
bn sandbox create "web-$$" >/dev/null
bn network connect --publish 18280:80 --publish 15553:5353/udp "$NET" "web-$$"
serve_http "web-$$" 80
nsenter --net="$NETNS_DIR/web-$$" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353))
while True:
    data, peer = s.recvfrom(2048); s.sendto(b'echo:' + data, peer)" >/dev/null 2>&1 &
PIDS+=($!)

nat_packets() {  # nat_packets COUNTER: enum bpfnet_nat_counter, summed over CPUs
    bpftool -j map lookup pinned "$BPFFS_DIR/bpfnet/bpfnet_nat_cnt" key "$1" 0 0 0 | python3 -c "
import json, sys
print(sum(cpu['value']['packets'] for cpu in json.load(sys.stdin)['formatted']['values']))"
}
fetch_outside() {
    ip netns exec "$OUT" python3 -c "
import urllib.request
print(urllib.request.urlopen('http://$HOST_IP:18280/whoami', timeout=3).read().decode().strip())" \
        2>/dev/null
}
udp_outside() {
    ip netns exec "$OUT" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b'ping', ('$HOST_IP', 15553)); print(s.recvfrom(2048)[0].decode())" 2>/dev/null
}
expect_outside() {
    local got
    got=$(fetch_outside) || true
    [ "$got" = "web-$$" ] || die "HTTP from outside answered '$got' ($1)"
    got=$(udp_outside) || true
    [ "$got" = "echo:ping" ] || die "UDP from outside answered '$got' ($1)"
}

status=$(bn status)
grep -q "at uplink ${OUT}h xdp (native) + tc ingress" <<<"$status" || die "status: $status"
ip link show "${OUT}h" | grep >/dev/null " xdp " || die "no XDP program on ${OUT}h"
xdp_before=$(nat_packets 9)
expect_outside "XDP"
# 9 = BPFNET_NAT_DNAT_XDP: the client's packets were translated in XDP (a TCP connection's first
# packet only creates the flow there when the endpoint can take XDP frames, which GRO gives it).
[ "$(nat_packets 9)" -ge $((xdp_before + 5)) ] || die "XDP translated nothing"
[ "$(nat_packets 2)" -ge 5 ] || die "no replies were reverse-NATed"
assert_datapath_is "$NET" bpf

# Stopped agent: the pinned XDP and TC links keep serving; a new agent re-adopts them.
stop_agent
expect_outside "agent stopped"
start_agent
ls "$BPFFS_DIR/bpfnet/uplink-xdp-links/${OUT}h" >/dev/null || die "XDP link not pinned"
xdp_before=$(nat_packets 9)
expect_outside "agent restarted"
[ "$(nat_packets 9)" -gt "$xdp_before" ] || die "XDP not serving after the restart"

# --uplink-xdp never: XDP comes off, TC serves alone.
stop_agent
AGENT_FLAGS+=(--uplink-xdp never)
start_agent
ip link show "${OUT}h" | grep >/dev/null " xdp " && die "XDP still on ${OUT}h with --uplink-xdp never"
[ -e "$BPFFS_DIR/bpfnet/uplink-xdp-links/${OUT}h" ] && die "stale XDP pin"
xdp_before=$(nat_packets 9)
dnat_before=$(nat_packets 1)
expect_outside "TC only"
[ "$(nat_packets 9)" -eq "$xdp_before" ] || die "XDP translated with --uplink-xdp never"
[ "$(nat_packets 1)" -gt "$dnat_before" ] || die "TC translated nothing"

# The default policy keeps XDP off veth uplinks, and says why.
stop_agent
AGENT_FLAGS+=(--uplink-xdp auto)
start_agent
status=$(bn status)
grep -q "${OUT}h tc ingress (tcx); XDP not used: veth" <<<"$status" || die "status: $status"
expect_outside "auto on veth"

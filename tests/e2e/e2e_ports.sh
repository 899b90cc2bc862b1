#!/usr/bin/env bash
# Published ports (-p): HTTP to a published port from an outside namespace on an uplink veth, from
# the host (127.0.0.1 and a host address), from another endpoint and from the endpoint itself
# (hairpin); UDP; ephemeral and ranged host ports; `bpfnet port`; a host port taken by bpfnet or by
# a listening process is refused; disconnect frees it; 1,000 ports on one endpoint.
source "$(dirname "$0")/lib.sh"
OUT=bnt-po-$$
HOST_IP=10.218.255.1
make_outside "$OUT" "$HOST_IP/30" 10.218.255.2/30
# The outside namespace's veth is this host's uplink: on the BPF datapath the uplink program
# translates connections from there; the kernel datapath ignores the option.
AGENT_FLAGS+=(--uplink "${OUT}h")
start_agent
PIDS=()
CLEANUP_HOOKS+=('for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done')

# Prints the body of http://ADDR/whoami fetched from NAMESPACE ("host" for the host itself).
fetch() {  # fetch NAMESPACE ADDR:PORT
    local run=()
    [ "$1" = host ] || run=(nsenter --net="$(ns_path "$1")")
    "${run[@]}" python3 -c "
import sys, urllib.request
print(urllib.request.urlopen('http://$2/whoami', timeout=3).read().decode().strip())" 2>/dev/null
}
ns_path() { if [ -e "$NETNS_DIR/$1" ]; then echo "$NETNS_DIR/$1"; else echo "/run/netns/$1"; fi; }
expect_body() {  # expect_body NAMESPACE ADDR:PORT EXPECTED
    local got
    got=$(fetch "$1" "$2") || true
    [ "$got" = "$3" ] || die "from $1, http://$2 answered '$got', expected '$3'"
}

NET=pub-$$
bn network create --subnet 10.218.1.0/24 "$NET" >/dev/null
for s in web api cli; do bn sandbox create "$s-$$" >/dev/null; done
bn network connect --publish 18080:80 --publish 15353:5353/udp --publish 18090-18099:8080 \
    --publish 80 "$NET" "web-$$"
bn network connect "$NET" "cli-$$"
serve_http "web-$$" 80
serve_http "web-$$" 8080

# `bpfnet port` lists them like `docker port`.
ports=$(bn port "web-$$")
echo "$ports" | grep -x >/dev/null "80/tcp -> 0.0.0.0:18080" || die "bpfnet port: $ports"
echo "$ports" | grep -x >/dev/null "5353/udp -> 0.0.0.0:15353" || die "bpfnet port: $ports"
echo "$ports" | grep -x >/dev/null "8080/tcp -> 0.0.0.0:18090" || die "ranged port not the first free: $ports"
ephemeral=$(echo "$ports" | awk '$1 == "80/tcp" && $3 != "0.0.0.0:18080" {print $3}' | cut -d: -f2)
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
[ -n "$ephemeral" ] && [ "$ephemeral" -ge "$eph_lo" ] && [ "$ephemeral" -le "$eph_hi" ] \
    || die "no ephemeral port from $eph_lo-$eph_hi: $ports"
[ "$(bn port "web-$$" 5353/udp)" = "5353/udp -> 0.0.0.0:15353" ] || die "bpfnet port with a filter"

# From outside, from the host, from a neighbour and from the endpoint itself.
expect_body "$OUT" "$HOST_IP:18080" "web-$$"
expect_body "$OUT" "$HOST_IP:18090" "web-$$"
expect_body "$OUT" "$HOST_IP:$ephemeral" "web-$$"
sum_percpu() {  # sum_percpu MAP KEY FIELD: a per-CPU counter of a pinned map, summed over CPUs
    bpftool -j map lookup pinned "$BPFFS_DIR/bpfnet/$1" key $2 0 0 0 | python3 -c "
import json, sys
print(sum(cpu['value']['$3'] for cpu in json.load(sys.stdin)['formatted']['values']))"
}
sock_rewrites() { sum_percpu bpfnet_sk_stats 0 rewrites; }  # connections rewritten at the socket
nat_packets() { sum_percpu bpfnet_nat_cnt "$1" packets; }   # enum bpfnet_nat_counter
if [ "$E2E_DATAPATH" = bpf ]; then
    # From outside, the uplink program did it: new flows, DNATed packets and translated replies
    # (0 = BPFNET_NAT_DNAT_NEW, 1 = DNAT, 2 = REPLY), two conntrack entries per flow.
    [ "$(nat_packets 0)" -ge 3 ] || die "the uplink program created no flows"
    [ "$(nat_packets 1)" -ge 9 ] || die "the uplink program DNATed nothing"
    [ "$(nat_packets 2)" -ge 9 ] || die "the endpoint program reverse-NATed no replies"
    ct_entries=$(bpftool -j map dump pinned "$BPFFS_DIR/bpfnet/bpfnet_ct" | python3 -c '
import json, sys; print(len(json.load(sys.stdin)))')
    [ "$ct_entries" -ge 6 ] || die "expected >= 6 conntrack entries, found $ct_entries"
    rewrites_before=$(sock_rewrites)
fi
expect_body host "127.0.0.1:18080" "web-$$"
expect_body host "$HOST_IP:18080" "web-$$"
if [ "$E2E_DATAPATH" = bpf ]; then
    status=$(bn status)
    grep -q "^Ports (bpf): from outside: BPF DNAT + conntrack (262144 entries) at uplink ${OUT}h tc ingress" \
        <<<"$status" || die "status: $status"
    grep -q "from the host: BPF socket NAT" <<<"$status" || die "status: $status"
    # On the BPF datapath the host's own connections are rewritten at the socket (no NAT).
    [ "$(sock_rewrites)" -ge $((rewrites_before + 2)) ] || die "the socket NAT rewrote nothing"
fi
[ "$E2E_DATAPATH" = bpf ] && rewrites_before=$(sock_rewrites)
expect_body "cli-$$" "$HOST_IP:18080" "web-$$"
expect_body "web-$$" "$HOST_IP:18080" "web-$$"
expect_body "cli-$$" "10.218.1.1:18080" "web-$$"  # the gateway is a host address too
if [ "$E2E_DATAPATH" = bpf ]; then
    # Sandboxes on the endpoint's network hairpin at the socket too (no NAT).
    [ "$(sock_rewrites)" -ge $((rewrites_before + 3)) ] || die "hairpin was not rewritten at the socket"
    # A sandbox on another network is not rewritten (that would cross networks): the kernel NAT
    # serves it, as it serves any client.
    bn network create --subnet 10.218.2.0/24 "oth-$$" >/dev/null
    bn sandbox create "oth-$$" >/dev/null
    bn network connect "oth-$$" "oth-$$"
    rewrites_before=$(sock_rewrites)
    expect_body "oth-$$" "$HOST_IP:18080" "web-$$"
    [ "$(sock_rewrites)" -eq "$rewrites_before" ] || die "a foreign network's sandbox was rewritten"
    bn sandbox rm "oth-$$" >/dev/null
    bn network rm "oth-$$" >/dev/null
    # A sandbox's own loopback stays its own.
    if in_ns "cli-$$" python3 -c "import socket; socket.create_connection(('127.0.0.1', 18080), 1)" \
        2>/dev/null; then die "127.0.0.1:18080 inside a sandbox reached the published port"; fi
fi

# UDP.
nsenter --net="$NETNS_DIR/web-$$" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353))
while True:
    data, peer = s.recvfrom(2048); s.sendto(b'echo:' + data, peer)" >/dev/null 2>&1 &
PIDS+=($!)
wait_listening "web-$$" udp 5353
answer=$(nsenter --net="/run/netns/$OUT" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b'ping', ('$HOST_IP', 15353)); print(s.recvfrom(2048)[0].decode())")
[ "$answer" = "echo:ping" ] || die "UDP through the published port answered '$answer'"
# Nothing listens on the other UDP port: the endpoint's "port unreachable" quotes the translated
# packet, so it must be translated back for the client to see "connection refused".
bn network connect --publish 15354:5354/udp "$NET" "api-$$"
answer=$(nsenter --net="/run/netns/$OUT" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(('$HOST_IP', 15354)); s.send(b'ping')
try:
    s.recv(2048); print('answered')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')")
[ "$answer" = refused ] || die "UDP to a closed published port: $answer, expected refused"
# 4 = BPFNET_NAT_ICMP_OUT: the endpoint program translated the ICMP error.
if [ "$E2E_DATAPATH" = bpf ]; then [ "$(nat_packets 4)" -ge 1 ] || die "no ICMP error translated"; fi
bn network disconnect "$NET" "api-$$"

assert_datapath "$NET"

# Published ports keep working while the agent is stopped and after it re-adopts its state (the
# socket NAT's pinned cgroup links get the new programs in place).
stop_agent
expect_body "$OUT" "$HOST_IP:18080" "web-$$"
expect_body host "127.0.0.1:18080" "web-$$"
start_agent
expect_body "$OUT" "$HOST_IP:18080" "web-$$"
expect_body host "127.0.0.1:18080" "web-$$"
if [ "$E2E_DATAPATH" = bpf ]; then
    n_links=$(ls "$BPFFS_DIR/bpfnet/cgroup-links" | wc -l)
    [ "$n_links" -eq 4 ] || die "expected 4 pinned socket NAT links after restart, found $n_links"
fi

# One host port, one endpoint; a port a host process listens on is not taken either.
expect_fail "already allocated" bn network connect --publish 18080:80 "$NET" "api-$$"
bn network ls -q >/dev/null  # the refused connect left nothing behind:
nets=$(bn sandbox inspect "api-$$" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]["Networks"]))')
[ -z "$nets" ] || die "refused connect left an endpoint: api is on $nets"
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 18111)); s.listen(); time.sleep(60)" >/dev/null 2>&1 &
LISTENER=$!
PIDS+=("$LISTENER")
wait_listening host tcp 18111
expect_fail "already allocated" bn network connect --publish 18111:80 "$NET" "api-$$"
kill "$LISTENER"
expect_fail "invalid" bn network connect --publish 80:http "$NET" "api-$$"

# Disconnect frees the ports; another endpoint takes 18080 and answers on it.
bn network disconnect "$NET" "web-$$"
if fetch "$OUT" "$HOST_IP:18080" >/dev/null; then die "18080 still answers after disconnect"; fi
bn network connect --publish 18080:80 "$NET" "api-$$"
serve_http "api-$$" 80
expect_body "$OUT" "$HOST_IP:18080" "api-$$"

# 1,000 published ports on one endpoint: one lookup each, whatever their number.
bn network disconnect "$NET" "cli-$$"
bn network connect --publish 21000-21999:21000-21999 "$NET" "cli-$$"
[ "$(bn port "cli-$$" | wc -l)" -eq 1000 ] || die "not 1000 published ports"
serve_http "cli-$$" 21999
serve_http "cli-$$" 21000
expect_body "$OUT" "$HOST_IP:21999" "cli-$$"
expect_body host "127.0.0.1:21000" "cli-$$"

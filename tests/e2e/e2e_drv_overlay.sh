#!/usr/bin/env bash
# Overlay networks across hosts: an underlay namespace with a switch (a bridge) and etcd, three
# "hosts" (namespaces, each running its own bpfnetd with its own state, run, bpffs and netns
# directories) on it. An overlay created on one host appears on all; sandboxes on different hosts
# get distinct addresses from the cluster-wide IPAM and talk (ping, TCP) through VXLAN; VNIs keep
# two overlays apart; a host that dies leaves the others' tunnel tables when its lease expires and
# comes back when it restarts; an etcd restart loses no update; an agent without the cluster store
# refuses overlays. Hosts 1 and 2 run the BPF overlay (one collect_md VXLAN device, tunnel map),
# host 3 the kernel one (bridge + VXLAN device with FDB entries): the two interoperate.
source "$(dirname "$0")/lib.sh"
HOSTS=(1 2 3)
declare -A HOST_FLAGS=([3]="--probe-disable redirect_peer")  # host 3: the kernel fallback
source "$(dirname "$0")/cluster_lib.sh"
ip_of() { bnh "$1" sandbox inspect "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['$3']['IPAddress'])"; }
mac_of() { bnh "$1" sandbox inspect "$2" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['$3']['MacAddress'])"; }
cluster_up

# Without the cluster store, overlays are refused.
start_agent
expect_fail "overlay networks need the cluster store" bn network create -d overlay --subnet 10.232.9.0/24 "nostore-$$"
stop_agent

start_etcd
for h in "${HOSTS[@]}"; do start_host "$h"; done

# Created on host 1, seen everywhere, with a VNI from the cluster.
OV=ov1-$$
bnh 1 network create -d overlay --subnet 10.232.0.0/24 "$OV" >/dev/null
VNI=$(bnh 1 network inspect "$OV" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Options']['bpfnet.vni'])")
[ "$VNI" -ge 4096 ] || die "VNI $VNI is not from the allocated range"
for h in 2 3; do eventually 10 has_network "$h" "$OV" || die "host $h does not see $OV"; done
expect_fail "already exists" bnh 2 network create -d overlay --subnet 10.232.5.0/24 "$OV"
expect_fail "overlaps" bnh 3 network create -d overlay --subnet 10.232.0.0/25 "clash-$$"
ip -n "$(hns 3)" -d link show "vx-$(bnh 3 network inspect "$OV" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Id'][:12])")" \
    | grep "vxlan id $VNI" >/dev/null || die "host 3 (kernel) has no VXLAN device with VNI $VNI"
ip -n "$(hns 2)" -d link show bpfnet_vx | grep "vxlan external" >/dev/null \
    || die "host 2 (BPF) has no collect_md VXLAN device"

bnh 1 status | grep "^$OV " | grep " bpf " >/dev/null || die "host 1 does not run $OV in BPF: $(bnh 1 status)"
bnh 3 status | grep "^$OV " | grep " kernel " >/dev/null || die "host 3 does not run $OV on the kernel"

# A sandbox per host; addresses are unique cluster-wide.
for h in "${HOSTS[@]}"; do bnh "$h" sandbox create --network "$OV" "s$h-$$" >/dev/null; done
declare -A IP MAC
for h in "${HOSTS[@]}"; do IP[$h]=$(ip_of "$h" "s$h-$$" "$OV"); MAC[$h]=$(mac_of "$h" "s$h-$$" "$OV"); done
[ "$(printf '%s\n' "${IP[@]}" | sort -u | wc -l)" = 3 ] || die "duplicate addresses: ${IP[*]}"
# Each host learns the other two endpoints (MAC -> their host's VTEP).
for h in "${HOSTS[@]}"; do
    for o in "${HOSTS[@]}"; do
        [ "$h" = "$o" ] && continue
        eventually 10 tunnels_to "$h" "$OV" "${MAC[$o]}" "10.231.0.1$o" \
            || die "host $h has no tunnel entry for s$o: $(fdb_of "$h" "$OV")"
    done
done
for h in "${HOSTS[@]}"; do
    for o in "${HOSTS[@]}"; do
        [ "$h" = "$o" ] && continue
        in_h "$h" "s$h-$$" ping -c 2 -W 2 "${IP[$o]}" >/dev/null || die "s$h cannot ping s$o (${IP[$o]})"
    done
done
mkdir -p "$WORK/www" && echo "s1-$$" >"$WORK/www/whoami"
nsenter --net="$WORK/h1/netns/s1-$$" python3 -m http.server 8080 --bind 0.0.0.0 --directory "$WORK/www" \
    >/dev/null 2>&1 &
SERVER=$!
CLEANUP_HOOKS+=("kill $SERVER 2>/dev/null")
fetched() { [ "$(in_h 3 "s3-$$" python3 -c "
import urllib.request
print(urllib.request.urlopen('http://${IP[1]}:8080/whoami', timeout=2).read().decode().strip())" 2>/dev/null)" = "s1-$$" ]; }
eventually 10 fetched || die "TCP from s3 to s1 across hosts failed"
for h in 1 2; do assert_datapath_is "$OV" bpf "$WORK/h$h/run" "$WORK/h$h/bpffs" "$(hns "$h")"; done
assert_datapath_is "$OV" kernel "$WORK/h3/run" "$WORK/h3/bpffs" "$(hns 3)"

# Hosts 1 and 2 encapsulate in the endpoint program and decapsulate at the underlay device, never
# through the VXLAN device, both with each other and with kernel host 3; status says so.
vx_count() {  # vx_count H COUNTER: packets of a NAT counter on host H
    "$BPFNET" --bpffs-root "$WORK/h$1/bpffs" nat list --format json | python3 -c "
import json, sys
print({r['counter']: r['packets'] for r in json.load(sys.stdin)['counters']}['$2'])"
}
for h in 1 2; do
    bnh "$h" status | grep "^$OV " | grep -F "encapsulated and decapsulated in BPF on the underlay eth0" >/dev/null \
        || die "host $h's status does not name the BPF overlay path: $(bnh "$h" status | grep "^$OV ")"
    [ "$(vx_count "$h" vx-encap)" -gt 0 ] || die "host $h encapsulated nothing in BPF"
    [ "$(vx_count "$h" vx-decap)" -gt 0 ] || die "host $h decapsulated nothing in BPF"
done
bnh 3 status | grep "^$OV " | grep -F "encapsulated" >/dev/null && die "kernel host 3 claims the BPF overlay path"

# Host 1's agent is killed and restarted in the middle of a UDP stream and a TCP conversation
# from s1 to s2: no datagram and no line is lost, both ways through BPF.
cat >"$WORK/ov_server.py" <<'EOF'
import socket, socketserver, sys, threading
seen = set()
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
class Srv(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((sys.argv[1], 9191))
    while True:
        data, peer = s.recvfrom(2048)
        if data == b"count?":
            s.sendto(str(len(seen)).encode(), peer)
        else:
            seen.add(data)
threading.Thread(target=udp, daemon=True).start()
Srv((sys.argv[1], 9192), Echo).serve_forever()
EOF
nsenter --net="$WORK/h2/netns/s2-$$" python3 "$WORK/ov_server.py" "${IP[2]}" &
OV_SERVER=$!
CLEANUP_HOOKS+=("kill $OV_SERVER 2>/dev/null")
cat >"$WORK/ov_stream.py" <<'EOF'
import socket, sys, time
peer, seconds = sys.argv[1], float(sys.argv[2])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tcp = socket.create_connection((peer, 9192), 3)
tcp.settimeout(3)
lines = tcp.makefile()
sent = answered = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(10):
        udp.sendto(b"seq %d" % sent, (peer, 9191))
        sent += 1
        time.sleep(0.002)
    tcp.sendall(b"line\n")
    lines.readline()  # raises on a timeout: the conversation broke
    answered += 1
    if answered == 5:
        print("started", file=sys.stderr, flush=True)
time.sleep(0.5)
udp.settimeout(3)
udp.sendto(b"count?", (peer, 9191))
print(sent, int(udp.recv(100)), answered)
EOF
ov_listening() { in_h "$1" "$2" python3 -c "
import socket, sys
socket.create_connection(('$3', 9192), 1).close()" 2>/dev/null; }
eventually 10 ov_listening 1 "s1-$$" "${IP[2]}" || die "the echo server in s2 is not reachable from s1"
nsenter --net="$WORK/h1/netns/s1-$$" python3 "$WORK/ov_stream.py" "${IP[2]}" 4 \
    >"$WORK/ov_stream.out" 2>"$WORK/ov_stream.err" &
STREAM=$!
eventually 5 grep -q started "$WORK/ov_stream.err" || die "the overlay stream did not start: $(cat "$WORK/ov_stream.err")"
encap_before=$(vx_count 1 vx-encap)
stop_host 1 KILL
start_host 1
wait "$STREAM" || die "the overlay stream broke across host 1's restart: $(cat "$WORK/ov_stream.err")"
read -r sent received answered <"$WORK/ov_stream.out"
log "across host 1's restart: $sent datagrams sent, $received received, $answered TCP lines answered"
[ "$sent" -gt 1000 ] && [ "$received" = "$sent" ] || die "datagrams lost across the restart: $sent sent, $received received"
[ "$answered" -gt 100 ] || die "the TCP conversation stalled: $answered lines"
[ "$(vx_count 1 vx-encap)" -gt "$((encap_before + 1000))" ] || die "host 1's stream did not stay in BPF"

# A second overlay with its own VNI: its tunnels never carry the first one's endpoints.
OV2=ov2-$$
bnh 2 network create -d overlay --subnet 10.232.1.0/24 -o com.docker.network.driver.overlay.vxlanid_list=5001 "$OV2" >/dev/null
expect_fail "VNI 5001 is already used" bnh 3 network create -d overlay --subnet 10.232.2.0/24 \
    -o com.docker.network.driver.overlay.vxlanid_list=5001 "ov3-$$"
eventually 10 has_network 1 "$OV2" || die "host 1 does not see $OV2"
bnh 1 sandbox create --network "$OV2" "t1-$$" >/dev/null
bnh 2 sandbox create --network "$OV2" "t2-$$" >/dev/null
T1=$(ip_of 1 "t1-$$" "$OV2")
eventually 10 in_h 2 "t2-$$" ping -c 1 -W 1 "$T1" >/dev/null || die "t2 cannot reach t1 on $OV2"
fdb_of 2 "$OV2" | grep "^${MAC[1]} " >/dev/null && die "$OV2's tunnels carry an endpoint of $OV"
fdb_of 2 "$OV" | grep "^$(mac_of 1 "t1-$$" "$OV2") " >/dev/null && die "$OV's tunnels carry an endpoint of $OV2"

# VXLAN from the underlay with a VNI no overlay here has: dropped by host 1's overlay program and
# counted, never delivered.
vni_drops() { "$BPFNET" --bpffs-root "$WORK/h1/bpffs" stats --format json | python3 -c "import json,sys; print({d['reason']: d['packets'] for d in json.load(sys.stdin)['drops']}.get('unknown-vni', 0))"; }
before=$(vni_drops)
nsenter --net="/run/netns/$UND" python3 - "$(vtep_of 1)" <<'PY'
import socket, struct, sys
inner_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, socket.inet_aton("10.232.0.99"),
                       socket.inet_aton("10.232.0.2")) + struct.pack("!HHHH", 1, 2, 8, 0)
frame = b"\x02\x42\x0a\xe8\x00\x02" + b"\x02\x00\x00\x00\x00\x99" + b"\x08\x00" + inner_ip
vxlan = struct.pack("!II", 0x08000000, 999 << 8)  # flags: VNI present; VNI 999
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(vxlan + frame, (sys.argv[1], 4789))
PY
for _ in $(seq 1 25); do [ "$(vni_drops)" -gt "$before" ] && break; sleep 0.2; done
[ "$(vni_drops)" -gt "$before" ] || die "host 1 did not count VXLAN with a foreign VNI as unknown-vni"

# Host 3 dies: its endpoint leaves the others' tables once its lease (10 s) expires; it comes back
# with the agent.
stop_host 3 KILL
eventually 25 no_tunnel_for 1 "$OV" "${MAC[3]}" \
    || die "host 1 still tunnels to dead host 3"
start_host 3
eventually 10 tunnels_to 1 "$OV" "${MAC[3]}" 10.231.0.13 \
    || die "host 3's endpoint did not come back"
in_h 1 "s1-$$" ping -c 2 -W 2 "${IP[3]}" >/dev/null || die "s1 cannot reach s3 after host 3 restarted"

# etcd restarts: the watches resume and a change made right after is seen everywhere. etcd comes
# back once every host has seen its watch broken (else "resume" would be untested).
interruptions() { grep -c "cluster: watch interrupted" "$WORK/h$1.log" || true; }
declare -A WATCH_BREAKS
for h in "${HOSTS[@]}"; do WATCH_BREAKS[$h]=$(interruptions "$h"); done
kill "$ETCD_PID"; wait "$ETCD_PID" 2>/dev/null || true
watches_broken() {
    local h
    for h in "${HOSTS[@]}"; do [ "$(interruptions "$h")" -gt "${WATCH_BREAKS[$h]}" ] || return 1; done
}
eventually 10 watches_broken || die "the hosts did not see their etcd watch break when etcd stopped"
start_etcd
bnh 1 sandbox create --network "$OV" "s4-$$" >/dev/null || die "no sandbox after the etcd restart"
MAC4=$(mac_of 1 "s4-$$" "$OV")
IP4=$(ip_of 1 "s4-$$" "$OV")
eventually 15 tunnels_to 2 "$OV" "$MAC4" 10.231.0.11 \
    || die "host 2 missed an update made after the etcd restart"
in_h 2 "s2-$$" ping -c 2 -W 2 "$IP4" >/dev/null || die "s2 cannot reach s4"

# Removal: refused while another host has endpoints; once empty everywhere, gone everywhere.
expect_fail "has active endpoints" bnh 2 network rm "$OV2"
for s in "1 t1" "2 t2"; do set -- $s; bnh "$1" sandbox rm "$2-$$" >/dev/null; done
bnh 2 network rm "$OV2" >/dev/null
for h in 1 3; do eventually 10 lacks_network "$h" "$OV2" || die "host $h still has $OV2"; done

#!/usr/bin/env bash
# Containers reaching the outside, on a host whose FORWARD policy is DROP (as Docker 28+ sets it).
# The agent runs in a namespace of the test's own standing for the host ("H", so the machine's own
# firewall and NIC are never touched), with one uplink (up0) to a namespace standing for the
# outside ("O", holding the server address 198.51.100.10 behind its router address 10.233.9.2).
#  - a masquerading network: TCP, UDP and ping reach the server, which sees the uplink's address;
#  - enable_ip_masquerade=false: the server sees the container's own address (O routes the subnet
#    back through H, as a router would), and the answers come back;
#  - on BPF the flows never pass netfilter's forward hook (the agent's DOCKER-USER accept rule
#    counts nothing), `bpfnet ct list --kind egress` shows them, the NAT counters count them and
#    `bpfnet status` names the path; on the kernel datapath they pass through that rule;
#  - a published UDP port's answer too big for the MTU leaves, every fragment, with the host's
#    address and port (BPF translates the fragments of flows it knows: frag-out);
#  - an answer to a flow the kernel masqueraded from the same port number as a published UDP port
#    reaches the masqueraded client, not the container (pass-host-flow);
#  - a kill -9 and restart of the agent in the middle of a UDP stream and of a TCP conversation
#    loses no datagram and breaks no connection.
source "$(dirname "$0")/lib.sh"
H=bneg-$$
O=bneo-$$
SERVER=198.51.100.10
UPLINK_IP=10.233.9.1
ip netns add "$H"; EXTRA_NETNS+=("$H")
ip netns add "$O"; EXTRA_NETNS+=("$O")
in_host() { ip netns exec "$H" "$@"; }
in_out() { ip netns exec "$O" "$@"; }
in_host ip link set lo up
in_out ip link set lo up
ip -n "$H" link add up0 type veth peer name eth0 netns "$O"
in_host ip addr add "$UPLINK_IP/24" dev up0
in_host ip link set up0 up
in_host ip route add default via 10.233.9.2
in_out ip addr add 10.233.9.2/24 dev eth0
in_out ip addr add "$SERVER/32" dev lo
in_out ip link set eth0 up
in_out ip route add 10.233.0.0/20 via "$UPLINK_IP"  # the unmasqueraded network's answers
# Docker 28+: the FORWARD policy is DROP. The agent keeps its DOCKER-USER accept rule for what it
# leaves to the kernel's forwarding path.
in_host iptables -w -P FORWARD DROP

AGENT_WRAP=(nsenter "--net=/run/netns/$H")
start_agent --uplink up0

bn network create egmasq --subnet 10.233.1.0/24 >/dev/null
bn network create egrouted --subnet 10.233.2.0/24 \
    -o com.docker.network.bridge.enable_ip_masquerade=false >/dev/null
bn sandbox create egs1 >/dev/null
bn sandbox create egs2 >/dev/null
bn network connect egmasq egs1 >/dev/null
bn network connect egrouted egs2 >/dev/null
S2_IP=$(bn network inspect egrouted --format json | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["Containers"].popitem()[1]["IPv4Address"].split("/")[0])')

# The server: TCP answers each line with the peer's address; UDP answers each datagram with the
# peer's address and counts distinct datagrams per sender (for the restart check).
cat >"$WORK/server.py" <<'EOF'
import socket, socketserver, sys, threading
counts = {}
class Tcp(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(f"{self.client_address[0]} {line.decode().strip()}\n".encode())
class Srv(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((sys.argv[1], 9090))  # answers from the address asked, as a real server does
    while True:
        data, peer = s.recvfrom(2048)
        if data == b"count?":
            s.sendto(str(len(counts.get(peer[0], ()))).encode(), peer)
            continue
        if data.startswith(b"seq "):
            counts.setdefault(peer[0], set()).add(data)
        s.sendto(peer[0].encode(), peer)
threading.Thread(target=udp, daemon=True).start()
Srv(("0.0.0.0", 8080), Tcp).serve_forever()
EOF
ip netns exec "$O" python3 "$WORK/server.py" "$SERVER" &
SERVER_PIDS+=($!)
wait_listening "/run/netns/$O" tcp 8080
wait_listening "/run/netns/$O" udp 9090

tcp_peer() {  # SANDBOX: the address the server sees for a TCP connection from the sandbox
    in_ns "$1" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 8080), 3)
s.sendall(b"hi\n")
print(s.makefile().readline().split()[0])' "$SERVER"
}
udp_peer() {
    in_ns "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"probe", (sys.argv[1], 9090))
print(s.recv(100).decode())' "$SERVER"
}

got=$(tcp_peer egs1) || die "TCP from the masquerading network did not reach the server"
[ "$got" = "$UPLINK_IP" ] || die "the server saw $got, expected the uplink's $UPLINK_IP"
got=$(udp_peer egs1) || die "UDP from the masquerading network got no answer"
[ "$got" = "$UPLINK_IP" ] || die "UDP: the server saw $got, expected $UPLINK_IP"
in_ns egs1 ping -c 1 -W 3 "$SERVER" >/dev/null || die "ping from the masquerading network failed"
got=$(tcp_peer egs2) || die "TCP from the unmasqueraded network did not reach the server"
[ "$got" = "$S2_IP" ] || die "the server saw $got, expected the container's own $S2_IP"
got=$(udp_peer egs2) || die "UDP from the unmasqueraded network got no answer"
[ "$got" = "$S2_IP" ] || die "UDP: the server saw $got, expected $S2_IP"
log "egress works with FORWARD DROP, masqueraded and not"
bi() { bn --bpffs-root "$BPFFS_DIR" "$@"; }  # the inspection commands read this agent's pins

# A published UDP port whose answer is larger than the uplink's MTU: the container's stack
# fragments it, and every fragment must leave with the host's address and port (on BPF the kernel
# never saw the flow, so it could not translate the later fragments).
bn sandbox create egs3 >/dev/null
bn network connect --publish 15454:5454/udp egmasq egs3 >/dev/null
S3_IP=$(bn sandbox inspect egs3 | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['egmasq']['IPAddress'])")
# nsenter execs python, so $! is the server itself, which cleanup kills.
nsenter --net="$NETNS_DIR/egs3" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5454))
while True:
    _, peer = s.recvfrom(100)
    s.sendto(b"f" * 3000, peer)' "$S3_IP" >/dev/null 2>&1 &
SERVER_PIDS+=($!)
wait_listening "$WORK/netns/egs3" udp 5454
big_answer() {
    in_out python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 15454))  # only answers from the published address and port arrive
s.settimeout(2)
s.send(b"big?")
print(len(s.recv(4000)))' "$UPLINK_IP"
}
got=""
for _ in 1 2 3 4 5; do got=$(big_answer 2>/dev/null) && break; done
if [ -z "$got" ]; then
    [ "$E2E_DATAPATH" = bpf ] && { bi ct list; bi nat list; } >&2
    die "the fragmented answer of a published UDP port did not arrive"
fi
[ "$got" = 3000 ] || die "the fragmented answer arrived with $got bytes, not 3000"
if [ "$E2E_DATAPATH" = bpf ]; then
    frag_out=$(bi nat list --format json | python3 -c "
import json, sys
print({r['counter']: r['packets'] for r in json.load(sys.stdin)['counters']}['frag-out'])")
    [ "$frag_out" -ge 3 ] || die "the answer's fragments were not translated in BPF (frag-out $frag_out)"
fi
log "a published UDP port's fragmented answer leaves with the host's address and port"

# A network the host's kernel masquerades (standing for docker0: its own bridge, FORWARD accept
# rules and a MASQUERADE of its own) talks out from the same port number that egs3 publishes. The
# kernel's NAT keeps the port (no tuple of its own clashes), so the server's answer comes back to
# the published address and port: it must reach the masqueraded client, not egs3 (BPF asks
# netfilter's conntrack for the first packet of a new flow to a published port: pass-host-flow).
D=bned-$$
ip netns add "$D"; EXTRA_NETNS+=("$D")
ip -n "$H" link add dk0 type veth peer name eth0 netns "$D"
in_host ip addr add 10.233.8.1/24 dev dk0
in_host ip link set dk0 up
ip -n "$D" addr add 10.233.8.2/24 dev eth0
ip -n "$D" link set eth0 up
ip -n "$D" route add default via 10.233.8.1
in_host iptables -w -I FORWARD -i dk0 -j ACCEPT
in_host iptables -w -I FORWARD -o dk0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
in_host nft 'add table ip bned; add chain ip bned post { type nat hook postrouting priority srcnat; };
             add rule ip bned post ip saddr 10.233.8.0/24 oifname "up0" masquerade'
got=$(ip netns exec "$D" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 15454))
s.settimeout(3)
s.sendto(b"probe", (sys.argv[1], 9090))
print(s.recv(100).decode())' "$SERVER") ||
    { [ "$E2E_DATAPATH" = bpf ] && { bi ct list; bi nat list; } >&2
      die "the answer to a masqueraded flow from a published port's number did not come back"; }
[ "$got" = "$UPLINK_IP" ] || die "the masqueraded flow reached the server as $got, not $UPLINK_IP"
if [ "$E2E_DATAPATH" = bpf ]; then
    passed=$(bi nat list --format json | python3 -c "
import json, sys
print({r['counter']: r['packets'] for r in json.load(sys.stdin)['counters']}['pass-host-flow'])")
    [ "$passed" -ge 1 ] || die "the answer was not left to the host's conntrack (pass-host-flow $passed)"
fi
log "an answer to a flow the kernel masqueraded from a published port's number reaches its client"

# The agent's DOCKER-USER accept rule: what crossed netfilter's forward hook.
docker_user_packets() {
    in_host iptables -w -L DOCKER-USER -v -x -n | awk -v tag="bpfnet $AGENT_INSTANCE:" \
        'index($0, tag) { n += $1 } END { print n + 0 }'
}
egress_line() { bn status | sed -n '/^Egress:/,$p' | grep -F "  $1:"; }
if [ "$E2E_DATAPATH" = bpf ]; then
    [ "$(docker_user_packets)" = 0 ] ||
        die "BPF egress crossed the forward hook: $(in_host iptables -w -L DOCKER-USER -v -x -n)"
    egress_line egmasq | grep -F "BPF: source-NATed and sent out of up0 (SNAT $UPLINK_IP" >/dev/null ||
        die "status does not name the BPF egress path: $(egress_line egmasq)"
    egress_line egrouted | grep -F "BPF: routed untranslated" >/dev/null ||
        die "status does not name the routed egress path: $(egress_line egrouted)"
    flows=$(bi ct list --kind egress --format json)
    python3 - "$flows" "$SERVER" "$UPLINK_IP" "$S2_IP" <<'EOF' || die "egress flows missing from ct list: $flows"
import json, sys
rows, server, uplink, s2 = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def has(**want):
    return any(all(r.get(k) == v for k, v in want.items()) for r in rows)
assert has(proto="tcp", dir="reply", dst=server, dport=8080, nat_ip=uplink), "tcp snat"
assert has(proto="udp", dir="in", src=server, sport=9090, dst=uplink), "udp answers"
assert has(proto="icmp", dir="reply", dst=server, nat_ip=uplink), "ping"
assert has(proto="tcp", dir="reply", src=s2, dst=server, nat_ip=s2), "routed tcp"
assert all(r["kind"] == "egress" for r in rows)
EOF
    counters=$(bi nat list --format json)
    python3 - "$counters" <<'EOF' || die "NAT counters do not count the egress: $counters"
import json, sys
c = {r["counter"]: r["packets"] for r in json.loads(sys.argv[1])["counters"]}
assert c["snat-new"] >= 3 and c["snat"] >= 3, c        # tcp, udp, ping
assert c["egress-reply"] >= 6, c
assert c["egress-new"] >= 2 and c["egress-routed"] >= 2, c
EOF
else
    [ "$(docker_user_packets)" -gt 0 ] || die "kernel egress did not pass the DOCKER-USER rule"
    egress_line egmasq | grep -F "kernel: bridge, routing, netfilter, nftables masquerade" >/dev/null ||
        die "status does not name the kernel egress path: $(egress_line egmasq)"
fi

# Restart under traffic: a UDP stream (one datagram every 2 ms for 4 s) and a TCP conversation
# (a line every 20 ms) from egs1 while the agent is killed and started again.
cat >"$WORK/stream.py" <<'EOF'
import socket, sys, threading, time
server, seconds = sys.argv[1], float(sys.argv[2])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect((server, 9090))
tcp = socket.create_connection((server, 8080), 3)
tcp.settimeout(3)
lines = tcp.makefile()
# The server answers every datagram: a reader drains the answers as they come (an unread socket
# buffer would overflow and drop the final count) and keeps the count when it arrives.
echoes, count = 0, threading.Event()
def read_answers():
    global echoes
    while True:
        data = udp.recv(100)
        if data.isdigit():
            count.value = int(data)
            count.set()
            return
        echoes += 1
threading.Thread(target=read_answers, daemon=True).start()
sent = answered = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(10):
        udp.send(b"seq %d" % sent)
        sent += 1
        time.sleep(0.002)
    tcp.sendall(b"line\n")
    try:
        lines.readline()  # raises on a timeout: the connection broke
    except OSError:
        import subprocess
        subprocess.run("ss -tni; ip neigh; nstat -az | grep -E 'Retrans|Timeouts|LossProbes|OutNoRoutes'",
                       shell=True, stdout=sys.stderr)
        raise
    answered += 1
    if answered == 5:
        print("started", file=sys.stderr, flush=True)
time.sleep(0.5)
udp.send(b"count?")
if not count.wait(3):
    sys.exit(f"no answer to count? ({echoes} of {sent} datagrams answered)")
print(sent, count.value, answered, echoes)
EOF
in_ns egs1 python3 "$WORK/stream.py" "$SERVER" 4 >"$WORK/stream.out" 2>"$WORK/stream.err" &
STREAM=$!
wait_until 5 grep -q started "$WORK/stream.err" || die "the stream did not start: $(cat "$WORK/stream.err")"
kill_agent
start_agent --uplink up0
if ! wait "$STREAM"; then
    [ "$E2E_DATAPATH" = bpf ] && { bi ct list; bi nat list; bi stats; } >&2
    die "the stream broke across the restart: $(cat "$WORK/stream.err")"
fi
read -r sent received answered echoes <"$WORK/stream.out"
log "across the restart: $sent datagrams sent, $received received, $echoes answered, $answered TCP lines answered"
[ "$sent" -gt 1000 ] && [ "$received" = "$sent" ] || die "datagrams lost across the restart: $sent sent, $received received"
[ "$echoes" = "$sent" ] || die "answers lost across the restart: $sent datagrams sent, $echoes answered"
[ "$answered" -gt 100 ] || die "the TCP conversation stalled: $answered lines"
# The restarted agent carries on with new flows too.
got=$(tcp_peer egs1) || die "TCP after the restart failed"
[ "$got" = "$UPLINK_IP" ] || die "after the restart the server saw $got"

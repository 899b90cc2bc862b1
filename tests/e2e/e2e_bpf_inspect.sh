#!/usr/bin/env bash
# The inspection commands against a live BPF datapath, after real traffic, with the agent stopped:
# prog list (attachments, run statistics sampled while traffic flows), map list/dump (decoded),
# endpoint list and stats (counters of that traffic), ct list/flush and nat list (a TCP flow
# through a published port from an outside namespace), monitor (a spoofed packet's drop and a
# trace), stats --watch; every --format json output has exactly the fields `bpfnet help` documents;
# a clear message where no datapath is loaded; and the agent's Prometheus metrics (TCP on loopback
# and a unix socket) showing the same traffic, drops, map fill and API latency.
source "$(dirname "$0")/lib.sh"
OUT=bnt-in-$$
HOST_IP=10.219.255.1
make_outside "$OUT" "$HOST_IP/30" 10.219.255.2/30
AGENT_FLAGS+=(--uplink "${OUT}h")
bi() { bn --bpffs-root "$BPFFS_DIR" "$@"; }
PIDS=()
CLEANUP_HOOKS+=('for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done')

expect_fail "not loaded on this host" bi prog list
expect_fail "not loaded on this host" bi stats

METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_agent --metrics-listen "127.0.0.1:$METRICS_PORT"
NET=insp-$$
bn network create --subnet 10.219.1.0/24 "$NET" >/dev/null
bn sandbox create --network "$NET" "a-$$" >/dev/null
bn sandbox create --network "$NET" --publish 18780:80 "b-$$" >/dev/null
A_IP=$(bn sandbox inspect "a-$$" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['$NET']['IPAddress'])")
B_IP=$(bn sandbox inspect "b-$$" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Networks']['$NET']['IPAddress'])")
eplist=$(bi endpoint list --format json 2>&1) || die "endpoint list failed: $eplist"
A_IF=$(echo "$eplist" | python3 -c "import json,sys; print(''.join(e['interface'] for e in json.load(sys.stdin) if e['ip'] == '$A_IP'))")
[ -n "$A_IF" ] || die "endpoint list does not show a's interface"

# The names come from the agent while it runs.
bi endpoint list --network "$NET" | grep "a-$$" | grep "$A_IP" >/dev/null || die "endpoint list lacks a: $(bi endpoint list)"

# Traffic: a pings b; an outside client fetches from b through the published port.
in_ns "a-$$" ping -c 3 -i 0.2 -W 2 "$B_IP" >/dev/null || die "a cannot ping b"
mkdir -p "$WORK/www" && echo hello >"$WORK/www/hello"
nsenter --net="$NETNS_DIR/b-$$" python3 -m http.server 80 --bind 0.0.0.0 --directory "$WORK/www" >/dev/null 2>&1 &
PIDS+=($!)
fetch() { ip netns exec "$OUT" python3 -c "import urllib.request; print(urllib.request.urlopen('http://$HOST_IP:18780/hello', timeout=2).read().decode().strip())" 2>/dev/null; }
for _ in $(seq 1 30); do [ "$(fetch)" = hello ] && break; sleep 0.2; done
[ "$(fetch)" = hello ] || die "the published port does not answer"

# Monitor: a packet from a spoofed source address is dropped and reported with its reason.
bi monitor --type drop --endpoint "$A_IF" --count 1 --duration 10 --format json >"$WORK/drop.json" 2>/dev/null &
MON=$!; PIDS+=($MON)
wait_until 10 ringbuf_reader "$MON" || die "the drop monitor did not open the event ring buffer"
in_ns "a-$$" ip addr add 10.219.1.250/32 dev eth0
in_ns "a-$$" ping -c 1 -W 1 -I 10.219.1.250 "$B_IP" >/dev/null 2>&1 || true
wait "$MON" || true
python3 - "$WORK/drop.json" "$A_IF" <<'PY' || die "monitor did not report the spoofed packet: $(cat "$WORK/drop.json")"
import json, sys
ev = json.loads(open(sys.argv[1]).readline())
assert ev["type"] == "drop" and ev["reason"] == "spoofed-ip", ev
assert ev["endpoint"] == sys.argv[2] and ev["src"] == "10.219.1.250" and ev["proto"] == "icmp", ev
assert ev["verdict"] == "dropped" and ev["reason_text"] and ev["direction"] == "from-endpoint", ev
PY
in_ns "a-$$" ip addr del 10.219.1.250/32 dev eth0
# ... and a trace of an allowed packet, with the program's verdict; tracing is off afterwards.
bi monitor --type trace --endpoint "$B_IP" --count 1 --duration 10 --format json >"$WORK/trace.json" 2>/dev/null &
MON=$!; PIDS+=($MON)
tracing() { bi map dump bpfnet_mon_cfg | grep >/dev/null "trace=true"; }
wait_until 10 tracing || die "the trace monitor did not turn tracing on: $(bi map dump bpfnet_mon_cfg)"
in_ns "a-$$" ping -c 2 -i 0.2 -W 1 "$B_IP" >/dev/null
wait "$MON" || true
python3 - "$WORK/trace.json" "$A_IP" "$B_IP" <<'PY' || die "monitor did not trace a's ping: $(cat "$WORK/trace.json")"
import json, sys
ev = json.loads(open(sys.argv[1]).readline())
assert ev["type"] == "trace" and ev["verdict"] == "redirected", ev
assert ev["src"] == sys.argv[2] and ev["dst"] == sys.argv[3], ev
PY
bi map dump bpfnet_mon_cfg | grep "trace=false" >/dev/null || die "the monitor left tracing on"

# With the agent up, endpoints on the kernel fallback are listed too, with their veth's counters.
KNET=inspk-$$
bn network create --subnet 10.219.2.0/24 -o bpfnet.datapath=kernel "$KNET" >/dev/null
bn sandbox create --network "$KNET" "k-$$" >/dev/null
in_ns "k-$$" ping -c 2 -i 0.2 -W 2 10.219.2.1 >/dev/null || die "k cannot ping its gateway"
assert_datapath_is "$NET" bpf
assert_datapath_is "$KNET" kernel  # next to a loaded BPF datapath
bi endpoint list --format json | python3 -c "
import json, sys
k = [e for e in json.load(sys.stdin) if e['network'] == '$KNET']
assert len(k) == 1 and k[0]['datapath'] == 'kernel' and k[0]['sandbox'] == 'k-$$', k
assert k[0]['from_packets'] >= 2 and k[0]['interface'].startswith('bnv-'), k" || die "endpoint list lacks the kernel endpoint"
bn sandbox rm "k-$$" >/dev/null
bn network rm "$KNET" >/dev/null

# The agent's metrics show the same: per-endpoint counters with names, drops by reason, map fill,
# API latency. Then the same over a unix socket.
scrape_tcp() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics', timeout=3).read().decode())"; }
scrape_unix() { python3 -c "
import http.client, socket
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect('$RUN_DIR/metrics.sock')
c = C('localhost'); c.request('GET', '/metrics'); r = c.getresponse(); assert r.status == 200; print(r.read().decode())"; }
check_metrics() {
    python3 - "$1" "$NET" "a-$$" <<'PY'
import re, sys
text, net, a = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
samples = {}
for line in text.splitlines():
    if line.startswith("#") or not line: continue
    m = re.fullmatch(r'([a-z_]+)(\{.*\})? ([0-9.e+-]+|\+Inf)', line)
    assert m, ("not Prometheus text format", line)
    samples.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
def value(name, *labels):
    for l, v in samples.get(name, []):
        if all(x in l for x in labels): return v
    raise AssertionError((name, labels, samples.get(name)))
assert value("bpfnet_endpoint_packets_total", f'network="{net}"', f'sandbox="{a}"', 'direction="sent"') >= 3
assert value("bpfnet_drops_total", 'reason="spoofed-ip"') >= 1
assert value("bpfnet_map_entries", 'map="bpfnet_ep_by_if"') == 2
assert value("bpfnet_map_max_entries", 'map="bpfnet_ct"') > 0
assert value("bpfnet_network_endpoints", f'network="{net}"', 'datapath="bpf"') == 2
assert value("bpfnet_api_request_duration_seconds_count", 'api="native"', 'route="/v1/networks"') >= 1
assert value("bpfnet_api_request_duration_seconds_bucket", 'route="/v1/networks"', 'le="+Inf"') >= 1
assert value("bpfnet_datapath_loaded") == 1
assert "# TYPE bpfnet_drops_total counter" in text
PY
}
scrape_tcp >"$WORK/metrics.txt" || die "no metrics on 127.0.0.1:$METRICS_PORT"
check_metrics "$WORK/metrics.txt" || die "metrics are wrong: $(head -50 "$WORK/metrics.txt")"
stop_agent
start_agent --metrics-listen "unix:$RUN_DIR/metrics.sock"
bn network ls >/dev/null
scrape_unix >"$WORK/metrics-unix.txt" || die "no metrics on the unix socket"
check_metrics "$WORK/metrics-unix.txt" || die "metrics over the unix socket are wrong"
[ "$(python3 -c "import urllib.request
try: urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics', timeout=1)
except Exception: print('closed')")" = closed ] || die "the TCP metrics port is still open without --metrics-listen"

# From here the agent is stopped: everything below reads bpffs only.
stop_agent
in_ns "a-$$" ping -c 50 -i 0.05 -W 1 "$B_IP" >/dev/null &
PIDS+=($!)
bi prog list --sample 1.5 --format json >"$WORK/prog.json" || die "prog list --sample failed"
bi map list --format json >"$WORK/maps.json"
bi endpoint list --format json >"$WORK/endpoints.json"
bi ct list --proto tcp --format json >"$WORK/ct.json"
bi nat list --format json >"$WORK/nat.json"
bi stats --format json >"$WORK/stats.json"
bi map dump bpfnet_ep_by_ip --json >"$WORK/ep_by_ip.json"
bi map dump bpfnet_ct --json >"$WORK/ct_dump.json"
for c in "prog list" "map list" "map dump" "endpoint list" "ct list" "ct flush" "nat list" stats monitor; do
    # shellcheck disable=SC2086
    bi help $c >"$WORK/help-${c// /-}.txt" || die "bpfnet help $c failed"
    for section in NAME SYNOPSIS DESCRIPTION OPTIONS; do
        grep -x "$section" "$WORK/help-${c// /-}.txt" >/dev/null || die "bpfnet help $c has no $section section"
    done
done
python3 - "$WORK" "$A_IF" "$A_IP" "$B_IP" <<'PY' || die "inspection output is wrong (see above)"
import json, re, sys
work, a_if, a_ip, b_ip = sys.argv[1:]
def load(name): return json.load(open(f"{work}/{name}.json"))
def documented(cmd):  # the field list of `bpfnet help CMD`'s OUTPUT section
    text = open(f"{work}/help-{cmd}.txt").read()
    out = text.split("OUTPUT (--format json)\n", 1)[1].split("\n\n", 1)[0]
    return [f.strip() for f in " ".join(out.split()).split(",")]
def same_fields(cmd, obj):
    assert list(obj.keys()) == documented(cmd), (cmd, list(obj.keys()), documented(cmd))

progs = load("prog")
ep_progs = [p for p in progs if p["interface"] == a_if]
assert ep_progs, ("no program on", a_if, progs)
p = ep_progs[0]
same_fields("prog-list", p)
assert p["role"] == "endpoint" and p["hook"] == "tc ingress" and p["mechanism"] in ("tcx", "cls_bpf"), p
assert p["name"] == "bpfnet_from_ep" and len(p["tag"]) == 16 and p["instructions"] > 0, p
assert p["run_count"] > 0 and p["avg_ns"] > 0, ("no runs sampled while a pinged b", p)
assert p["network"].startswith("bn-"), p  # the agent is down: the bridge names the network
assert any(q["role"] == "uplink" and q["name"] == "bpfnet_from_uplink" for q in progs), progs  # full names, from BTF

maps = {m["name"]: m for m in load("maps")}
same_fields("map-list", maps["bpfnet_ct"])
for name in ("bpfnet_net", "bpfnet_ep_by_if", "bpfnet_ep_by_ip", "bpfnet_ct", "bpfnet_pub_port", "bpfnet_drops", "bpfnet_events"):
    assert name in maps, (name, sorted(maps))
assert maps["bpfnet_ep_by_if"]["entries"] == 2 and maps["bpfnet_ct"]["entries"] >= 2, maps
assert maps["bpfnet_ct"]["type"] == "lru_hash" and maps["bpfnet_ct"]["description"], maps["bpfnet_ct"]

eps = {e["ip"]: e for e in load("endpoints")}
same_fields("endpoint-list", eps[a_ip])
assert eps[a_ip]["interface"] == a_if and eps[a_ip]["datapath"] == "bpf", eps
assert eps[a_ip]["from_packets"] >= 3 and eps[b_ip]["to_packets"] >= 3, eps
assert re.fullmatch(r"02:42:(?:[0-9a-f]{2}:){3}[0-9a-f]{2}", eps[a_ip]["mac"]), eps[a_ip]

ct = load("ct")
assert ct, "no conntrack entry after the published-port fetch"
same_fields("ct-list", ct[0])
inbound = [c for c in ct if c["dir"] == "in" and c["dport"] == 18780]
assert inbound and inbound[0]["dst"] == "10.219.255.1" and inbound[0]["nat_ip"] == b_ip and inbound[0]["nat_port"] == 80, ct
assert inbound[0]["proto"] == "tcp" and "syn" in inbound[0]["flags"] and inbound[0]["packets"] > 0, inbound
assert any(c["dir"] == "reply" and c["src"] == b_ip and c["sport"] == 80 for c in ct), ct

nat = load("nat")
port = [p for p in nat["ports"] if p["host_port"] == 18780]
assert port and port[0]["ip"] == b_ip and port[0]["port"] == 80 and port[0]["proto"] == "tcp", nat
assert any(c["counter"] == "dnat-new" and c["packets"] >= 1 for c in nat["counters"]), nat

stats = load("stats")
drops = {d["reason"]: d for d in stats["drops"]}
assert drops["spoofed-ip"]["packets"] >= 1, drops
assert {e["ip"] for e in stats["endpoints"]} == {a_ip, b_ip}, stats["endpoints"]

ep_by_ip = load("ep_by_ip")
assert {e["key"]["ip"] for e in ep_by_ip} == {a_ip, b_ip}, ep_by_ip
assert all(e["value"]["interface"] and e["value"]["mac"].startswith("02:42:") for e in ep_by_ip), ep_by_ip
assert all(e["key"]["proto"] in ("tcp", "udp", "sctp") for e in load("ct_dump")), "ct keys are not decoded"
PY

# Text output is decoded too, never raw hex bytes.
bi map dump bpfnet_net | grep "subnet=10.219.1.0/24" | grep "flags=icc" >/dev/null || die "map dump bpfnet_net: $(bi map dump bpfnet_net)"
bi ct list --src 10.219.255.2 | grep "10.219.255.1:18780" >/dev/null || die "ct list --src: $(bi ct list)"
[ "$(bi ct list --src 192.0.2.1 --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] || die "ct list --src filters nothing"
expect_fail "invalid --proto" bi ct list --proto foo
expect_fail "not one of bpfnet's maps" bi map dump nosuchmap
expect_fail "ring buffer" bi map dump bpfnet_events
[ "$(bi stats --watch --count 2 --interval 0.2 | grep -c "Every 0.2s: bpfnet stats")" = 2 ] || die "stats --watch did not refresh twice"
bi ct flush | grep "Flushed" >/dev/null || die "ct flush said nothing"
[ "$(bi ct list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] || die "ct flush left entries"
start_agent  # for cleanup
log "ok"

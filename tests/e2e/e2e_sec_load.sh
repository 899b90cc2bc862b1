#!/usr/bin/env bash
# Load: 100 API clients at once for 60 s doing mixed operations (sandboxes created, connected with
# published ports, disconnected and removed; networks listed and inspected) get no error but the
# expected ones and leave a consistent agent; then a network filled to the 1,023 endpoints a Linux
# bridge can hold (BR_MAX_PORTS; Docker's bridge gets unstable near 1,000) all forward: every one
# answers a ping from the first and a sample of pairs talk; one more is refused with a clear error.
# (4,096 endpoints per network need endpoints that are no bridge ports: not yet.)
source "$(dirname "$0")/lib.sh"
CLIENTS=${BPFNET_LOAD_CLIENTS:-100}
SECONDS_LOAD=${BPFNET_LOAD_SECONDS:-60}
ENDPOINTS=${BPFNET_LOAD_ENDPOINTS:-1023}
start_agent
INST=$(agent_instance)
NET=load-$$
bn network create --subnet 10.224.0.0/16 "$NET" >/dev/null

python3 - "$RUN_DIR/bpfnetd.sock" "$NET" "$CLIENTS" "$SECONDS_LOAD" <<'PY' || die "the API failed under load"
import http.client, json, socket, sys, threading, time
sock, net, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
counts, unexpected, lock = {}, [], threading.Lock()
def call(c, method, path, body=None, ok=(200, 201, 204)):
    c.request(method, "/v1" + path, json.dumps(body) if body is not None else None)
    r = c.getresponse(); data = r.read()
    with lock:
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status not in ok:
            unexpected.append(f"{method} {path}: {r.status} {data[:200]!r}")
    return r.status, data
def client(i):
    c = Conn("localhost", timeout=60)
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        name = f"l{i}-{n}"; n += 1
        call(c, "POST", "/sandboxes/create", {"Name": name})
        call(c, "POST", f"/networks/{net}/connect",
             {"Container": name, "EndpointConfig": {"Publish": [f"{61000 + i * 45 + n % 45}:80"]}})
        call(c, "GET", "/networks")
        call(c, "GET", f"/networks/{net}")
        call(c, "GET", f"/sandboxes/{name}")
        # Expected refusals: the same name twice, a network that does not exist.
        call(c, "POST", "/sandboxes/create", {"Name": name}, ok=(409,))
        call(c, "POST", "/networks/nosuch-net/connect", {"Container": name}, ok=(404,))
        call(c, "POST", f"/networks/{net}/disconnect", {"Container": name})
        call(c, "DELETE", f"/sandboxes/{name}")
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
total = sum(counts.values())
print(f"{total} requests from {clients} clients in {time.monotonic() - start:.0f}s: {counts}")
for u in unexpected[:10]: print("unexpected:", u)
sys.exit(1 if unexpected or total < clients * 9 else 0)
PY
python3 "$(dirname "$0")/consistency.py" "$BPFNET" "$RUN_DIR" "$BPFFS_DIR" "$NETNS_DIR" "$INST" \
    >"$WORK/consistency.txt" || die "after the load the agent's state disagrees: $(head -20 "$WORK/consistency.txt")"
[ -z "$(bn sandbox ls -q)" ] || die "sandboxes left after the load: $(bn sandbox ls -q | head)"

# A full network.
started=$SECONDS
for i in $(seq 1 "$ENDPOINTS"); do echo "e$i-$$"; done | while read -r s; do
    bn sandbox create --network "$NET" "$s" >/dev/null || { echo "create $s failed" >&2; exit 1; }
done || die "could not create $ENDPOINTS endpoints"
log "$ENDPOINTS endpoints in $((SECONDS - started))s"
bn sandbox inspect $(bn sandbox ls -q) | python3 -c "
import json, sys
for s in json.load(sys.stdin): print(s['Name'], s['Networks']['$NET']['IPAddress'])" >"$WORK/eps"
[ "$(wc -l <"$WORK/eps")" = "$ENDPOINTS" ] || die "$(wc -l <"$WORK/eps") endpoints, expected $ENDPOINTS"
if [ "$ENDPOINTS" -ge 1023 ]; then
    expect_fail "the network is full" bn sandbox create --network "$NET" "over-$$"
    bn sandbox rm "over-$$" >/dev/null 2>&1 || true
fi
[ "$(sort -k2 -u "$WORK/eps" | wc -l)" = "$ENDPOINTS" ] || die "addresses given twice"
first=$(head -1 "$WORK/eps" | cut -d' ' -f1)
# The first endpoint pings every other one (fping-like, 64 at a time).
cut -d' ' -f2 "$WORK/eps" | tail -n +2 >"$WORK/targets"
# A thousand containers, one of them with a thousand neighbours: the kernel's neighbour table
# (one for all namespaces; its defaults start dropping at 512 entries and refuse past 1,024) must be
# as big as on any host running that many containers. Put back at exit.
for i in 1 2 3; do
    old=$(sysctl -n "net.ipv4.neigh.default.gc_thresh$i")
    CLEANUP_HOOKS+=("sysctl -qw net.ipv4.neigh.default.gc_thresh$i=$old")
done
sysctl -qw net.ipv4.neigh.default.gc_thresh3=16384 net.ipv4.neigh.default.gc_thresh2=8192 \
    net.ipv4.neigh.default.gc_thresh1=4096
nsenter --net="$NETNS_DIR/$first" python3 - "$WORK/targets" <<'PY' || die "endpoints of the big network do not answer"
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
targets = open(sys.argv[1]).read().split()
def ping(ip):
    for _ in range(3):
        if subprocess.run(["ping", "-c", "1", "-W", "1", ip], stdout=subprocess.DEVNULL).returncode == 0:
            return None
    return ip
with ThreadPoolExecutor(64) as pool:
    silent = [ip for ip in pool.map(ping, targets) if ip]
print(f"{len(targets) - len(silent)}/{len(targets)} answered")
sys.exit(1 if silent else 0)
PY
# A sample of other pairs.
shuf -n 20 --random-source=<(yes) "$WORK/eps" | while read -r s ip; do
    peer=$(shuf -n 1 --random-source=<(yes "$s") "$WORK/eps" | cut -d' ' -f2)
    nsenter --net="$NETNS_DIR/$s" ping -c 1 -W 2 "$peer" >/dev/null || { echo "$s cannot reach $peer" >&2; exit 1; }
done || die "a pair of endpoints on the big network cannot talk"
python3 "$(dirname "$0")/consistency.py" "$BPFNET" "$RUN_DIR" "$BPFFS_DIR" "$NETNS_DIR" "$INST" \
    >"$WORK/consistency.txt" || die "with $ENDPOINTS endpoints the agent's state disagrees: $(head -20 "$WORK/consistency.txt")"
log "ok"

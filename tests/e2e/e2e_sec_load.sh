#!/usr/bin/env bash
# Load: 100 API clients at once for 60 s doing mixed operations (sandboxes created, connected with
# published ports, disconnected and removed; networks listed and inspected) get no error but the
# expected ones and leave a consistent agent. (A network filled with endpoints: e2e_sec_scale.)
source "$(dirname "$0")/lib.sh"
CLIENTS=${BPFNET_LOAD_CLIENTS:-100}
SECONDS_LOAD=${BPFNET_LOAD_SECONDS:-60}
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
python3 "$(dirname "$0")/consistency.py" "$BPFNET" "$RUN_DIR" "$BPFFS_DIR" "$NETNS_DIR" "$INST" "$E2E_DATAPATH" \
    >"$WORK/consistency.txt" || die "after the load the agent's state disagrees: $(head -20 "$WORK/consistency.txt")"
left=$(bn sandbox ls -q)
[ -z "$left" ] || die "sandboxes left after the load: $(bn sandbox ls -q | head)"

log "ok"

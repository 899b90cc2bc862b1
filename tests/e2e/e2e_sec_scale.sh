#!/usr/bin/env bash
# Scale: 4,096 endpoints on one network all forward (Docker's bridge gets unstable near 1,000; a
# Linux bridge holds 1,023 ports, BR_MAX_PORTS): the first 1,023 are bridge ports, the rest routed
# ports (kernel/routed_port.h); every one answers a ping from the first, the host reaches both
# kinds, and a sample of pairs of every kind talk.
source "$(dirname "$0")/lib.sh"
ENDPOINTS=${BPFNET_SCALE_ENDPOINTS:-4096}
start_agent
INST=$(agent_instance)
NET=scale-$$
bn network create --subnet 10.225.0.0/16 "$NET" >/dev/null

# Thousands of containers, one of them with thousands of neighbours: the kernel's neighbour table
# (one for all namespaces; its defaults start dropping at 512 entries and refuse past 1,024) must be
# as big as on any host running that many containers. Put back at exit.
for i in 1 2 3; do
    old=$(sysctl -n "net.ipv4.neigh.default.gc_thresh$i")
    CLEANUP_HOOKS+=("sysctl -qw net.ipv4.neigh.default.gc_thresh$i=$old")
done
sysctl -qw net.ipv4.neigh.default.gc_thresh3=16384 net.ipv4.neigh.default.gc_thresh2=8192 \
    net.ipv4.neigh.default.gc_thresh1=4096

started=$SECONDS
for i in $(seq 1 "$ENDPOINTS"); do echo "e$i-$$"; done | while read -r s; do
    bn sandbox create --network "$NET" "$s" >/dev/null || { echo "create $s failed" >&2; exit 1; }
done || die "could not create $ENDPOINTS endpoints"
log "$ENDPOINTS endpoints in $((SECONDS - started))s"
bn sandbox inspect $(bn sandbox ls -q) | python3 -c "
import json, sys
for s in json.load(sys.stdin): print(s['Name'], s['Networks']['$NET']['IPAddress'])" >"$WORK/eps"
[ "$(wc -l <"$WORK/eps")" = "$ENDPOINTS" ] || die "$(wc -l <"$WORK/eps") endpoints, expected $ENDPOINTS"
# Which endpoints are bridge ports and which are routed.
BRIDGE=bn-$(bn network inspect "$NET" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Id'][:12])")
ports=$(ip -o link show master "$BRIDGE" | wc -l)
expected_ports=$((ENDPOINTS < 1023 ? ENDPOINTS : 1023))
[ "$ports" = "$expected_ports" ] || die "the bridge has $ports ports, expected $expected_ports"
log "$ports bridge ports, $((ENDPOINTS - ports)) routed endpoints"
[ "$(sort -k2 -u "$WORK/eps" | wc -l)" = "$ENDPOINTS" ] || die "addresses given twice"
first=$(head -1 "$WORK/eps" | cut -d' ' -f1)
# The first endpoint pings every other one (fping-like, 64 at a time).
cut -d' ' -f2 "$WORK/eps" | tail -n +2 >"$WORK/targets"
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
# The host reaches the first (a bridge port) and the last (routed past the full bridge).
ip_of() { awk -v n="$1" '$1 == n { print $2 }' "$WORK/eps"; }
for s in "e1-$$" "e$ENDPOINTS-$$"; do
    ping -c 1 -W 2 "$(ip_of "$s")" >/dev/null || die "the host cannot reach $s at $(ip_of "$s")"
done
# Routed to bridge port, routed to routed, both ways.
for pair in "e$ENDPOINTS-$$ e1-$$" "e1-$$ e$ENDPOINTS-$$" "e$ENDPOINTS-$$ e$((ENDPOINTS - 1))-$$"; do
    set -- $pair
    nsenter --net="$NETNS_DIR/$1" ping -c 1 -W 2 "$(ip_of "$2")" >/dev/null || die "$1 cannot reach $2"
done
# A sample of other pairs (bridge ports and routed ports alike).
shuf -n 20 --random-source=<(yes) "$WORK/eps" | while read -r s ip; do
    peer=$(shuf -n 1 --random-source=<(yes "$s") "$WORK/eps" | cut -d' ' -f2)
    nsenter --net="$NETNS_DIR/$s" ping -c 1 -W 2 "$peer" >/dev/null || { echo "$s cannot reach $peer" >&2; exit 1; }
done || die "a pair of endpoints on the big network cannot talk"
python3 "$(dirname "$0")/consistency.py" "$BPFNET" "$RUN_DIR" "$BPFFS_DIR" "$NETNS_DIR" "$INST" "$E2E_DATAPATH" \
    >"$WORK/consistency.txt" || die "with $ENDPOINTS endpoints the agent's state disagrees: $(head -20 "$WORK/consistency.txt")"
log "ok"

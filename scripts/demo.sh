#!/usr/bin/env bash
# `make demo`: starts a private bpfnetd, builds a network with two sandboxes, shows them talking
# (ping and TCP), prints `network inspect` and `status`, then removes everything it made.
set -euo pipefail
BUILD=${1:-build}
BIN=$(cd "$BUILD/tools" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (namespaces, bridges, nftables)"; exit 1; }

WORK=$(mktemp -d /tmp/bpfnet-demo.XXXXXX)
RUN="$WORK/run"
AGENT=""
bn() { echo "+ bpfnet $*" >&2; "$BIN/bpfnet" --run-dir "$RUN" "$@"; }
cleanup() {
    set +e
    echo; echo "== cleaning up"
    "$BIN/bpfnet" --run-dir "$RUN" sandbox rm demo-a demo-b >/dev/null 2>&1
    "$BIN/bpfnet" --run-dir "$RUN" network rm demo-net >/dev/null 2>&1
    [ -n "$AGENT" ] && kill "$AGENT" && wait "$AGENT" 2>/dev/null
    for f in "$WORK"/netns/*; do [ -e "$f" ] && umount -l "$f"; done
    umount -l "$WORK/netns" "$WORK/bpffs" 2>/dev/null
    rm -rf "$WORK"
    echo "done"
}
trap cleanup EXIT

echo "== starting bpfnetd (log: $WORK/agent.log)"
# --uplink none, --default-bridge none: the demo's private agent leaves the machine's real uplink
# alone and makes no default bridge that would outlive it.
"$BIN/bpfnetd" --state-dir "$WORK/state" --run-dir "$RUN" --bpffs-root "$WORK/bpffs" \
    --netns-dir "$WORK/netns" --uplink none --default-bridge none >"$WORK/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 1 50); do "$BIN/bpfnet" --run-dir "$RUN" version >/dev/null 2>&1 && break; sleep 0.1; done

echo "== a network and two sandboxes"
bn network create --subnet 10.233.0.0/24 demo-net
bn sandbox create demo-a
bn sandbox create demo-b
bn network connect demo-net demo-a
bn network connect --ip 10.233.0.254 demo-net demo-b
bn network ls
bn sandbox ls

echo "== demo-a -> demo-b: ping"
bn sandbox exec demo-a -- ping -c 3 10.233.0.254
echo "== demo-a -> demo-b: TCP"
bn sandbox exec demo-b -- sh -c 'nc -l 7000 > /dev/null' &
sleep 0.3
head -c 10000000 /dev/zero | bn sandbox exec demo-a -- nc -N 10.233.0.254 7000
echo "sent 10 MB over TCP from demo-a to demo-b"

echo "== proof that BPF carried it: per-endpoint counters from the pinned map (read with bpftool)"
# The endpoint program sits on each container veth's host end as a cls_bpf filter on its ingress qdisc.
attached=0
for ifname in $(ip -j link show type veth | python3 -c 'import json, sys; print(" ".join(l["ifname"] for l in json.load(sys.stdin)))'); do
    tc filter show dev "$ifname" ingress | grep -q bpfnet_from_ep || continue
    ifindex=$(cat "/sys/class/net/$ifname/ifindex")
    # Another agent's endpoints (not in this agent's map) are skipped.
    stats=$(bpftool -j map lookup pinned "$WORK/bpffs/bpfnet/bpfnet_ep_stats" \
        key $((ifindex & 255)) $(((ifindex >> 8) & 255)) $(((ifindex >> 16) & 255)) $(((ifindex >> 24) & 255)) \
        2>/dev/null) || continue
    attached=1
    echo "$stats" | python3 -c '
import json, sys
values = json.load(sys.stdin)["formatted"]["values"]
sent = sum(v["value"]["from_packets"] for v in values)
received = sum(v["value"]["to_packets"] for v in values)
print(sys.argv[1] + ": sent", sent, "packets, received", received, "via bpf_redirect_peer")' "$ifname"
done
[ "$attached" = 1 ] || echo "(no endpoint programs: this host runs the kernel datapath; see status below)"
bridge=$("$BIN/bpfnet" --run-dir "$RUN" network inspect demo-net | sed -n 's/.*"Bridge": "\(.*\)".*/\1/p')
echo "bridge $bridge forwarded $(cat /sys/class/net/"$bridge"/statistics/rx_packets) packets to the host"

echo "== inspect and status"
bn network inspect demo-net
bn status

#!/usr/bin/env bash
# The agent can stop, crash or restart without taking traffic down, and repairs kernel state that
# vanished while it was away.
source "$(dirname "$0")/lib.sh"
start_agent
bn network create --subnet 10.207.1.0/24 "keep-$$" >/dev/null
bn sandbox create "sba-$$" >/dev/null
bn sandbox create "sbb-$$" >/dev/null
bn network connect "keep-$$" "sba-$$"
bn network connect "keep-$$" "sbb-$$"
in_sb "sba-$$" ping -c 1 -W 2 10.207.1.3 >/dev/null || die "no traffic before restart"

# Traffic keeps flowing while the agent is down: a ping stream across a stop/kill/start cycle, with
# replies seen while the agent is stopped and while it is dead, and none lost.
in_ns "sba-$$" ping -i 0.02 -c 300 -W 1 10.207.1.3 > "$WORK/ping.out" 2>&1 &
PING=$!
wait_ping_replies "$WORK/ping.out" 10 "before the restarts"
stop_agent
wait_ping_replies "$WORK/ping.out" 10 "while the agent was stopped"
start_agent
kill_agent
wait_ping_replies "$WORK/ping.out" 10 "while the agent was dead"
start_agent
kill -0 $PING 2>/dev/null || die "the ping stream ended before the restarts did: $(tail -2 "$WORK/ping.out")"
wait $PING || true
grep -q " 0% packet loss" "$WORK/ping.out" || die "traffic was interrupted by agent restarts: $(tail -2 "$WORK/ping.out")"

[ "$(bn network ls -q -f name="keep-$$" | wc -l)" = 1 ] || die "network lost across restart"
[ "$(bn sandbox ls -q | wc -l)" = 2 ] || die "sandboxes lost across restart"

# Kernel objects deleted behind the agent's back come back on the next start. Meanwhile (in_ns: the
# agent is stopped, so `sandbox exec` cannot run) the gateway, the bridge's own address, is gone on
# either datapath. Traffic between the sandboxes is cut on the kernel datapath, where the bridge
# carries it; on the BPF datapath it never touches the bridge (veth to veth, ARP answered in BPF), so
# it goes on.
bridge=$(bn network inspect "keep-$$" | sed -n 's/.*"Bridge": "\(.*\)".*/\1/p')
net_id=$(bn network inspect "keep-$$" | sed -n 's/.*"DatapathID": \([0-9]*\).*/\1/p')
[ -n "$net_id" ] && [ "$net_id" != 0 ] || die "network inspect shows no datapath ID"
# The BPF maps key the network by its datapath ID: "network ip->veth" for each destination entry,
# and the bridge bpfnet_net names for it.
ep_keys() {
    bn --bpffs-root "$BPFFS_DIR" map dump bpfnet_ep_by_ip --json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    print(e["key"]["network"], e["key"]["ip"] + "->" + e["value"]["interface"])' | sort
}
net_bridge_ifindex() {
    bn --bpffs-root "$BPFFS_DIR" map dump bpfnet_net --json | python3 -c '
import json, sys
print(" ".join(str(e["value"]["bridge_ifindex"]) for e in json.load(sys.stdin)
               if e["key"]["network"] == int(sys.argv[1])))' "$net_id"
}
if [ "$E2E_DATAPATH" = bpf ]; then
    keys_before=$(ep_keys)
    [ "$(echo "$keys_before" | cut -d' ' -f1 | sort -u)" = "$net_id" ] ||
        die "bpfnet_ep_by_ip keys are not network $net_id: $keys_before"
fi
stop_agent
ip link del "$bridge"
if in_ns "sba-$$" ping -c 1 -W 1 10.207.1.1 >/dev/null; then die "the gateway answered with its bridge deleted"; fi
if [ "$E2E_DATAPATH" = bpf ]; then
    in_ns "sba-$$" ping -c 2 -W 2 10.207.1.3 >/dev/null || die "BPF forwarding between the sandboxes needed the bridge"
elif in_ns "sba-$$" ping -c 1 -W 1 10.207.1.3 >/dev/null; then
    die "the sandboxes still reached each other with their bridge deleted"
fi
start_agent
ip link show "$bridge" >/dev/null || die "bridge not re-created on start"
if [ "$E2E_DATAPATH" = bpf ]; then
    # A new bridge (new ifindex) changes one value; every endpoint key stays as it was.
    [ "$(ep_keys)" = "$keys_before" ] || die "endpoint keys changed with the bridge: [$(ep_keys)] was [$keys_before]"
    [ "$(net_bridge_ifindex)" = "$(cat "/sys/class/net/$bridge/ifindex")" ] ||
        die "bpfnet_net of network $net_id names bridge ifindex $(net_bridge_ifindex), the bridge has $(cat "/sys/class/net/$bridge/ifindex")"
fi
in_sb "sba-$$" ping -c 1 -W 2 10.207.1.3 >/dev/null || die "traffic not restored after reconcile"
ip -4 -o addr show dev "$bridge" | grep >/dev/null " 10.207.1.1/24 " || die "re-created bridge lacks the gateway address"
# The re-created bridge has a new MAC, and a sandbox that resolved the gateway before (on BPF, even
# while the bridge was gone: the program answers ARP for the gateway) keeps the old one until its
# entry expires, some 30 s later: a known product issue this test does not cover. Forget the entry,
# then the gateway must answer through the repaired bridge port.
in_sb "sba-$$" ip neigh flush 10.207.1.1 dev eth0
in_sb "sba-$$" ping -c 1 -W 2 10.207.1.1 >/dev/null || die "gateway not restored after reconcile"

assert_datapath "keep-$$"

# A stale interface carrying this agent's mark (e.g. from a lost store entry) is removed on start.
inst=$(agent_instance)
stop_agent
ip link add bnv-stale$$ type veth peer name bnv-stalp$$
ip link set bnv-stale$$ alias "bpfnet:$inst:ep:000000000000"
start_agent
ip link show bnv-stale$$ >/dev/null 2>&1 && die "stale owned interface survived reconcile"
true

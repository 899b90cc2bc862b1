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

# Traffic keeps flowing while the agent is down: a ping stream across a stop/kill/start cycle.
in_ns "sba-$$" ping -i 0.05 -c 120 -W 1 10.207.1.3 > "$WORK/ping.out" 2>&1 &
PING=$!
stop_agent
sleep 1
start_agent
kill_agent
sleep 1
start_agent
wait $PING || true
grep -q " 0% packet loss" "$WORK/ping.out" || die "traffic was interrupted by agent restarts: $(tail -2 "$WORK/ping.out")"

[ "$(bn network ls -q -f name="keep-$$" | wc -l)" = 1 ] || die "network lost across restart"
[ "$(bn sandbox ls -q | wc -l)" = 2 ] || die "sandboxes lost across restart"

# Kernel objects deleted behind the agent's back come back on the next start.
bridge=$(bn network inspect "keep-$$" | sed -n 's/.*"Bridge": "\(.*\)".*/\1/p')
stop_agent
ip link del "$bridge"
in_sb "sba-$$" ping -c 1 -W 1 10.207.1.3 >/dev/null && die "deleting the bridge should have cut traffic"
start_agent
ip link show "$bridge" >/dev/null || die "bridge not re-created on start"
in_sb "sba-$$" ping -c 1 -W 2 10.207.1.3 >/dev/null || die "traffic not restored after reconcile"

assert_datapath "keep-$$"

# A stale interface carrying this agent's mark (e.g. from a lost store entry) is removed on start.
inst=$(agent_instance)
stop_agent
ip link add bnv-stale$$ type veth peer name bnv-stalp$$
ip link set bnv-stale$$ alias "bpfnet:$inst:ep:000000000000"
start_agent
ip link show bnv-stale$$ >/dev/null 2>&1 && die "stale owned interface survived reconcile"
true

#!/usr/bin/env bash
# Restarts on either side keep containers connected: bpfnetd stopped, started and SIGKILLed while
# containers ping each other (pinned BPF state and the kernel objects keep forwarding), and dockerd
# restarted with --live-restore (containers stay up, still connected, still manageable).
source "$(dirname "$0")/lib.sh"
start_dockerd
import_image
start_agent_for_docker

N=app-$$; N2=side-$$
dk_network_create -d "$PLUGIN" --subnet 10.242.1.0/24 "$N"
dk_network_create -d "$PLUGIN" --subnet 10.242.2.0/24 "$N2"
dk_run --name "c1-$$" --network "$N" "$IMAGE" sleep 600
dk_run --name "c2-$$" --network "$N" "$IMAGE" sleep 600
c2_ip=$(container_ip "c2-$$")

# 400 pings at 20 ms (8 s) across a graceful restart and a crash of the agent.
dk exec "c1-$$" ping -i 0.02 -c 400 -W 1 "$c2_ip" >"$WORK/ping.out" 2>&1 &
PING_PID=$!
sleep 1
stop_agent
sleep 1
start_agent_for_docker
sleep 1
kill_agent
sleep 1
start_agent_for_docker
wait "$PING_PID" || true
received=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' "$WORK/ping.out")
log "pings across agent restarts: ${received:-0}/400 received"
[ "${received:-0}" -ge 399 ] || die "traffic stalled while the agent restarted: $(tail -2 "$WORK/ping.out")"

# The restarted agent still serves Docker: connect a running container to another network.
dk network connect "$N2" "c2-$$"
dk exec "c2-$$" ip -o -4 addr show dev eth1 | grep -q "10.242.2." || die "connect after agent restart gave no eth1"

# dockerd restart with --live-restore: containers keep running and keep their bpfnet interfaces.
c1_pid=$(dk inspect -f '{{.State.Pid}}' "c1-$$")
stop_dockerd
if dk version >/dev/null 2>&1; then die "dockerd still answers after stop"; fi
kill -0 "$c1_pid" 2>/dev/null || die "c1 died with dockerd despite --live-restore"
nsenter --net="/proc/$c1_pid/ns/net" ping -c 1 -W 2 "$c2_ip" >/dev/null || die "c1 lost c2 while dockerd was down"
start_dockerd
[ "$(dk inspect -f '{{.State.Running}}' "c1-$$")" = true ] || die "c1 is not running after dockerd restart"
dk exec "c1-$$" ping -c 2 -W 2 "c2-$$" >/dev/null || die "c1 cannot reach c2 by name after dockerd restart"
dk inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "c2-$$" | grep -q "$N2" \
    || die "Docker forgot c2's second network"
dk network disconnect "$N2" "c2-$$"
dk exec "c2-$$" ip link show eth1 >/dev/null 2>&1 && die "disconnect after dockerd restart left eth1"
# And new containers still get bpfnet networking (the plugin is found again).
dk_run --name "c3-$$" --network "$N" "$IMAGE" sleep 600
dk exec "c3-$$" ping -c 1 -W 2 "c1-$$" >/dev/null || die "a container started after the restart cannot reach c1"

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
wait_ping_replies "$WORK/ping.out" 10 "before the restarts"
stop_agent
wait_ping_replies "$WORK/ping.out" 10 "while the agent was stopped"
start_agent_for_docker
wait_ping_replies "$WORK/ping.out" 10 "after the agent restarted"
kill_agent
wait_ping_replies "$WORK/ping.out" 10 "while the agent was dead"
start_agent_for_docker
kill -0 "$PING_PID" 2>/dev/null || die "the ping stream ended before the restarts did: $(tail -2 "$WORK/ping.out")"
wait "$PING_PID" || true
received=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' "$WORK/ping.out")
log "pings across agent restarts: ${received:-0}/400 received"
[ "${received:-0}" -ge 399 ] || die "traffic stalled while the agent restarted: $(tail -2 "$WORK/ping.out")"

# The restarted agent still serves Docker: connect a running container to another network.
dk network connect "$N2" "c2-$$"
dk exec "c2-$$" ip -o -4 addr show dev eth1 | grep >/dev/null "10.242.2." || die "connect after agent restart gave no eth1"

# dockerd restart with --live-restore: containers keep running and keep their bpfnet interfaces.
c1_pid=$(dk inspect -f '{{.State.Pid}}' "c1-$$")
stop_dockerd
if dk version >/dev/null 2>&1; then die "dockerd still answers after stop"; fi
kill -0 "$c1_pid" 2>/dev/null || die "c1 died with dockerd despite --live-restore"
nsenter --net="/proc/$c1_pid/ns/net" ping -c 1 -W 2 "$c2_ip" >/dev/null || die "c1 lost c2 while dockerd was down"
start_dockerd
[ "$(dk inspect -f '{{.State.Running}}' "c1-$$")" = true ] || die "c1 is not running after dockerd restart"
dk exec "c1-$$" ping -c 2 -W 2 "c2-$$" >/dev/null || die "c1 cannot reach c2 by name after dockerd restart"
dk inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "c2-$$" | grep >/dev/null "$N2" \
    || die "Docker forgot c2's second network"
dk network disconnect "$N2" "c2-$$"
dk exec "c2-$$" ip link show eth1 >/dev/null 2>&1 && die "disconnect after dockerd restart left eth1"
# And new containers still get bpfnet networking (the plugin is found again).
dk_run --name "c3-$$" --network "$N" "$IMAGE" sleep 600
dk exec "c3-$$" ping -c 1 -W 2 "c1-$$" >/dev/null || die "a container started after the restart cannot reach c1"

# The agent dies in the middle of Docker's calls (after recording a join, after making its veth,
# after marking a leave). Whatever Docker then does (fail the call, or retry it against the
# restarted agent), the restarted agent must leave no half-made interface behind and keep serving.
for point in docker.join.recorded docker.join.datapath docker.leave.marked; do
    stop_agent
    BPFNET_FAILPOINTS=$point start_agent_for_docker
    victim=crash-${point##*.}-$$
    if [ "$point" = docker.leave.marked ]; then
        dk_run --name "$victim" --network "$N" "$IMAGE" sleep 600
        dk rm -f "$victim" >/dev/null 2>&1 &
    else
        dk run -d --name "$victim" --network "$N" "$IMAGE" sleep 600 >/dev/null 2>&1 &
    fi
    DK_PID_BG=$!
    for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$AGENT_PID" 2>/dev/null && die "failpoint $point was not reached"
    reap_killed_agent  # killed by the failpoint, not dead of anything else
    start_agent_for_docker
    wait "$DK_PID_BG" || true  # Docker may fail the call or retry it against the new agent
    dk rm -f "$victim" >/dev/null 2>&1 || true
    # Only c1, c2 and c3 remain: their three host veths and nothing else.
    for _ in $(seq 1 50); do
        [ "$(owned_links "$AGENT_INSTANCE" | grep -c bnv-)" -eq 3 ] && break
        sleep 0.2
    done
    left=$(owned_links "$AGENT_INSTANCE" | grep bnv- | tr '\n' ' ')
    [ "$(owned_links "$AGENT_INSTANCE" | grep -c bnv-)" -eq 3 ] \
        || die "after a crash at $point the host has veths $left (expected c1, c2, c3 only)"
    n_eps=$(bn network inspect "$N" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["Containers"]))')
    [ "$n_eps" -eq 3 ] || die "after a crash at $point bpfnet records $n_eps endpoints on $N, expected 3"
    dk exec "c1-$$" ping -c 1 -W 2 "c3-$$" >/dev/null || die "after a crash at $point c1 lost c3"
    log "recovered from a crash at $point"
done
dk_run --name "c4-$$" --network "$N" "$IMAGE" sleep 600
dk exec "c4-$$" ping -c 1 -W 2 "c1-$$" >/dev/null || die "a container started after the crashes cannot reach c1"
assert_datapath "$N"

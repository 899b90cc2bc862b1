#!/usr/bin/env bash
# Containers on bpfnet networks through Docker: reach each other by IP and by name (Docker's
# embedded DNS), static --ip and --mac-address, a second network connected to a running container
# and disconnected again, isolation between networks, --internal networks without a default route.
# On the BPF datapath the traffic is counted by the endpoint program.
source "$(dirname "$0")/lib.sh"
start_dockerd
import_image
start_agent_for_docker

A=front-$$; B=back-$$; I=private-$$
dk_network_create -d "$PLUGIN" -o "bpfnet.datapath=$E2E_DATAPATH" --subnet 10.241.1.0/24 "$A"
dk_network_create -d "$PLUGIN" --subnet 10.241.2.0/24 "$B"
dk_network_create -d "$PLUGIN" --internal --subnet 10.241.3.0/24 "$I"
dk_run --name "c1-$$" --network "$A" "$IMAGE" sleep 600
dk_run --name "c2-$$" --network "$A" --ip 10.241.1.50 --mac-address 02:aa:bb:cc:dd:ee "$IMAGE" sleep 600
dk_run --name "c3-$$" --network "$B" "$IMAGE" sleep 600

# Static address and MAC as asked; default route via the network's gateway.
dk exec "c2-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.241.1.50/24" || die "c2 lacks its --ip"
dk exec "c2-$$" ip -o link show dev eth0 | grep >/dev/null "02:aa:bb:cc:dd:ee" || die "c2 lacks its --mac-address"
dk exec "c1-$$" ip route | grep >/dev/null "default via 10.241.1.1 dev eth0" || die "c1 has no default route via the gateway"

# By IP and by name.
dk exec "c1-$$" ping -c 2 -W 2 10.241.1.50 >/dev/null || die "c1 cannot reach c2 by IP"
dk exec "c1-$$" ping -c 1 -W 2 "c2-$$" >/dev/null || die "c1 cannot reach c2 by name (embedded DNS)"
dk exec "c2-$$" ping -c 1 -W 2 "c1-$$" >/dev/null || die "c2 cannot reach c1 by name"
if [ "$E2E_DATAPATH" = bpf ]; then
    host_if=$(host_if_of_container "c2-$$" "$A")
    ep_program_attached "$host_if" || die "no BPF program attached to $host_if"
    [ "$(ep_stat "$host_if" to_packets)" -gt 0 ] || die "no packet reached c2 through bpf_redirect_peer"
    [ "$(ep_stat "$host_if" from_packets)" -gt 0 ] || die "the endpoint program counted nothing from c2"
fi
bn network inspect "$A" | grep >/dev/null "\"Datapath\": \"$E2E_DATAPATH\"" || die "$A is not on the $E2E_DATAPATH datapath"
assert_datapath "$A"

# Networks are isolated from each other.
c3_ip=$(container_ip "c3-$$")
if dk exec "c1-$$" ping -c 1 -W 1 "$c3_ip" >/dev/null; then die "c1 reached c3 on another network"; fi

# A second network on a running container, then off again.
dk network connect "$B" "c1-$$"
dk exec "c1-$$" ip -o -4 addr show dev eth1 | grep >/dev/null "10.241.2." || die "no eth1 on $B after connect"
dk exec "c1-$$" ping -c 1 -W 2 "c3-$$" >/dev/null || die "c1 cannot reach c3 after connect"
dk network disconnect "$B" "c1-$$"
dk exec "c1-$$" ip link show eth1 >/dev/null 2>&1 && die "eth1 still in c1 after disconnect"
if dk exec "c1-$$" ping -c 1 -W 1 "$c3_ip" >/dev/null; then die "c1 still reaches c3 after disconnect"; fi
n_eps=$(bn network inspect "$B" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["Containers"]))')
[ "$n_eps" = 1 ] || die "bpfnet lists $n_eps endpoints on $B after c1 left (only c3 should remain)"

# Internal: reachable inside, no default route out.
dk_run --name "i1-$$" --network "$I" "$IMAGE" sleep 600
dk_run --name "i2-$$" --network "$I" "$IMAGE" sleep 600
dk exec "i1-$$" ip route | grep >/dev/null default && die "a container on an internal network has a default route"
dk exec "i1-$$" ping -c 1 -W 2 "i2-$$" >/dev/null || die "containers on the internal network cannot talk"

# Eight containers started at once: Docker calls the plugin concurrently; every one gets its own
# address and they all reach each other.
PAR=()
for i in $(seq 1 8); do
    dk run -d --name "p$i-$$" --network "$A" "$IMAGE" sleep 600 >/dev/null &
    PAR+=($!)
done
for pid in "${PAR[@]}"; do wait "$pid" || die "a parallel docker run failed"; done
addrs=$(for i in $(seq 1 8); do container_ip "p$i-$$"; done | sort -u | wc -l)
[ "$addrs" -eq 8 ] || die "parallel containers got $addrs distinct addresses, expected 8"
for i in $(seq 2 8); do
    dk exec "p1-$$" ping -c 1 -W 2 "p$i-$$" >/dev/null || die "p1 cannot reach p$i"
done

# Removing the containers removes their interfaces from the host (owned_links lists them until then).
owned_links "$AGENT_INSTANCE" | grep -x >/dev/null "$(host_if_of_container "c1-$$" "$A")" \
    || die "owned_links does not list c1's veth: $(owned_links "$AGENT_INSTANCE")"
dk rm -f "c1-$$" "c2-$$" "c3-$$" "i1-$$" "i2-$$" $(for i in $(seq 1 8); do echo "p$i-$$"; done) >/dev/null
left=$(owned_links "$AGENT_INSTANCE" | grep bnv- || true)
[ -z "$left" ] || die "container veths left on the host: $left"
if bn sandbox ls -q | grep >/dev/null .; then die "Docker sandboxes left in bpfnet: $(bn sandbox ls)"; fi

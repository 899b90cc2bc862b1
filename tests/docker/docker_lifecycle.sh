#!/usr/bin/env bash
# `docker network create|ls|inspect|rm|prune` with -d <bpfnet plugin>: the networks are bpfnet
# networks (same IDs, Docker's names, Docker's options and IPAM settings), Docker's IPAM and
# bpfnet's IPAM both work, bpfnet's errors reach the docker user, -p publishes, and bpfnet's CLI
# does not remove Docker's networks behind its back.
source "$(dirname "$0")/lib.sh"
start_dockerd
import_image
start_agent_for_docker

NET=web-$$
dk_network_create -d "$PLUGIN" --subnet 10.240.1.0/24 --gateway 10.240.1.254 \
    --ip-range 10.240.1.128/25 --aux-address reserved=10.240.1.200 \
    -o com.docker.network.bridge.enable_icc=true --label team=web "$NET"
NET_ID=$(dk network inspect -f '{{.Id}}' "$NET")
dk network ls --filter "driver=$PLUGIN" | grep >/dev/null "${NET_ID:0:12} *$NET *$PLUGIN" \
    || die "docker network ls does not show $NET on $PLUGIN"

# Same object in bpfnet, under Docker's name once the agent has asked the engine for it.
for _ in $(seq 1 50); do bn network ls | grep >/dev/null " $NET " && break; sleep 0.2; done
bn network ls | grep >/dev/null "^${NET_ID:0:12} *$NET *bridge" || { bn network ls; die "bpfnet network ls does not list $NET"; }
inspect=$(bn network inspect "$NET")
python3 - "$inspect" "$NET_ID" "$E2E_DATAPATH" <<'PY' || die "bpfnet network inspect of $NET is wrong: $inspect"
import json, sys
n = json.loads(sys.argv[1])[0]
assert n["Id"] == sys.argv[2], n["Id"]
assert n["Owner"] == "docker", n["Owner"]
assert n["Labels"] == {"team": "web"}, n["Labels"]
c = n["IPAM"]["Config"][0]
assert (c["Subnet"], c["Gateway"]) == ("10.240.1.0/24", "10.240.1.254"), c
assert c["AuxiliaryAddresses"] == {"reserved": "10.240.1.200"}, c
assert n["Options"]["com.docker.network.bridge.enable_icc"] == "true", n["Options"]
assert n["BpfNet"]["Datapath"] == sys.argv[3], n["BpfNet"]
PY

# Docker's IPAM hands out from --ip-range; bpfnet serves whatever Docker picked.
dk_run --name "c1-$$" --network "$NET" "$IMAGE" sleep 600
[ "$(container_ip "c1-$$")" = 10.240.1.128 ] || die "c1 got $(container_ip "c1-$$"), expected 10.240.1.128"
bn network inspect "$NET" | grep >/dev/null '"IPv4Address": "10.240.1.128/24"' || die "bpfnet does not show c1's endpoint"

# bpfnet's CLI leaves Docker's objects to Docker.
expect_fail "managed by Docker" bn network rm "$NET"
bn sandbox create "sb-$$" >/dev/null
expect_fail "managed by Docker" bn network connect "$NET" "sb-$$"
bn sandbox rm "sb-$$" >/dev/null

# bpfnet's own errors reach the docker user: a subnet a bpfnet network already uses.
bn network create --subnet 10.240.9.0/24 "native-$$" >/dev/null
expect_fail "overlaps" dk network create -d "$PLUGIN" --subnet 10.240.9.0/24 "dup-$$"
dk network ls --format '{{.Name}}' | grep -x >/dev/null "dup-$$" && die "the refused network exists in Docker"

# bpfnet's IPAM: pool and addresses from bpfnet; a second pool on the same subnet is refused.
POOLNET=pool-$$
dk_network_create -d "$PLUGIN" --ipam-driver "$PLUGIN" --subnet 10.240.2.0/24 "$POOLNET"
expect_fail "overlaps" dk network create -d "$PLUGIN" --ipam-driver "$PLUGIN" --subnet 10.240.2.0/26 "dup2-$$"
dk_run --name "p1-$$" --network "$POOLNET" "$IMAGE" sleep 600
dk_run --name "p2-$$" --network "$POOLNET" "$IMAGE" sleep 600
p1=$(container_ip "p1-$$"); p2=$(container_ip "p2-$$")
[ "$p1" = 10.240.2.2 ] && [ "$p2" = 10.240.2.3 ] || die "bpfnet IPAM gave $p1 and $p2, expected 10.240.2.2 and .3"
dk network inspect -f '{{.IPAM.Driver}}' "$POOLNET" | grep -x >/dev/null "$PLUGIN" || die "Docker does not show bpfnet as IPAM driver"
bn network inspect "$POOLNET" | grep >/dev/null '"Driver": "bpfnet"' || die "bpfnet does not record its own IPAM"
dk exec "p1-$$" ping -c 1 -W 2 "$p2" >/dev/null || die "containers on a bpfnet-IPAM network cannot talk"
assert_datapath "$POOLNET"

# Published ports (-p) arrive through ProgramExternalConnectivity and are served by bpfnet's NAT,
# with no docker-proxy: reachable from the host's loopback; one host port, one container.
dk_run --name "web-$$" --network "$NET" -p 18180:80 "$IMAGE" \
    sh -c 'mkdir -p /www && hostname > /www/whoami && exec httpd -f -p 80 -h /www'
body=""
for _ in $(seq 1 30); do
    body=$(python3 -c "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:18180/whoami', timeout=2).read().decode().strip())" \
        2>/dev/null) && break
    sleep 0.2
done
[ "$body" = "$(dk inspect -f '{{.Config.Hostname}}' "web-$$")" ] || die "-p 18180:80 answered '$body'"
pgrep -f "docker-proxy.*-host-port 18180" >/dev/null && die "a docker-proxy serves 18180: ports must be bpfnet's"
expect_fail "already allocated" dk run --rm --network "$NET" -p 18180:80 "$IMAGE" true
dk rm -f "web-$$" >/dev/null
dk run --rm --network "$NET" -p 18180:80 "$IMAGE" true || die "18180 was not freed with its container"

# Removal through Docker removes the bpfnet network and its kernel objects.
dk rm -f "p1-$$" "p2-$$" >/dev/null
dk network rm "$POOLNET" >/dev/null
bn network ls | grep >/dev/null " $POOLNET " && die "$POOLNET still in bpfnet after docker network rm"
# The pool was released too: the same subnet can be taken again.
dk network create -d "$PLUGIN" --ipam-driver "$PLUGIN" --subnet 10.240.2.0/24 "$POOLNET" >/dev/null \
    || die "the released pool could not be taken again"
dk rm -f "c1-$$" >/dev/null
dk network prune -f >/dev/null
for n in "$NET" "$POOLNET"; do
    dk network ls --format '{{.Name}}' | grep -x >/dev/null "$n" && die "docker network prune left $n"
    bn network ls | grep >/dev/null " $n " && die "docker network prune left $n in bpfnet"
done
bn network ls -q -f type=custom | wc -l | grep -x >/dev/null 1 || die "only the native network should remain"
[ "$(owned_links "$AGENT_INSTANCE" | wc -l)" -eq 1 ] || die "links left: $(owned_links "$AGENT_INSTANCE")"

#!/usr/bin/env bash
# bpfnet beside Docker's firewall, with Docker's defaults (iptables, docker0, FORWARD policy DROP):
# a container on a bpfnet network reaches a server behind the uplink,
# masqueraded; its published port answers from that outside namespace and from the host; routed
# straight to its address from outside it does not (direct routing is dropped by bpfnet, counted).
# A routed network (gateway_mode_ipv4=routed through Docker) is reached at its container's address
# and not masqueraded; its container_iface_prefix names the container's interface. With docker0:
# a container on Docker's default bridge and a bpfnet container cannot reach each other either way
# (dropped by bpfnet, counted), while both reach the outside and the Docker container reaches the
# published port. All of it again after dockerd restarts (--live-restore) and after bpfnetd
# restarts; the published port answers while either is down, egress works while bpfnetd is. Docker's users see bpfnet refuse unknown and invalid options by name, and `bpfnet
# status` names the networks' gateway modes.
source "$(dirname "$0")/lib.sh"
OUT=bnt-fw-$$
HOST_IP=10.239.255.1; OUT_IP=10.239.255.2
make_outside "$OUT" "$HOST_IP/30" "$OUT_IP/30"
# The outside routes the networks' subnets back through the host (for the routed network, and to
# show that only published ports reach a nat network's containers).
ip -n "$OUT" route add 10.239.0.0/20 via "$HOST_IP"
AGENT_FLAGS+=(--uplink "${OUT}h")
start_dockerd
import_image
start_agent_for_docker

# A server in the outside namespace: /whoami, and /cgi-bin/peer answers the client's address as seen
# there (the host's address when masqueraded).
WWW="$WORK/www-out"
mkdir -p "$WWW/cgi-bin"
echo outside >"$WWW/whoami"
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%%s\\n" "$REMOTE_ADDR"\n' >"$WWW/cgi-bin/peer"
chmod +x "$WWW/cgi-bin/peer"
nsenter --net="/run/netns/$OUT" busybox httpd -f -p 0.0.0.0:80 -h "$WWW" &
SERVER_PIDS+=($!)
wait_listening "/run/netns/$OUT" tcp 80

# fetch WHERE ADDR[:PORT] PATH [TIMEOUT]: the body of http://ADDR:PORT/PATH from WHERE: "host" or
# the outside namespace (curl), or dk:CONTAINER (busybox nc: busybox-static's wget crashes with -T).
fetch() {
    local run=() addr=${2%:*} port=80 out
    [ "$2" = "$addr" ] || port=${2##*:}
    case $1 in
        dk:*)
            out=$(dk exec "${1#dk:}" sh -c "printf 'GET /$3 HTTP/1.0\r\n\r\n' | nc -w ${4:-3} $addr $port" \
                2>/dev/null) || return 1
            [[ $out == "HTTP/1."?" 200 "* ]] || return 1
            printf '%s\n' "$out" | sed '1,/^\r\?$/d'
            ;;
        *)
            [ "$1" = host ] || run=(nsenter --net="/run/netns/$1")
            "${run[@]}" curl -sf --noproxy '*' --max-time "${4:-3}" "http://$addr:$port/$3" 2>/dev/null
            ;;
    esac
}
expect_body() {  # expect_body WHERE ADDR[:PORT] PATH EXPECTED WHEN
    local got
    got=$(fetch "$1" "$2" "$3") || true
    [ "$got" = "$4" ] || die "$5: from ${1#dk:}, http://$2/$3 answered '$got', expected '$4'"
}
body_is() {  # body_is WHERE ADDR[:PORT] PATH EXPECTED (for wait_until)
    local got
    got=$(fetch "$1" "$2" "$3" 1) && [ "$got" = "$4" ]
}
GW=com.docker.network.bridge.gateway_mode_ipv4

# Options bpfnet does not know, or values it refuses, reach the docker user by name.
expect_fail "com.docker.network.bridge.bogus" dk network create -d "$PLUGIN" --subnet 10.239.9.0/24 \
    -o com.docker.network.bridge.bogus=1 "bad-$$"
expect_fail "$GW" dk network create -d "$PLUGIN" --subnet 10.239.9.0/24 -o "$GW=isolated" "bad-$$"
if dk network ls --format '{{.Name}}' | grep -x >/dev/null "bad-$$"; then die "a refused network exists in Docker"; fi

NET=fw-$$; RT=fwrt-$$
WEB=10.239.1.10; RT1=10.239.2.10
dk_network_create -d "$PLUGIN" -o "bpfnet.datapath=$E2E_DATAPATH" --subnet 10.239.1.0/24 "$NET"
dk_network_create -d "$PLUGIN" --subnet 10.239.2.0/24 -o "$GW=routed" \
    -o com.docker.network.container_iface_prefix=ctr "$RT"
httpd_cmd() { echo "mkdir -p /www && echo $1 >/www/whoami && exec httpd -f -p 80 -h /www"; }
dk_run --name "web-$$" --network "$NET" --ip "$WEB" -p 18391:80 "$IMAGE" sh -c "$(httpd_cmd "web-$$")"
dk_run --name "rt1-$$" --network "$RT" --ip "$RT1" -p 18392:80 "$IMAGE" sh -c "$(httpd_cmd "rt1-$$")"
dk exec "rt1-$$" ip -o -4 addr show dev ctr0 | grep >/dev/null "$RT1/24" \
    || die "container_iface_prefix: rt1 has no ctr0: $(dk exec "rt1-$$" ip -o -4 addr)"
# On Docker's own default network (docker0).
dk_run --name "d0-$$" "$IMAGE" sh -c "$(httpd_cmd "d0-$$")"
D0=$(container_ip "d0-$$")
DOCKER0_GW=$(ip -4 -o addr show dev docker0 | awk '{print $4}' | cut -d/ -f1)
[ -n "$D0" ] && [ -n "$DOCKER0_GW" ] || die "no address for d0 ($D0) or docker0 ($DOCKER0_GW)"
BR=$(bridge_of "$NET")

# check_paths WHEN: what must hold at every stage.
check_paths() {
    local when=$1
    # The published port from the host (polled: after a restart the first one may need a moment).
    wait_until 10 body_is host 127.0.0.1:18391 whoami "web-$$" \
        || die "$when: 127.0.0.1:18391 answered '$(fetch host 127.0.0.1:18391 whoami 1)', expected web-$$"
    expect_body host "$HOST_IP:18391" whoami "web-$$" "$when"
    expect_body "$OUT" "$HOST_IP:18391" whoami "web-$$" "$when"
    # Egress, masqueraded to the uplink's address.
    expect_body "dk:web-$$" "$OUT_IP" cgi-bin/peer "$HOST_IP" "$when (egress)"
    # The routed network: at the container's address from outside, and not masqueraded.
    expect_body "$OUT" "$RT1" whoami "rt1-$$" "$when (routed)"
    expect_body "dk:rt1-$$" "$OUT_IP" cgi-bin/peer "$RT1" "$when (routed egress)"
    # docker0's container reaches the outside (Docker masquerades it) and bpfnet's published port
    # through the host's address on docker0; d0 serves (the host reaches it).
    expect_body "dk:d0-$$" "$OUT_IP" cgi-bin/peer "$HOST_IP" "$when (docker0 egress)"
    expect_body "dk:d0-$$" "$DOCKER0_GW:18391" whoami "web-$$" "$when (docker0 to a published port)"
    expect_body host "$D0" whoami "d0-$$" "$when (d0 serves)"
    # ... but the two networks do not reach each other's containers, either way (both at once).
    local to_web to_d0
    dk exec "d0-$$" ping -c 1 -W 1 "$WEB" >/dev/null 2>&1 & to_web=$!
    dk exec "web-$$" ping -c 1 -W 1 "$D0" >/dev/null 2>&1 & to_d0=$!
    if wait "$to_web"; then die "$when: d0 on docker0 pinged web"; fi
    if wait "$to_d0"; then die "$when: web pinged d0 on docker0"; fi
    log "$when: egress, published ports, the routed network and docker0's isolation as expected"
}

check_paths "at start"

# Routed straight to the nat network's container from outside: dropped by bpfnet (the uplink
# program on BPF, nftables on the kernel datapath), not merely by Docker's FORWARD policy.
DIRECT="bpfnet direct routing: $BR"
before_nft=$(nft_counter "$DIRECT")
[ "$E2E_DATAPATH" = bpf ] && before_bpf=$(drop_count 10)
if got=$(fetch "$OUT" "$WEB" whoami 1); then die "outside reached web's address directly: '$got'"; fi
if [ "$E2E_DATAPATH" = bpf ]; then
    [ "$(drop_count 10)" -gt "$before_bpf" ] || die "no drop counted under reason unpublished (10)"
else
    [ "$(nft_counter "$DIRECT")" -gt "$before_nft" ] || die "'$DIRECT' counted nothing"
fi

# docker0 <-> bpfnet, over TCP too, and counted by bpfnet's own rules.
INBOUND="bpfnet isolation from other bridges, inbound: $BR"
OUTBOUND="bpfnet isolation from other bridges, outbound: $BR"
before_in=$(nft_counter "$INBOUND"); before_out=$(nft_counter "$OUTBOUND")
[ "$E2E_DATAPATH" = bpf ] && before_bpf=$(drop_count 11)
if got=$(fetch "dk:d0-$$" "$WEB" whoami 1); then die "d0 on docker0 reached web directly: '$got'"; fi
if got=$(fetch "dk:web-$$" "$D0" whoami 1); then die "web reached d0 on docker0: '$got'"; fi
[ "$(nft_counter "$INBOUND")" -gt "$before_in" ] || die "'$INBOUND' counted nothing"
if [ "$E2E_DATAPATH" = bpf ]; then
    [ "$(drop_count 11)" -gt "$before_bpf" ] || die "no drop counted under reason other-bridge (11)"
else
    [ "$(nft_counter "$OUTBOUND")" -gt "$before_out" ] || die "'$OUTBOUND' counted nothing"
fi

# bpfnet status: each network with its gateway mode (under Docker's name, once the agent has it).
mode_listed() {  # mode_listed NAME MODE
    bn status | sed -n '/^Firewall:/,$p' | grep -E >/dev/null -- "$1.*(^|[^[:alnum:]-])$2([^[:alnum:]-]|$)"
}
wait_until 10 mode_listed "$NET" nat || die "status names no mode nat for $NET: $(bn status)"
mode_listed "$RT" routed || die "status names no mode routed for $RT: $(bn status)"

assert_datapath "$NET"
assert_datapath "$RT"

# dockerd restarts (--live-restore: the containers stay) and rewrites its own chains.
stop_dockerd
expect_body "$OUT" "$HOST_IP:18391" whoami "web-$$" "while dockerd is down"
start_dockerd
check_paths "after a dockerd restart"

# bpfnetd restarts; its datapath and firewall stay while it is down.
stop_agent
expect_body "$OUT" "$HOST_IP:18391" whoami "web-$$" "while bpfnetd is down"
expect_body "dk:web-$$" "$OUT_IP" cgi-bin/peer "$HOST_IP" "while bpfnetd is down (egress)"
start_agent_for_docker
check_paths "after a bpfnetd restart"

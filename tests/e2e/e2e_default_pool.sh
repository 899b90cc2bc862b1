#!/usr/bin/env bash
# Without --subnet, networks get docker's default pools in order, skipping pools that overlap a host
# route or another network.
source "$(dirname "$0")/lib.sh"
start_agent
# A connected host route inside 172.17.0.0/16 (on a veth into a namespace of our own) makes that
# pool unusable, as docker's own docker0 or a VPN route would.
ip netns add "bnt-pool-$$"; EXTRA_NETNS+=("bnt-pool-$$")
ip link add "bntpool$$" type veth peer name eth0 netns "bnt-pool-$$"; EXTRA_LINKS+=("bntpool$$")
ip addr add 172.17.200.1/24 dev "bntpool$$"
ip link set "bntpool$$" up

subnet_of() { bn network inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["IPAM"]["Config"][0]["Subnet"])'; }
taken=$(ip -4 route show | awk '{print $1}')
bn network create "p1-$$" >/dev/null
bn network create "p2-$$" >/dev/null
s1=$(subnet_of "p1-$$"); s2=$(subnet_of "p2-$$")
log "picked $s1 and $s2 (host routes: $(echo $taken))"
[ "$s1" != "172.17.0.0/16" ] || die "picked a pool that overlaps a host route"
[ "$s1" != "$s2" ] || die "two networks got the same pool"
case "$s1" in 172.*.0.0/16|192.168.*.0/20) ;; *) die "$s1 is not one of docker's default pools";; esac
bn sandbox create "sb-$$" >/dev/null
bn network connect "p1-$$" "sb-$$"
expect_fail "user specified IP address is supported only" bn network connect --ip "${s2%.0/*}.9" "p2-$$" "sb-$$"
gw=$(bn network inspect "p1-$$" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["IPAM"]["Config"][0]["Gateway"])')
in_sb "sb-$$" ping -c 1 -W 2 "$gw" >/dev/null || die "sb cannot reach its gateway $gw"
assert_datapath "p1-$$"

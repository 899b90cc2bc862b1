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
# The host's routes as the agent reads them (main table, unicast), right before each create.
routes() { ip -4 -o route show table main type unicast | awk '{print $1}'; }
taken=$(routes)
bn network create "p1-$$" >/dev/null
taken2=$(routes)
bn network create "p2-$$" >/dev/null
s1=$(subnet_of "p1-$$"); s2=$(subnet_of "p2-$$")
log "picked $s1 and $s2 (host routes: $(echo $taken))"
[ "$s1" != "172.17.0.0/16" ] || die "picked a pool that overlaps a host route"
[ "$s1" != "$s2" ] || die "two networks got the same pool"
case "$s1" in 172.*.0.0/16|192.168.*.0/20) ;; *) die "$s1 is not one of docker's default pools";; esac
# In order: a network gets the first pool of docker's list (172.17-31.0.0/16, then
# 192.168.0-240.0/20) that neither a host route nor one of our networks overlaps, so every pool
# before it in the list is taken. first_free_pool ROUTES OUR_SUBNETS... names that pool.
first_free_pool() {
    python3 -c '
import ipaddress, sys
routes = [ipaddress.ip_network(r, strict=False) for r in sys.argv[1].split() if r != "default"]
taken = [r for r in routes if r.prefixlen] + [ipaddress.ip_network(s) for s in sys.argv[2:]]
pools = [ipaddress.ip_network(f"172.{i}.0.0/16") for i in range(17, 32)]
pools += [ipaddress.ip_network(f"192.168.{i}.0/20") for i in range(0, 256, 16)]
print(next((str(p) for p in pools if not any(p.overlaps(t) for t in taken)), "none"))' "$@"
}
want=$(first_free_pool "$taken")
[ "$s1" = "$want" ] || die "the first network got $s1, but the first free pool was $want"
want=$(first_free_pool "$taken2" "$s1")
[ "$s2" = "$want" ] || die "the second network got $s2, but the first free pool after $s1 was $want"
# Removing a network frees its pool, ahead of $s2 in the list: the next network takes it again.
bn network rm "p1-$$" >/dev/null
taken3=$(routes)
bn network create "p1-$$" >/dev/null
s3=$(subnet_of "p1-$$"); want=$(first_free_pool "$taken3" "$s2")
[ "$s3" = "$want" ] || die "re-created p1 got $s3, but the first free pool was $want (it had $s1)"
log "re-created p1 got $s3"
bn sandbox create "sb-$$" >/dev/null
bn network connect "p1-$$" "sb-$$"
expect_fail "user specified IP address is supported only" bn network connect --ip "${s2%.0/*}.9" "p2-$$" "sb-$$"
gw=$(bn network inspect "p1-$$" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["IPAM"]["Config"][0]["Gateway"])')
in_sb "sb-$$" ping -c 1 -W 2 "$gw" >/dev/null || die "sb cannot reach its gateway $gw"
assert_datapath "p1-$$"

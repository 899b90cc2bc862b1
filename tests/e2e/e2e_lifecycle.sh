#!/usr/bin/env bash
# rm of a network in use is refused; prune removes only unused networks; sandbox rm disconnects;
# the CLI explains a missing agent in one line.
source "$(dirname "$0")/lib.sh"

out=$(bn network ls 2>&1) && die "ls without an agent succeeded"
[ "$(echo "$out" | wc -l)" = 1 ] || die "missing-agent message is not one line: $out"
echo "$out" | grep >/dev/null "Is the agent running" || die "unclear missing-agent message: $out"

start_agent
bn version | grep >/dev/null "Server: bpfnetd" || die "version does not show the server"
bn network create --subnet 10.206.1.0/24 "used-$$" >/dev/null
bn network create --subnet 10.206.2.0/24 "idle1-$$" >/dev/null
bn network create --subnet 10.206.3.0/24 "idle2-$$" >/dev/null
bn sandbox create "sb1-$$" >/dev/null
bn network connect "used-$$" "sb1-$$"
bridge=$(bn network inspect "used-$$" | sed -n 's/.*"Bridge": "\(.*\)".*/\1/p')
ip link show "$bridge" >/dev/null || die "bridge $bridge missing"

expect_fail "has active endpoints" bn network rm "used-$$"
expect_fail "not found" bn network rm "nosuch-$$"
expect_fail "invalid network name" bn network create "bad name"
expect_fail "not supported" bn network create -d weave "wv-$$"
expect_fail "need the cluster store" bn network create -d overlay "ov-$$"
expect_fail "invalid value" bn network create -o com.docker.network.bridge.enable_icc=maybe "bad-$$"

bn network prune -f > "$WORK/prune.out"
grep -q "idle1-$$" "$WORK/prune.out" && grep -q "idle2-$$" "$WORK/prune.out" || die "prune did not list the idle networks"
[ "$(bn network ls -q -f type=custom | wc -l)" = 1 ] || die "prune removed too much or too little"

ip -o link show master "$bridge" | grep >/dev/null "$(host_if_of "sb1-$$" "used-$$")" || die "sb1 is not a port of $bridge"
owned_links "$(agent_instance)" | grep -x >/dev/null "$bridge" || die "owned_links does not list $bridge"
nft list tables | grep -x >/dev/null "table ip bpfnet_$(agent_instance)" || die "no firewall table: $(nft list tables)"
nft list table ip "bpfnet_$(agent_instance)" | grep >/dev/null "$bridge" || die "the firewall does not mention $bridge"
bn sandbox rm "sb1-$$" >/dev/null
ip link show "$bridge" >/dev/null || die "bridge vanished with the sandbox"
[ -z "$(ip -o link show master "$bridge")" ] || die "sandbox rm left a port on the bridge"
bn network rm "used-$$" >/dev/null
ip link show "$bridge" >/dev/null 2>&1 && die "network rm left the bridge"
left=$(owned_links "$(agent_instance)")
[ -z "$left" ] || die "links left after everything was removed: $left"
# With no network left the agent may drop its table; if it keeps it, the bridge is gone from it.
if nft list tables | grep -x >/dev/null "table ip bpfnet_$(agent_instance)"; then
    fw=$(nft list table ip "bpfnet_$(agent_instance)")
    grep >/dev/null "$bridge" <<<"$fw" && die "firewall still mentions the removed bridge: $fw"
fi

# Driver options: a chosen bridge name and MTU are honoured on the bridge and the endpoint.
BR=bnt-br$$
bn network create --subnet 10.206.4.0/24 -o com.docker.network.bridge.name="$BR" \
    -o com.docker.network.driver.mtu=1400 "opts-$$" >/dev/null
ip link show "$BR" | grep >/dev/null "mtu 1400" || die "bridge $BR missing or without MTU 1400"
bn sandbox create "sb2-$$" >/dev/null
bn network connect "opts-$$" "sb2-$$"
in_sb "sb2-$$" ip link show eth0 | grep >/dev/null "mtu 1400" || die "endpoint MTU is not 1400"
in_sb "sb2-$$" ping -c 1 -W 2 10.206.4.1 >/dev/null || die "sb2 cannot reach its gateway"
assert_datapath "opts-$$"
expect_fail "already used by network" bn network create --subnet 10.206.5.0/24 -o com.docker.network.bridge.name="$BR" "dup-$$"
expect_fail "invalid value" bn network create --subnet 10.206.6.0/24 -o com.docker.network.driver.mtu=10 "mtu-$$"
bn sandbox rm "sb2-$$" >/dev/null
bn network rm "opts-$$" >/dev/null
ip link show "$BR" >/dev/null 2>&1 && die "custom-named bridge left behind"
true

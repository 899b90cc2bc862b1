#!/usr/bin/env bash
# The predefined "bridge" network: created at the first start on the bridge and subnet given (or
# from the default pools), marked builtin, not removable, usable like any bridge network, and not
# created twice across restarts.
source "$(dirname "$0")/lib.sh"
BR=bnt-dbr-$$
AGENT_FLAGS+=(--default-bridge "$BR" --default-bridge-subnet 10.213.0.0/24)
start_agent
[ "$(bn network ls -q -f type=builtin | wc -l)" = 3 ] || die "expected bridge, host and none: $(bn network ls)"
bn network inspect bridge | python3 -c "
import json, sys
n = json.load(sys.stdin)[0]
assert n['Driver'] == 'bridge', n
assert n['Options'].get('com.docker.network.bridge.default_bridge') == 'true', n['Options']
assert n['BpfNet']['Bridge'] == '$BR' and n['BpfNet']['Predefined'], n['BpfNet']
assert n['IPAM']['Config'][0]['Subnet'] == '10.213.0.0/24', n['IPAM']" || die "bridge network: $(bn network inspect bridge)"
ip link show "$BR" >/dev/null || die "no Linux bridge $BR"
expect_fail "bridge is a pre-defined network and cannot be removed" bn network rm bridge
for s in a b; do bn sandbox create --network bridge "db$s-$$" >/dev/null; done
in_sb "dba-$$" ping -c 2 -W 2 10.213.0.3 >/dev/null || die "no traffic on the default bridge"
assert_datapath_is bridge bpf
stop_agent
start_agent
[ "$(bn network ls -q -f name=bridge -f type=builtin | wc -l)" = 1 ] || die "the restart made a second bridge network"
in_sb "dba-$$" ping -c 2 -W 2 10.213.0.3 >/dev/null || die "no traffic after the restart"

#!/usr/bin/env bash
# Networks are isolated from each other; traffic to the outside is masqueraded (unless turned off).
source "$(dirname "$0")/lib.sh"
start_agent
OUT=bnt-out-$$
make_outside "$OUT" 10.203.9.1/30 10.203.9.2/30

bn network create --subnet 10.203.1.0/24 "neta-$$" >/dev/null
bn network create --subnet 10.203.2.0/24 "netb-$$" >/dev/null
bn network create --subnet 10.203.3.0/24 -o com.docker.network.bridge.enable_ip_masquerade=false "netc-$$" >/dev/null
for s in a1 a2 b1 c1; do bn sandbox create "sb$s-$$" >/dev/null; done
bn network connect "neta-$$" "sba1-$$"
bn network connect "neta-$$" "sba2-$$"
bn network connect "netb-$$" "sbb1-$$"
bn network connect "netc-$$" "sbc1-$$"

in_sb "sba1-$$" ping -c 1 -W 2 10.203.1.3 >/dev/null || die "same-network traffic is broken"
if in_sb "sbb1-$$" ping -c 1 -W 1 10.203.1.2 >/dev/null; then die "netb reached neta: no isolation"; fi
if in_sb "sba1-$$" ping -c 1 -W 1 10.203.2.2 >/dev/null; then die "neta reached netb: no isolation"; fi
# The outside namespace has no route back to container subnets: only masquerade makes replies work.
in_sb "sba1-$$" ping -c 1 -W 2 10.203.9.2 >/dev/null || die "neta cannot reach the outside (masquerade)"
if in_sb "sbc1-$$" ping -c 1 -W 1 10.203.9.2 >/dev/null; then die "netc was masqueraded despite enable_ip_masquerade=false"; fi
for n in neta netb netc; do assert_datapath "$n-$$"; done

#!/usr/bin/env bash
# enable_icc=false blocks endpoint-to-endpoint traffic; --internal networks cannot reach outside.
source "$(dirname "$0")/lib.sh"
start_agent
OUT=bnt-out-$$
make_outside "$OUT" 10.204.9.1/30 10.204.9.2/30

bn network create --subnet 10.204.1.0/24 -o com.docker.network.bridge.enable_icc=false "noicc-$$" >/dev/null
bn network create --subnet 10.204.2.0/24 --internal "intern-$$" >/dev/null
for s in n1 n2 i1 i2; do bn sandbox create "sb$s-$$" >/dev/null; done
bn network connect "noicc-$$" "sbn1-$$"
bn network connect "noicc-$$" "sbn2-$$"
bn network connect "intern-$$" "sbi1-$$"
bn network connect "intern-$$" "sbi2-$$"

if in_sb "sbn1-$$" ping -c 1 -W 1 10.204.1.3 >/dev/null; then die "icc=false still lets endpoints talk"; fi
in_sb "sbn1-$$" ping -c 1 -W 2 10.204.1.1 >/dev/null || die "icc=false must still reach the gateway"
in_sb "sbn1-$$" ping -c 1 -W 2 10.204.9.2 >/dev/null || die "icc=false must still reach the outside"

in_sb "sbi1-$$" ping -c 1 -W 2 10.204.2.3 >/dev/null || die "internal network endpoints must reach each other"
in_sb "sbn1-$$" ip route show default | grep >/dev/null "^default via 10.204.1.1 " || die "no default route on a normal network"
in_sb "sbi1-$$" ip route show default | grep >/dev/null . && die "internal network gave a default route"
# Even with a route added by hand, the firewall stops traffic leaving an internal network.
in_sb "sbi1-$$" ip route add 10.204.9.0/30 via 10.204.2.1
if in_sb "sbi1-$$" ping -c 1 -W 1 10.204.9.2 >/dev/null; then die "internal network reached the outside"; fi
bn network inspect "intern-$$" | grep >/dev/null '"Internal": true' || die "inspect does not say Internal"
assert_datapath "noicc-$$"
assert_datapath "intern-$$"

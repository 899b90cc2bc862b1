#!/usr/bin/env bash
# One sandbox on two networks: eth0 and eth1, the default route on the first, moved on disconnect;
# disconnect removes the interface.
source "$(dirname "$0")/lib.sh"
start_agent
bn network create --subnet 10.205.1.0/24 "front-$$" >/dev/null
bn network create --subnet 10.205.2.0/24 "back-$$" >/dev/null
for s in app web db; do bn sandbox create "sb$s-$$" >/dev/null; done
bn network connect "front-$$" "sbapp-$$"
bn network connect "back-$$" "sbapp-$$"
bn network connect "front-$$" "sbweb-$$"
bn network connect "back-$$" "sbdb-$$"

in_sb "sbapp-$$" ip -o -4 addr show dev eth0 | grep >/dev/null 10.205.1.2/24 || die "eth0 not on the first network"
in_sb "sbapp-$$" ip -o -4 addr show dev eth1 | grep >/dev/null 10.205.2.2/24 || die "eth1 not on the second network"
in_sb "sbapp-$$" ip route show default | grep >/dev/null "via 10.205.1.1 dev eth0" || die "default route not via the first network"
in_sb "sbapp-$$" ping -c 1 -W 2 10.205.1.3 >/dev/null || die "app cannot reach web"
in_sb "sbapp-$$" ping -c 1 -W 2 10.205.2.3 >/dev/null || die "app cannot reach db"
if in_sb "sbweb-$$" ping -c 1 -W 1 10.205.2.3 >/dev/null; then die "web reached db across networks"; fi
assert_datapath "front-$$"
assert_datapath "back-$$"

bn network disconnect "front-$$" "sbapp-$$"
in_sb "sbapp-$$" ip link show eth0 >/dev/null 2>&1 && die "eth0 still exists after disconnect"
in_sb "sbapp-$$" ip route show default | grep >/dev/null "via 10.205.2.1 dev eth1" || die "default route did not move to eth1"
in_sb "sbapp-$$" ping -c 1 -W 2 10.205.2.3 >/dev/null || die "app lost db after disconnecting front"
expect_fail "is not connected" bn network disconnect "front-$$" "sbapp-$$"
# Reconnecting takes the lowest free interface name again.
bn network connect "front-$$" "sbapp-$$"
in_sb "sbapp-$$" ip -o -4 addr show dev eth0 | grep >/dev/null 10.205.1 || die "reconnect did not reuse eth0"
expect_fail "already exists in network" bn network connect "front-$$" "sbapp-$$"

#!/usr/bin/env bash
# Static addresses (--ip) and IPAM errors that must leave nothing half-created.
source "$(dirname "$0")/lib.sh"
start_agent
NET=static-$$

bn network create --subnet 10.202.0.0/24 --ip-range 10.202.0.128/25 --aux-address router=10.202.0.129 "$NET" >/dev/null
for s in a b c d; do bn sandbox create "sb$s-$$" >/dev/null; done
bn network connect --ip 10.202.0.254 "$NET" "sba-$$"
in_sb "sba-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.202.0.254/24" || die "static IP not configured"
in_sb "sba-$$" ip link show eth0 | grep >/dev/null "02:42:0a:ca:00:fe" || die "MAC not derived from the static IP"
# Dynamic addresses come from --ip-range, skipping the aux address.
bn network connect "$NET" "sbb-$$"
in_sb "sbb-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.202.0.128/24" || die "dynamic IP not from the ip-range start"
bn network connect "$NET" "sbd-$$"
in_sb "sbd-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.202.0.130/24" || die "aux address was not skipped"
in_sb "sbb-$$" ping -c 1 -W 2 10.202.0.254 >/dev/null || die "cannot reach the static address"
assert_datapath "$NET"

# Only this agent's links: other tests create and delete links on the host at the same time.
before=$(owned_links "$AGENT_INSTANCE" | wc -l)
[ "$before" -ge 4 ] || die "owned_links lists $before links, not the bridge and three veths"
expect_fail "already in use" bn network connect --ip 10.202.0.254 "$NET" "sbc-$$"
expect_fail "is not in subnet" bn network connect --ip 10.202.9.5 "$NET" "sbc-$$"
expect_fail "invalid IPv4 address" bn network connect --ip 10.202.0.300 "$NET" "sbc-$$"
expect_fail "gateway" bn network connect --ip 10.202.0.1 "$NET" "sbc-$$"
[ "$(owned_links "$AGENT_INSTANCE" | wc -l)" = "$before" ] || die "a refused connect left an interface behind"
[ "$(in_sb "sbc-$$" ip -o link show | wc -l)" = 1 ] || die "a refused connect left an interface in the sandbox"

# Network-level IPAM errors.
expect_fail "overlaps" bn network create --subnet 10.202.0.0/16 "ovl-$$"
expect_fail "not inside subnet" bn network create --subnet 10.202.12.0/24 --gateway 10.202.13.1 "gw-$$"
expect_fail "invalid CIDR" bn network create --subnet 10.202.12.0 "bad-$$"
expect_fail "already exists" bn network create --subnet 10.202.14.0/24 "$NET"
# Exhaustion: a /30 has one address left after the gateway.
bn network create --subnet 10.202.15.0/30 "tiny-$$" >/dev/null
bn network connect "tiny-$$" "sbc-$$"
expect_fail "no available IPv4 addresses" bn network connect "tiny-$$" "sbd-$$"
[ "$(bn network ls -q -f type=custom | wc -l)" = 2 ] || die "a refused create left a network behind"

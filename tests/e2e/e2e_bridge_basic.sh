#!/usr/bin/env bash
# The seed scenario: a user-defined bridge network with --subnet, two sandboxes that ping and talk
# TCP to each other, docker-shaped inspect output, and ls filters.
source "$(dirname "$0")/lib.sh"
start_agent
NET=basic-$$

bn network create --subnet 10.201.0.0/24 --label team=e2e "$NET" >/dev/null
bn sandbox create "sba-$$" >/dev/null
bn sandbox create "sbb-$$" >/dev/null
bn network connect "$NET" "sba-$$"
bn network connect --alias web "$NET" "sbb-$$"

# Addresses come from the subnet in order, after the gateway; MACs follow docker's 02:42 rule.
in_sb "sba-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.201.0.2/24" || die "sba has no 10.201.0.2/24 on eth0"
in_sb "sbb-$$" ip -o -4 addr show dev eth0 | grep >/dev/null "10.201.0.3/24" || die "sbb has no 10.201.0.3/24 on eth0"
in_sb "sba-$$" ip link show eth0 | grep >/dev/null "02:42:0a:c9:00:02" || die "sba MAC is not 02:42:0a:c9:00:02"
in_sb "sba-$$" ip route show default | grep >/dev/null "via 10.201.0.1 dev eth0" || die "no default route via the gateway"
# An IPv4-only network gives the container's end no IPv6 (as Docker does): no link-local address,
# so no router solicitations, MLD reports or DAD probes flooded to every port of the bridge.
[ "$(in_sb "sba-$$" cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" = 1 ] || die "sba's eth0 has IPv6"
[ -z "$(in_sb "sba-$$" ip -o -6 addr show dev eth0)" ] || die "sba's eth0 has an IPv6 address"

in_sb "sba-$$" ping -c 2 -W 2 10.201.0.3 >/dev/null || die "sba cannot ping sbb"
in_sb "sbb-$$" ping -c 2 -W 2 10.201.0.2 >/dev/null || die "sbb cannot ping sba"
in_sb "sba-$$" ping -c 1 -W 2 10.201.0.1 >/dev/null || die "sba cannot ping its gateway"

# TCP both ways through the bridge.
in_sb "sbb-$$" sh -c 'nc -l 5001 < /dev/null > "$1"' _ "$WORK/received" &
NC_PID=$!
wait_listening "sbb-$$" tcp 5001
echo "hello over bpfnet" | in_sb "sba-$$" nc -w 2 -N 10.201.0.3 5001 || die "TCP connect to sbb failed"
wait $NC_PID || true
grep -q "hello over bpfnet" "$WORK/received" || die "sbb did not receive the TCP payload"
assert_datapath "$NET"

# --alias is recorded on the endpoint: sandbox inspect shows it in Networks.NET.Aliases, as docker
# inspect does, and only on the endpoint that was given one.
aliases_of() {
    bn sandbox inspect "$1" | python3 -c '
import json, sys
print(" ".join(json.load(sys.stdin)[0]["Networks"][sys.argv[1]]["Aliases"]))' "$NET"
}
[ "$(aliases_of "sbb-$$")" = web ] || die "sbb's endpoint has aliases [$(aliases_of "sbb-$$")], expected [web]"
[ -z "$(aliases_of "sba-$$")" ] || die "sba's endpoint has aliases [$(aliases_of "sba-$$")], expected none"

# inspect is docker-shaped and lists both sandboxes.
bn network inspect "$NET" > "$WORK/inspect.json"
python3 - "$WORK/inspect.json" "$NET" "$E2E_DATAPATH" <<'PY' || die "inspect output is not as expected"
import json, sys
doc = json.load(open(sys.argv[1]))
assert isinstance(doc, list) and len(doc) == 1, doc
n = doc[0]
assert n["Name"] == sys.argv[2] and n["Driver"] == "bridge" and n["Scope"] == "local"
assert len(n["Id"]) == 64
assert n["IPAM"]["Config"][0] == {"Subnet": "10.201.0.0/24", "Gateway": "10.201.0.1"}, n["IPAM"]
addrs = sorted(c["IPv4Address"] for c in n["Containers"].values())
assert addrs == ["10.201.0.2/24", "10.201.0.3/24"], addrs
assert all(len(c["EndpointID"]) == 64 for c in n["Containers"].values())
assert n["Labels"] == {"team": "e2e"}
assert n["BpfNet"]["Datapath"] == sys.argv[3], n["BpfNet"]
PY

# ls: table, filters, quiet, json lines.
bn network ls | grep >/dev/null "$NET" || die "network ls does not show $NET"
[ "$(bn network ls -q -f name="$NET")" = "$(bn network inspect "$NET" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"][:12])')" ] \
    || die "ls -q -f name= does not give the network ID"
bn network ls -q -f driver=bridge | grep >/dev/null "^$(bn network ls -q -f name="$NET")$" || die "driver=bridge does not list $NET"
[ -z "$(bn network ls -q -f driver=macvlan)" ] || die "driver filter did not filter"
bn network ls --format json | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' || die "ls --format json is not JSON lines"
# An ID prefix works wherever a name does.
ID=$(bn network ls -q -f name="$NET")
bn network inspect "${ID:0:5}" | grep >/dev/null "\"Name\": \"$NET\"" || die "ID prefix did not resolve"

#!/usr/bin/env bash
# `--uplink auto` follows the host: the agent runs in a namespace of the test's own standing for the
# host (so the machine's real NIC is never touched), where devices with a global address and a route
# become uplinks, also when they appear after the start and until they go; a bridge that is not
# bpfnet's is another container network, which a container cannot reach (on BPF: dropped by the
# endpoint program, reason other-bridge) but whose host address it can.
source "$(dirname "$0")/lib.sh"
H=bnua-$$
ip netns add "$H"; EXTRA_NETNS+=("$H")
in_host() { ip netns exec "$H" "$@"; }
in_host ip link set lo up
# The "host"'s NIC: a veth (auto takes a veth only with the default route, as it has here).
in_host ip link add up0 type veth peer name up0p
in_host ip addr add 10.229.9.1/24 dev up0
in_host ip link set up0 up; in_host ip link set up0p up
in_host ip route add default via 10.229.9.2

AGENT_WRAP=(nsenter "--net=/run/netns/$H")
start_agent --uplink auto
interfaces() { bn status | sed -n 's/^Interfaces: *//p'; }
status_has() { interfaces | grep -F >/dev/null -- "$1"; }
status_lacks() { ! interfaces | grep -F >/dev/null -- "$1"; }
wait_until 5 status_has "up0 (default route)" || die "auto did not take the default route's device: $(interfaces)"

# A NIC that appears later (a macvlan on up0, as this kernel may lack dummy: Ethernet headers, a
# global address and its connected route).
in_host ip link add nic2 link up0 type macvlan mode bridge
in_host ip addr add 10.229.10.1/24 dev nic2
in_host ip link set nic2 up
wait_until 10 status_has "nic2 (global address)" || die "a new NIC did not become an uplink: $(interfaces)"
if [ "$E2E_DATAPATH" = bpf ]; then
    # The agent pins the tcx link it attached (it exists only while attached).
    wait_until 5 test -e "$BPFFS_DIR/bpfnet/uplink-links/nic2" ||
        die "no uplink program link pinned for nic2: $(ls "$BPFFS_DIR/bpfnet/uplink-links")"
    bn status | grep -F >/dev/null "nic2 tc ingress" || die "status: $(bn status)"
fi

# Another runtime's bridge with a "container" on it.
in_host ip link add ob0 type bridge
in_host ip addr add 10.229.11.1/24 dev ob0
in_host ip link set ob0 up
wait_until 10 status_has "ob0 10.229.11.0/24" || die "another bridge was not seen: $(interfaces)"
status_lacks "ob0 (" || die "a bridge without the default route became an uplink: $(interfaces)"
ip netns add "oc-$$"; EXTRA_NETNS+=("oc-$$")
in_host ip link add ocv type veth peer name eth0 netns "oc-$$"
in_host ip link set ocv master ob0; in_host ip link set ocv up
ip -n "oc-$$" addr add 10.229.11.2/24 dev eth0; ip -n "oc-$$" link set eth0 up
ip -n "oc-$$" route add default via 10.229.11.1

bn network create --subnet 10.229.1.0/24 "n-$$" >/dev/null
bn sandbox create "s-$$" >/dev/null
bn network connect "n-$$" "s-$$"
# The host's own address on that bridge is reachable, as every host address is (Docker's
# host-gateway); its container is not, either way.
in_sb "s-$$" ping -c 1 -W 2 10.229.11.1 >/dev/null || die "the host address on the other bridge is unreachable"
[ "$E2E_DATAPATH" = bpf ] && before=$(drop_count 11)
if in_sb "s-$$" ping -c 1 -W 1 10.229.11.2 >/dev/null; then die "a container reached another bridge's container"; fi
# The inbound drop is the nftables firewall's: `bpfnet monitor` shows it too (NFLOG, in the namespace
# the agent's firewall is in), with the reason a BPF drop would have. On the kernel datapath there
# is no BPF datapath to read: the monitor shows the firewall's drops alone.
nsenter --net="/run/netns/$H" "$BPFNET" --run-dir "$RUN_DIR" --bpffs-root "$BPFFS_DIR" monitor \
    --type drop --endpoint 10.229.11.2 --count 1 --duration 20 --format json \
    >"$WORK/nft-drop.json" 2>"$WORK/monitor.err" &
MON=$!
CLEANUP_HOOKS+=("kill $MON 2>/dev/null")
wait_until 10 nflog_bound 2470 "$H" || die "the monitor did not bind the firewall's NFLOG group: $(cat "$WORK/monitor.err")"
if ip netns exec "oc-$$" ping -c 1 -W 1 10.229.1.2 >/dev/null; then die "another bridge's container reached a bpfnet container"; fi
wait "$MON" || die "the monitor failed: $(cat "$WORK/monitor.err")"
python3 - "$WORK/nft-drop.json" <<'PY' || die "the monitor did not show the firewall's drop: $(cat "$WORK/nft-drop.json" "$WORK/monitor.err")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert len(events) == 1, events
e = events[0]
assert e["endpoint"] == "nftables" and e["reason"] == "other-bridge", e
assert e["src"] == "10.229.11.2" and e["dst"] == "10.229.1.2" and e["in"] == "ob0", e
PY
if [ "$E2E_DATAPATH" = bpf ]; then
    [ "$(drop_count 11)" -gt "$before" ] || die "the endpoint program did not count an other-bridge drop"
fi
[ "$(nft_counter "bpfnet isolation from other bridges, inbound: $(bridge_of "n-$$")" "$H")" -gt 0 ] ||
    die "the inbound drop from the other bridge was not counted"
assert_datapath_is "n-$$" "$E2E_DATAPATH" "$RUN_DIR" "$BPFFS_DIR" "$H"

# The NIC goes: no longer an uplink.
in_host ip link del nic2
wait_until 10 status_lacks "nic2" || die "a removed NIC stayed an uplink: $(interfaces)"
log "auto uplinks and other bridges follow the host"

#!/usr/bin/env bash
# The BPF fast path: same-network traffic goes veth to veth with bpf_redirect_peer and the bridge
# never sees it; ARP is answered in BPF; drops are counted by reason; the datapath keeps forwarding
# with zero loss while the agent restarts.
source "$(dirname "$0")/lib.sh"
start_agent
NET=fast-$$
bn network create --subnet 10.216.0.0/24 "$NET" >/dev/null
bn network create --subnet 10.216.1.0/24 "other-$$" >/dev/null
bn network inspect "$NET" | grep >/dev/null '"Datapath": "bpf"' || die "network is not on the BPF datapath"
BR=$(bn network inspect "$NET" | sed -n 's/.*"Bridge": "\(.*\)".*/\1/p')
for s in a b c; do
    bn sandbox create "sb$s-$$" >/dev/null
    # No IPv6 chatter (router solicitations, MLD): it would reach the bridge and muddy the proof.
    in_sb "sb$s-$$" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
bn network connect "$NET" "sba-$$"
bn network connect "$NET" "sbb-$$"
bn network connect "other-$$" "sbc-$$"
IFA=$(host_if_of "sba-$$" "$NET"); IFB=$(host_if_of "sbb-$$" "$NET")
# The endpoint program is a cls_bpf filter on the host end (not a tcx link: attaching one waits
# for an RCU grace period under RTNL on every connect).
tc filter show dev "$IFA" ingress | grep >/dev/null "bpfnet_from_ep" || die "no endpoint program on $IFA: $(tc filter show dev "$IFA" ingress)"
# On the ingress qdisc, not clsact: one tc block per veth, not two (each bound block is searched
# for in a host-wide list on every later bind).
tc qdisc show dev "$IFA" | grep >/dev/null "^qdisc ingress ffff:" || die "endpoint veth $IFA has no ingress qdisc: $(tc qdisc show dev "$IFA")"
[ -z "$(ls "$BPFFS_DIR/bpfnet/links" 2>/dev/null)" ] || die "tcx links pinned for endpoints: $(ls "$BPFFS_DIR/bpfnet/links")"

br_rx_before=$(cat "/sys/class/net/$BR/statistics/rx_packets")
to_b_before=$(ep_stat "$IFB" to_packets)
in_sb "sba-$$" ping -c 50 -i 0.01 -W 2 10.216.0.3 >/dev/null || die "ping a -> b failed"
echo "payload through bpf" > "$WORK/msg"
in_sb "sbb-$$" sh -c 'nc -l 5002 < /dev/null > "$1"' _ "$WORK/got" &
NC=$!
wait_listening "sbb-$$" tcp 5002
in_sb "sba-$$" nc -w 2 -N 10.216.0.3 5002 < "$WORK/msg" || die "TCP a -> b failed"
wait $NC || true
cmp -s "$WORK/msg" "$WORK/got" || die "TCP payload differs"
assert_datapath_is "$NET" bpf
# The assertion itself fails when wrong: this BPF network is not on the kernel datapath.
if (assert_datapath_is "$NET" kernel) 2>/dev/null; then die "assert_datapath_is took a BPF network for kernel"; fi
to_b_after=$(ep_stat "$IFB" to_packets)
br_rx_after=$(cat "/sys/class/net/$BR/statistics/rx_packets")
log "to_packets of b: $to_b_before -> $to_b_after; bridge rx_packets: $br_rx_before -> $br_rx_after"
[ $((to_b_after - to_b_before)) -ge 50 ] || die "BPF delivered fewer than 50 packets to b"
[ "$br_rx_after" = "$br_rx_before" ] || die "the bridge received packets that BPF should have redirected"
# (`sandbox exec` switches only the network namespace: /sys is the host's, so ask ip, not sysfs.)
sb_mac() { in_sb "$1" ip -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }
MAC_A=$(sb_mac "sba-$$")
[ -n "$MAC_A" ] || die "cannot read a's MAC"
# (The fdb lists a's host veth by its own MAC: the command reads this bridge, in this format.)
bridge fdb show br "$BR" | grep -i >/dev/null "^$(cat "/sys/class/net/$IFA/address") dev $IFA " ||
    die "bridge fdb show br $BR does not list $IFA's own address: $(bridge fdb show br "$BR")"
bridge fdb show br "$BR" | grep -i >/dev/null "^$MAC_A " && die "the bridge learned $MAC_A: frames went through it"
# ARP for b was answered by BPF with b's MAC.
in_sb "sba-$$" ip neigh show 10.216.0.3 | grep -i >/dev/null "$(sb_mac "sbb-$$")" \
    || die "a has no ARP entry with b's MAC"

# The gateway and the host are still reached through the bridge.
in_sb "sba-$$" ping -c 1 -W 2 10.216.0.1 >/dev/null || die "gateway unreachable"

# Drops are counted by reason (numbers: enum bpfnet_drop_reason).
cross_before=$(drop_count 5)
if in_sb "sba-$$" ping -c 2 -W 1 10.216.1.2 >/dev/null; then die "reached another network"; fi
[ "$(drop_count 5)" -ge $((cross_before + 2)) ] || die "cross-network drops were not counted"
spoof_before=$(drop_count 4)
in_sb "sba-$$" ip addr add 10.216.0.77/24 dev eth0
if in_sb "sba-$$" ping -c 2 -W 1 -I 10.216.0.77 10.216.0.3 >/dev/null; then die "spoofed source IP got through"; fi
[ "$(drop_count 4)" -ge $((spoof_before + 2)) ] || die "spoofed-IP drops were not counted"
in_sb "sba-$$" ip addr del 10.216.0.77/24 dev eth0

# Zero loss while the agent is stopped, restarted, killed and restarted.
in_ns "sba-$$" ping -i 0.01 -c 500 -W 1 10.216.0.3 > "$WORK/ping.out" 2>&1 &
PING=$!
wait_ping_replies "$WORK/ping.out" 10 "before the restarts"
stop_agent; start_agent
wait_ping_replies "$WORK/ping.out" 10 "after a graceful restart"
kill_agent; start_agent
kill -0 $PING 2>/dev/null || die "the ping stream ended before the restarts did: $(tail -2 "$WORK/ping.out")"
wait $PING || true
grep -q " 0% packet loss" "$WORK/ping.out" || die "packets lost across agent restarts: $(tail -2 "$WORK/ping.out")"
filters=$(tc filter show dev "$IFA" ingress | grep -c "bpfnet_from_ep" || true)
[ "$filters" = 1 ] || die "$filters endpoint programs on $IFA after the restarts: $(tc filter show dev "$IFA" ingress)"

# Disconnecting removes the endpoint's entries and its program. The decoded map names the keys
# (bridge, ip) and the veth they deliver to; a's entry stays as the proof the dump is readable.
ep_by_ip() {  # the "ip->interface" pairs of $NET's bridge in bpfnet_ep_by_ip
    bn --bpffs-root "$BPFFS_DIR" map dump bpfnet_ep_by_ip --json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["key"]["bridge"] == sys.argv[1]:
        print(e["key"]["ip"] + "->" + e["value"]["interface"])' "$BR" | sort
}
entries=$(ep_by_ip)
[ "$entries" = "$(printf '%s\n' "10.216.0.2->$IFA" "10.216.0.3->$IFB")" ] ||
    die "bpfnet_ep_by_ip of $BR holds [$entries], expected a's and b's addresses"
bn network disconnect "$NET" "sbb-$$"
ip link show "$IFB" >/dev/null 2>&1 && die "the veth of a disconnected endpoint remains, with its program"
entries=$(ep_by_ip)
[ "$entries" = "10.216.0.2->$IFA" ] || die "after b's disconnect bpfnet_ep_by_ip of $BR holds [$entries]"

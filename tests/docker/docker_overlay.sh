#!/usr/bin/env bash
# Overlay networks through Docker on two hosts (namespaces on one underlay, etcd beside them, each
# host with its own bpfnetd and its own dockerd): `docker network create -d bpfnet -o
# bpfnet.driver=overlay` on host 1 creates the overlay in the cluster; the same command on host 2
# (same subnet, its own --ip-range) joins it. Containers on the two hosts reach each other (ping,
# TCP) through VXLAN, get the underlay MTU - 50, and an address another host holds is refused with
# a clear error. The overlay outlives one host's `docker network rm` while the other host still
# has it, and leaves the cluster with the last one.
source "$(dirname "$0")/lib.sh"
HOSTS=(1 2)
declare -A HOST_FLAGS=() HOST_PLUGIN=()
source "$(dirname "$0")/../e2e/cluster_lib.sh"
cluster_up
start_etcd
declare -A DRIVER
for h in "${HOSTS[@]}"; do
    dk_instance "h$h" nsenter --net="/run/netns/$(hns "$h")"
    HOST_PLUGIN[$h]=$PLUGIN_SOCK
    DRIVER[$h]=$PLUGIN
    HOST_FLAGS[$h]="--docker-host unix://$DK_SOCK"
    [ "$E2E_DATAPATH" = kernel ] && HOST_FLAGS[$h]+=" --probe-disable bpf"
    start_host "$h"
    start_dockerd
    import_image
done
on() { dk_instance "h$1"; shift; dk "$@"; }  # on HOST docker-args..

OV=dov-$$
SUBNET=10.234.0.0/24
on 1 network create -d "${DRIVER[1]}" -o bpfnet.driver=overlay --subnet "$SUBNET" --ip-range 10.234.0.0/26 "$OV" >/dev/null
CLUSTER_ID=$(on 1 network inspect -f '{{.Id}}' "$OV")
# Host 2 mirrors it under its Docker name, then its own Docker network joins it.
eventually 10 has_network 2 "$OV" || die "host 2 does not see $OV: $(bnh 2 network ls)"
expect_fail "VNI" on 2 network create -d "${DRIVER[2]}" -o bpfnet.driver=overlay \
    -o com.docker.network.driver.overlay.vxlanid_list=77 --subnet "$SUBNET" "bad-$$"
on 2 network create -d "${DRIVER[2]}" -o bpfnet.driver=overlay --subnet "$SUBNET" --ip-range 10.234.0.64/26 "$OV" >/dev/null
# (bpfnet learns the Docker name from the engine once Docker has committed the network.)
joins_overlay() {
    [ "$(bnh 2 network inspect "$OV" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Options'].get('bpfnet.overlay', ''))" 2>/dev/null)" = "$CLUSTER_ID" ]
}
eventually 10 joins_overlay || die "host 2's Docker network does not join the overlay of host 1: $(bnh 2 network ls)"
[ "$(bnh 2 network ls -q -f name="$OV" | wc -l)" = 1 ] || die "host 2 has two networks for $OV"
expect_fail "overlaps" on 2 network create -d "${DRIVER[2]}" -o bpfnet.driver=overlay --subnet "$SUBNET" "twice-$$"
expect_fail "bpfnet.driver" on 1 network create -d "${DRIVER[1]}" -o bpfnet.driver=macvlan --subnet 10.234.9.0/24 "mv-$$"

on 1 run -d --name "c1-$$" --network "$OV" "$IMAGE" sleep 600 >/dev/null
on 2 run -d --name "c2-$$" --network "$OV" "$IMAGE" sleep 600 >/dev/null
ip1=$(dk_instance h1; container_ip "c1-$$")
ip2=$(dk_instance h2; container_ip "c2-$$")
[ "$(on 1 exec "c1-$$" cat /sys/class/net/eth0/mtu)" = 1450 ] || die "the overlay interface does not have the underlay MTU - 50"
mac1=$(on 1 exec "c1-$$" cat /sys/class/net/eth0/address)
mac2=$(on 2 exec "c2-$$" cat /sys/class/net/eth0/address)
eventually 10 tunnels_to 1 "$OV" "$mac2" "$(vtep_of 2)" || die "host 1 has no tunnel to c2: $(tunnels_of 1 "$OV")"
on 1 exec "c1-$$" ping -c 2 -W 2 "$ip2" >/dev/null || die "c1 ($ip1, host 1) cannot ping c2 ($ip2, host 2)"
on 2 exec "c2-$$" ping -c 2 -W 2 "$ip1" >/dev/null || die "c2 cannot ping c1"
on 1 exec "c1-$$" sh -c "mkdir -p /www && echo c1-$$ >/www/whoami && httpd -p 8080 -h /www"
# (busybox-static's wget crashes on glibc's static resolver: plain HTTP through nc instead.)
on 2 exec "c2-$$" sh -c "printf 'GET /whoami HTTP/1.0\r\n\r\n' | nc -w 3 $ip1 8080" | grep "^c1-$$" >/dev/null \
    || die "TCP from c2 to c1 across hosts failed"
for h in 1 2; do assert_datapath_is "$OV" "$E2E_DATAPATH" "$WORK/h$h/run" "$WORK/h$h/bpffs" "$(hns "$h")"; done
if [ "$E2E_DATAPATH" = bpf ]; then
    on_host 1 ip -d link show bpfnet_vx | grep "vxlan external" >/dev/null || die "host 1 has no collect_md VXLAN device"
else
    on_host 1 ip -o link show "vx-${CLUSTER_ID:0:12}" >/dev/null || die "host 1 has no per-network VXLAN device"
fi

# Docker's IPAM is per host: an address host 1 holds is refused on host 2, clearly.
expect_fail "already in use" on 2 run -d --name "dup-$$" --network "$OV" --ip "$ip1" "$IMAGE" sleep 600

# Host 1 leaves: the overlay stays for host 2 (and host 1 mirrors it again).
on 1 rm -f "c1-$$" >/dev/null
on 1 network rm "$OV" >/dev/null
eventually 10 has_network 1 "$OV" || die "host 1 lost the overlay host 2 still has"
etcd_keys() { nsenter --net="/run/netns/$UND" etcdctl --endpoints "$ETCD_URL" get --prefix --keys-only "$1"; }
etcd_keys /bpfnet/v1/networks/ | grep "$CLUSTER_ID" >/dev/null || die "the overlay left the cluster while host 2 uses it"
eventually 10 no_tunnel_for 2 "$OV" "$mac1" || die "host 2 still tunnels to the removed c1"
on 2 run -d --name "c3-$$" --network "$OV" "$IMAGE" sleep 600 >/dev/null
ip3=$(dk_instance h2; container_ip "c3-$$")
on 2 exec "c2-$$" ping -c 1 -W 2 "$ip3" >/dev/null || die "c2 cannot reach c3 after host 1 left"

# Host 2 leaves too: the overlay is gone from the cluster and from host 1.
on 2 rm -f "c2-$$" "c3-$$" >/dev/null
on 2 network rm "$OV" >/dev/null
eventually 10 lacks_network 1 "$OV" || die "host 1 still has $OV after the last Docker network left"
# (Read first, so a failing etcdctl fails the test instead of printing nothing.)
keys=$(etcd_keys /bpfnet/v1/networks/)
[ -z "$keys" ] || die "the overlay is still in the cluster store: $keys"
keys=$(etcd_keys /bpfnet/v1/vnis/)
[ -z "$keys" ] || die "the overlay's VNI is still claimed: $keys"
log "ok"

// SPDX-License-Identifier: GPL-2.0
/* The overlay programs.
 *
 * bpfnet_from_underlay: TC ingress of the device holding this host's VTEP address, first in its
 * chain: VXLAN for a local endpoint is decapsulated and delivered there (lib/decap.h); whatever it
 * does not take goes on to the rest of the chain and the stack (TC_ACT_UNSPEC).
 *
 * bpfnet_from_vx: TC ingress of the host's collect_md VXLAN device, i.e. every frame another
 * host's endpoint sent to one here that the underlay program left to the device, already
 * decapsulated. The VNI (from the tunnel metadata) names
 * the network; the inner destination names the endpoint, which gets the frame with
 * bpf_redirect_peer: no bridge, no FDB. Traffic for a VNI this host has no network for is dropped
 * and counted; frames the program cannot place (ARP: each host answers its own endpoints' ARP
 * locally, broadcasts never cross the underlay) go nowhere. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/decap.h"
#include "lib/drop.h"
#include "lib/endpoint_maps.h"
#include "lib/ep_stats.h"
#include "lib/eth.h"
#include "lib/overlay_maps.h"

static __always_inline int bpfnet_decap(struct __sk_buff* skb, struct bpfnet_pkt_info* info) {
    struct bpf_tunnel_key key = {};
    if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    __u32 vni = key.tunnel_id;
    const __u32* network = bpf_map_lookup_elem(&bpfnet_vni, &vni);
    if (bpfnet_linearize(skb, sizeof(struct ethhdr) + sizeof(struct iphdr)) != 0) {
        if (!network) return BPFNET_DROP(BPFNET_DROP_UNKNOWN_VNI);
        return TC_ACT_SHOT; /* too short to be an IPv4 packet: nothing to deliver */
    }
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct ethhdr* eth = data;
    struct iphdr* iph = (void*)(eth + 1);
    if ((void*)(iph + 1) > data_end) return TC_ACT_SHOT;
    bpfnet_mac_copy(info->smac, eth->h_source);
    bpfnet_mac_copy(info->dmac, eth->h_dest);
    info->eth_proto = eth->h_proto;
    if (!network) return BPFNET_DROP(BPFNET_DROP_UNKNOWN_VNI);
    if (eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_SHOT;
    info->saddr = iph->saddr;
    info->daddr = iph->daddr;
    info->protocol = iph->protocol;

    struct bpfnet_ep_key ep_key = {.network = *network, .ip = iph->daddr};
    const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &ep_key);
    if (!dest) return TC_ACT_SHOT; /* an address nobody here holds (any more) */
    if (!bpfnet_mac_eq(info->dmac, dest->mac) &&
        bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), dest->mac, ETH_ALEN, 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_ep_count_to(dest->ifindex, skb->len);
    return bpf_redirect_peer(dest->ifindex, 0);
}

SEC("tc")
int bpfnet_from_vx(struct __sk_buff* skb) {
    struct bpfnet_pkt_info info = {};
    const int verdict = bpfnet_decap(skb, &info);

    if (verdict < 0) return bpfnet_drop(skb, &info, (__u32)-verdict);
    return verdict;
}

SEC("tc")
int bpfnet_from_underlay(struct __sk_buff* skb) {
    struct bpfnet_pkt_info info = {};
    const int verdict = bpfnet_vxlan_decap(skb, &info);

    if (verdict == BPFNET_CONTINUE) return TC_ACT_UNSPEC;
    if (verdict < 0) return bpfnet_drop(skb, &info, (__u32)-verdict);
    return verdict;
}

char LICENSE[] SEC("license") = "GPL";

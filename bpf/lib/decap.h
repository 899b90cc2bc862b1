/* Decapsulation for overlay networks at the underlay device's ingress, before the host's stack:
 * a VXLAN frame to this host's VTEP address and port, for a VNI of an overlay here, whose inner
 * IPv4 destination is a local endpoint, loses its outer headers (bpf_skb_adjust_room) and goes to
 * the endpoint with bpf_redirect_peer. It never reaches the UDP socket, the VXLAN device or its
 * GRO cells.
 *
 * Verdicts: a frame for a VNI no overlay here has is dropped (unknown-vni), as the overlay
 * program drops it after the device; a frame that is VXLAN for us but that this path does not
 * take (ARP and other inner protocols, an inner destination no endpoint here holds, a GRO-merged
 * frame on a kernel whose bpf_skb_adjust_room cannot clear the tunnel GSO state) goes on to the
 * stack and the VXLAN device (vx-decap-device); anything else is not ours and goes on untouched
 * (BPFNET_CONTINUE). */
#ifndef BPFNET_BPF_LIB_DECAP_H
#define BPFNET_BPF_LIB_DECAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/csum.h"
#include "lib/drop.h"
#include "lib/encap.h"
#include "lib/endpoint_maps.h"
#include "lib/ep_stats.h"
#include "lib/eth.h"
#include "lib/overlay_maps.h"
#include "lib/vxlan.h"

/* Linux 6.18+ (not in Debian 12's UAPI headers): clears the tunnel GSO state on decapsulation,
 * which a GRO-merged frame needs. Older kernels refuse the flag with -EINVAL. */
#ifndef BPFNET_ADJ_ROOM_DECAP_L4_UDP
#define BPFNET_ADJ_ROOM_DECAP_L4_UDP (1ULL << 10)
#endif

static __always_inline int bpfnet_decap_to_device(struct __sk_buff* skb) {
    bpfnet_nat_count(BPFNET_NAT_VX_DECAP_DEVICE, skb->len);
    return BPFNET_CONTINUE;
}

static __always_inline int bpfnet_vxlan_decap(struct __sk_buff* skb, struct bpfnet_pkt_info* info) {
    __u32 zero = 0;
    const struct bpfnet_vx_cfg* cfg = bpf_map_lookup_elem(&bpfnet_vx_cfg, &zero);
    if (!cfg || cfg->local_vtep == 0) return BPFNET_CONTINUE;
    struct bpfnet_outer_udp o;
    if (bpf_skb_load_bytes(skb, 0, &o, sizeof(o)) != 0) return BPFNET_CONTINUE;
    if (o.eth.h_proto != bpf_htons(ETH_P_IP) || o.ip.version != 4 || o.ip.ihl != 5 ||
        o.ip.protocol != IPPROTO_UDP || o.ip.daddr != cfg->local_vtep || o.udp.dest != cfg->port)
        return BPFNET_CONTINUE;
    /* Fragments are the stack's to reassemble; a damaged header its to drop. */
    if (o.ip.frag_off & bpf_htons(BPFNET_IP_MF | BPFNET_IP_OFFSET)) return BPFNET_CONTINUE;
    struct iphdr outer_ip;
    __builtin_memcpy(&outer_ip, &o.ip, sizeof(outer_ip));
    if (bpfnet_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32*)&outer_ip, sizeof(outer_ip), 0)) != 0)
        return BPFNET_CONTINUE;

    struct bpfnet_vxlan_inner v;
    if (bpf_skb_load_bytes(skb, sizeof(o), &v, sizeof(v)) != 0) return bpfnet_decap_to_device(skb);
    if (!(v.vx_flags & bpf_htonl(BPFNET_VXLAN_FLAG_VNI))) return bpfnet_decap_to_device(skb);
    bpfnet_mac_copy(info->smac, v.eth.h_source);
    bpfnet_mac_copy(info->dmac, v.eth.h_dest);
    info->eth_proto = v.eth.h_proto;
    __u32 vni = bpf_ntohl(v.vx_vni) >> 8;
    const __u32* network = bpf_map_lookup_elem(&bpfnet_vni, &vni);
    if (!network) return BPFNET_DROP(BPFNET_DROP_UNKNOWN_VNI);
    if (v.eth.h_proto != bpf_htons(ETH_P_IP) || v.ip.version != 4)
        return bpfnet_decap_to_device(skb);
    info->saddr = v.ip.saddr;
    info->daddr = v.ip.daddr;
    info->protocol = v.ip.protocol;
    struct bpfnet_ep_key ep_key = {.network = *network, .ip = v.ip.daddr};
    const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &ep_key);
    if (!dest) return bpfnet_decap_to_device(skb);

    /* GRO may have merged frames into one tunnel GSO packet; only a kernel that can clear that
     * state on decapsulation may deliver it as a plain one. */
    __u64 room_flags = 0;
    if (skb->gso_size != 0) room_flags = BPFNET_ADJ_ROOM_DECAP_L4_UDP;
    if (bpf_skb_adjust_room(skb, -(__s32)BPFNET_VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, room_flags) != 0)
        return bpfnet_decap_to_device(skb);
    /* The frame as the remote endpoint sent it, addressed to the endpoint's MAC. */
    struct ethhdr eth = {.h_proto = bpf_htons(ETH_P_IP)};
    bpfnet_mac_copy(eth.h_dest, dest->mac);
    bpfnet_mac_copy(eth.h_source, v.eth.h_source);
    if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_VX_DECAP, skb->len);
    bpfnet_ep_count_to(dest->ifindex, skb->len);
    return bpf_redirect_peer(dest->ifindex, 0);
}

#endif /* BPFNET_BPF_LIB_DECAP_H */

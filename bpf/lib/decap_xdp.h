/* Decapsulation for overlay networks in the driver's receive path, for an underlay device that is
 * also an uplink running XDP natively (lib/uplink_xdp.h): a VXLAN frame to this host's VTEP
 * address and port, for a VNI of an overlay here, whose inner IPv4 destination is a local endpoint
 * that takes XDP frames, loses its outer headers (bpf_xdp_adjust_head) and goes to the endpoint's
 * host veth with bpf_redirect (XDP_REDIRECT), before the kernel allocates an skb. Frames arrive
 * here one by one, before GRO merges them, so none needs the TC path's GSO handling.
 *
 * Only that common case is handled: a frame that is VXLAN for this host but that XDP does not
 * deliver (an outer UDP checksum to verify, a damaged outer header, an unknown VNI, ARP, an inner
 * destination no endpoint here holds or one that takes no XDP frames) is passed on (XDP_PASS) to
 * the TC programs, whose lib/decap.h delivers, drops or leaves it to the device and counts it.
 * Anything else is not VXLAN for this host (BPFNET_CONTINUE). */
#ifndef BPFNET_BPF_LIB_DECAP_XDP_H
#define BPFNET_BPF_LIB_DECAP_XDP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/csum.h"
#include "lib/drop.h"
#include "lib/endpoint_maps.h"
#include "lib/ep_stats.h"
#include "lib/eth.h"
#include "lib/overlay_maps.h"
#include "lib/vxlan.h"

static __always_inline int bpfnet_vxlan_decap_xdp(struct xdp_md* ctx) {
    __u32 zero = 0;
    const struct bpfnet_vx_cfg* cfg = bpf_map_lookup_elem(&bpfnet_vx_cfg, &zero);
    if (!cfg || cfg->local_vtep == 0) return BPFNET_CONTINUE;
    void* data = (void*)(long)ctx->data;
    void* data_end = (void*)(long)ctx->data_end;
    struct bpfnet_outer_udp* o = data;
    if ((void*)(o + 1) > data_end) return BPFNET_CONTINUE;
    if (o->eth.h_proto != bpf_htons(ETH_P_IP) || o->ip.version != 4 || o->ip.ihl != 5 ||
        o->ip.protocol != IPPROTO_UDP || o->ip.daddr != cfg->local_vtep || o->udp.dest != cfg->port)
        return BPFNET_CONTINUE;
    if (o->ip.frag_off & bpf_htons(BPFNET_IP_MF | BPFNET_IP_OFFSET)) return BPFNET_CONTINUE;

    /* VXLAN for this host from here on: what is not delivered goes to the TC path. A sender
     * that computes UDP checksums (Linux does not, by default) is left to the stack to verify;
     * a damaged IPv4 header to the stack to drop. */
    if (o->udp.check != 0) return XDP_PASS;
    __be32* outer_ip = data + ETH_HLEN;
    if (bpfnet_csum_fold((__u32)bpf_csum_diff(0, 0, outer_ip, sizeof(struct iphdr), 0)) != 0)
        return XDP_PASS;
    struct bpfnet_vxlan_inner* v = (void*)(o + 1);
    if ((void*)(v + 1) > data_end) return XDP_PASS;
    if (!(v->vx_flags & bpf_htonl(BPFNET_VXLAN_FLAG_VNI))) return XDP_PASS;
    __u32 vni = bpf_ntohl(v->vx_vni) >> 8;
    const __u32* network = bpf_map_lookup_elem(&bpfnet_vni, &vni);
    if (!network) return XDP_PASS; /* the TC program drops and counts it */
    if (v->eth.h_proto != bpf_htons(ETH_P_IP) || v->ip.version != 4) return XDP_PASS;
    struct bpfnet_ep_key ep_key = {.network = *network, .ip = v->ip.daddr};
    const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &ep_key);
    if (!dest || !(dest->flags & BPFNET_EP_F_XDP_TARGET)) return XDP_PASS;

    /* The outer Ethernet, IPv4, UDP and VXLAN headers are as long as what encapsulation adds (it
     * keeps the frame's Ethernet header as the outer one and writes the inner one). */
    if (bpf_xdp_adjust_head(ctx, BPFNET_VXLAN_ENCAP_LEN) != 0) return XDP_PASS;
    data = (void*)(long)ctx->data;
    data_end = (void*)(long)ctx->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > data_end) return XDP_DROP; /* cannot be: the inner header was there */
    /* The frame as the remote endpoint sent it, addressed to the endpoint's MAC. */
    bpfnet_mac_copy(eth->h_dest, dest->mac);
    const __u32 len = (__u32)(data_end - data);
    bpfnet_nat_count(BPFNET_NAT_VX_DECAP, len);
    bpfnet_nat_count(BPFNET_NAT_VX_DECAP_XDP, len);
    bpfnet_ep_count_to(dest->ifindex, len);
    return bpf_redirect(dest->ifindex, 0);
}

#endif /* BPFNET_BPF_LIB_DECAP_XDP_H */

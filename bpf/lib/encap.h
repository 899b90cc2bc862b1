/* Encapsulation for overlay networks, in the endpoint program: an endpoint's packet (or ARP
 * question) about an address that belongs to an endpoint on another host.
 *
 * Where the host's underlay address is known (bpfnet_vx_cfg.local_vtep) the program builds the
 * VXLAN frame itself, as the kernel's VXLAN device would put it on the wire: room for the outer
 * IPv4, UDP and VXLAN headers and the inner Ethernet header made with bpf_skb_adjust_room (its
 * encapsulation flags keep GSO and checksum offload working on the inner packet), the outer UDP
 * source port hashed from the inner flow, the outer route and next hop from bpf_fib_lookup, and
 * the frame sent straight out of the underlay device (bpf_redirect, or bpf_redirect_neigh while
 * the next hop has no neighbour entry). What it cannot send that way (no route, a route the kernel
 * would not forward, a frame above the underlay's MTU, an skb the helper refuses) keeps the old
 * path: tunnel metadata and a redirect to the host's collect_md VXLAN device, which encapsulates
 * (counted as vx-encap-device). */
#ifndef BPFNET_BPF_LIB_ENCAP_H
#define BPFNET_BPF_LIB_ENCAP_H

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
#include "lib/eth.h"
#include "lib/overlay_maps.h"
#include "lib/vxlan.h"

#define BPFNET_VXLAN_TTL 64
#define BPFNET_INET_ECN_MASK 3
#define BPFNET_INET_ECN_CE 3
#define BPFNET_INET_ECN_ECT_0 2
#define BPFNET_AF_INET_ENCAP 2 /* <sys/socket.h>'s AF_INET, which the BPF target lacks */

/* What bpf_skb_adjust_room writes room for, at the MAC header: everything of a VXLAN frame but
 * the outer Ethernet header (the packet's own, rewritten). */
struct bpfnet_vxlan_frame {
    struct ethhdr eth;
    struct iphdr ip;
    struct udphdr udp;
    __be32 vx_flags;
    __be32 vx_vni; /* VNI << 8 */
    struct ethhdr inner;
} __attribute__((packed));
_Static_assert(sizeof(struct bpfnet_vxlan_frame) == ETH_HLEN + BPFNET_VXLAN_ENCAP_LEN,
               "the VXLAN frame's headers");

static __always_inline const struct bpfnet_tunnel_dest* bpfnet_remote_endpoint(__u32 network,
                                                                               __be32 ip) {
    struct bpfnet_ep_key key = {.network = network, .ip = ip};
    return bpf_map_lookup_elem(&bpfnet_tunnel, &key);
}

/* murmur3's finalizer: every input bit moves about half the output bits. */
static __always_inline __u32 bpfnet_mix32(__u32 h) {
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

/* The outer UDP source port of a flow: one flow always takes one port (one path through the
 * underlay's ECMP, one receive queue under RSS), different flows spread over the range. `ports`
 * is the inner TCP/UDP header's first word as it sits in the packet, 0 for other protocols. */
static __always_inline __be16 bpfnet_vxlan_sport(__be32 saddr, __be32 daddr, __u32 ports,
                                                 __u8 proto) {
    const __u32 h = bpfnet_mix32(saddr ^ bpfnet_mix32(daddr ^ bpfnet_mix32(ports ^ proto)));
    const __u32 span = BPFNET_VXLAN_SPORT_MAX - BPFNET_VXLAN_SPORT_MIN + 1;
    return bpf_htons((__u16)(BPFNET_VXLAN_SPORT_MIN + (((__u64)h * span) >> 32)));
}

/* The outer ECN field, as the kernel's tunnels set it (INET_ECN_encapsulate): the inner packet's,
 * except that congestion experienced becomes ECT(0). */
static __always_inline __u8 bpfnet_outer_tos(__u8 inner_tos) {
    const __u8 ecn = inner_tos & BPFNET_INET_ECN_MASK;
    return ecn == BPFNET_INET_ECN_CE ? BPFNET_INET_ECN_ECT_0 : ecn;
}

/* Builds the VXLAN frame for remote endpoint `t` in place and sends it out of the underlay.
 * Returns the redirect's verdict, or BPFNET_CONTINUE (nothing changed) when the device must do it.
 * The first word of the L4 header is read before the packet moves. */
static __always_inline int bpfnet_encap_bpf(struct __sk_buff* skb, const struct bpfnet_vx_cfg* cfg,
                                            const struct bpfnet_tunnel_dest* t,
                                            const struct bpfnet_pkt_info* info) {
    struct bpf_fib_lookup fib = {
        .family = BPFNET_AF_INET_ENCAP,
        .l4_protocol = IPPROTO_UDP,
        .dport = cfg->port,
        .ifindex = skb->ifindex,
        .ipv4_src = cfg->local_vtep,
        .ipv4_dst = t->vtep,
    };
    /* The route's MTU must hold the frame: the lookup checks tot_len against it (FRAG_NEEDED:
     * the device fragments what does not fit). A GSO packet's segments are sized by the
     * overlay's MTU, which leaves room for the headers: 0 skips the check. */
    if (skb->gso_size == 0) fib.tot_len = (__u16)(skb->len - ETH_HLEN + BPFNET_VXLAN_ENCAP_LEN);
    const long routed = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
    if (routed != BPF_FIB_LKUP_RET_SUCCESS && routed != BPF_FIB_LKUP_RET_NO_NEIGH)
        return BPFNET_CONTINUE;

    __u32 ports = 0;
    if ((info->protocol == IPPROTO_TCP || info->protocol == IPPROTO_UDP) && info->l4_off != 0)
        bpf_skb_load_bytes(skb, info->l4_off, &ports, sizeof(ports));
    __u8 inner_tos = 0;
    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, tos), &inner_tos, 1);
    const __be16 sport = bpfnet_vxlan_sport(info->saddr, info->daddr, ports, info->protocol);

    const __u64 room_flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
                             BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN);
    if (bpf_skb_adjust_room(skb, BPFNET_VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, room_flags) != 0)
        return BPFNET_CONTINUE;

    struct bpfnet_vxlan_frame h = {};
    if (routed == BPF_FIB_LKUP_RET_SUCCESS) {
        bpfnet_mac_copy(h.eth.h_dest, fib.dmac);
        bpfnet_mac_copy(h.eth.h_source, fib.smac);
    } /* else bpf_redirect_neigh writes them */
    h.eth.h_proto = bpf_htons(ETH_P_IP);
    struct iphdr ip = {
        .version = 4,
        .ihl = 5,
        .tos = bpfnet_outer_tos(inner_tos),
        .tot_len = bpf_htons((__u16)(skb->len - ETH_HLEN)),
        /* Not DF, as the kernel's VXLAN device: an underlay with a smaller MTU fragments the
         * frame. Fragments of different frames must not share an ID. */
        .id = (__be16)bpf_get_prandom_u32(),
        .ttl = BPFNET_VXLAN_TTL,
        .protocol = IPPROTO_UDP,
        .saddr = cfg->local_vtep,
        .daddr = t->vtep,
    };
    ip.check = bpfnet_csum_fold((__u32)bpf_csum_diff(0, 0, (__be32*)&ip, sizeof(ip), 0));
    __builtin_memcpy(&h.ip, &ip, sizeof(ip));
    h.udp.source = sport;
    h.udp.dest = cfg->port;
    h.udp.len = bpf_htons((__u16)(skb->len - ETH_HLEN - sizeof(struct iphdr)));
    h.udp.check = 0; /* optional over IPv4, and off by default on the kernel's VXLAN devices */
    h.vx_flags = bpf_htonl(BPFNET_VXLAN_FLAG_VNI);
    h.vx_vni = bpf_htonl(t->vni << 8);
    bpfnet_mac_copy(h.inner.h_dest, t->mac);
    bpfnet_mac_copy(h.inner.h_source, info->smac);
    h.inner.h_proto = bpf_htons(ETH_P_IP);
    /* The packet has grown: past this point there is no way back to the device. */
    if (bpf_skb_store_bytes(skb, 0, &h, sizeof(h), 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_VX_ENCAP, skb->len);
    if (routed == BPF_FIB_LKUP_RET_SUCCESS) return bpf_redirect(fib.ifindex, 0);
    struct bpf_redir_neigh nh = {.nh_family = BPFNET_AF_INET_ENCAP, .ipv4_nh = fib.ipv4_dst};
    return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

/* Sends the frame to the remote endpoint `t`: encapsulated here where possible, else through the
 * host's VXLAN device. */
static __always_inline int bpfnet_encap(struct __sk_buff* skb, const struct bpfnet_tunnel_dest* t,
                                        const struct bpfnet_pkt_info* info) {
    __u32 zero = 0;
    const struct bpfnet_vx_cfg* cfg = bpf_map_lookup_elem(&bpfnet_vx_cfg, &zero);
    if (!cfg || cfg->vxlan_ifindex == 0) return TC_ACT_OK; /* no overlay device: the stack's */
    if (cfg->local_vtep != 0 && info->eth_proto == bpf_htons(ETH_P_IP)) {
        const int sent = bpfnet_encap_bpf(skb, cfg, t, info);
        if (sent != BPFNET_CONTINUE) return sent;
    }
    const __u32 vxlan = cfg->vxlan_ifindex;
    struct bpf_tunnel_key key = {};
    key.remote_ipv4 = bpf_ntohl(t->vtep);
    key.tunnel_id = t->vni;
    key.tunnel_ttl = BPFNET_VXLAN_TTL;
    __u8 mac[ETH_ALEN];
    bpfnet_mac_copy(mac, t->mac);
    if (!bpfnet_mac_eq(info->dmac, mac) &&
        bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), mac, ETH_ALEN, 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_VX_ENCAP_DEVICE, skb->len);
    return bpf_redirect(vxlan, 0);
}

#endif /* BPFNET_BPF_LIB_ENCAP_H */

/* Encapsulation for overlay networks, in the endpoint program: an endpoint's packet (or ARP
 * question) about an address that belongs to an endpoint on another host. The packet gets the
 * remote endpoint's MAC and tunnel metadata (the other host's VTEP, the network's VNI) and goes to
 * the host's collect_md VXLAN device, which encapsulates it; the routing of the outer packet is
 * the host's. */
#ifndef BPFNET_BPF_LIB_ENCAP_H
#define BPFNET_BPF_LIB_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/drop.h"
#include "lib/eth.h"
#include "lib/overlay_maps.h"

#define BPFNET_VXLAN_TTL 64

static __always_inline const struct bpfnet_tunnel_dest* bpfnet_remote_endpoint(__u32 network,
                                                                               __be32 ip) {
    struct bpfnet_ep_key key = {.network = network, .ip = ip};
    return bpf_map_lookup_elem(&bpfnet_tunnel, &key);
}

/* Sends the frame to the remote endpoint `t` through the host's VXLAN device. */
static __always_inline int bpfnet_encap(struct __sk_buff* skb, const struct bpfnet_tunnel_dest* t,
                                        const __u8* dmac) {
    __u32 zero = 0;
    const struct bpfnet_vx_cfg* cfg = bpf_map_lookup_elem(&bpfnet_vx_cfg, &zero);
    if (!cfg || cfg->vxlan_ifindex == 0) return TC_ACT_OK; /* no overlay device: the stack's */
    const __u32 vxlan = cfg->vxlan_ifindex;
    struct bpf_tunnel_key key = {};
    key.remote_ipv4 = bpf_ntohl(t->vtep);
    key.tunnel_id = t->vni;
    key.tunnel_ttl = BPFNET_VXLAN_TTL;
    __u8 mac[ETH_ALEN];
    bpfnet_mac_copy(mac, t->mac);
    if (!bpfnet_mac_eq(dmac, mac) &&
        bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), mac, ETH_ALEN, 0) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    return bpf_redirect(vxlan, 0);
}

#endif /* BPFNET_BPF_LIB_ENCAP_H */

/* The endpoint datapath: what happens to a packet a container sends, seen at TC ingress of the
 * host end of its veth (skb->ifindex is that host end).
 *
 *  - Only known endpoints, only their own MAC and IPv4 address (anti-spoofing), no VLAN tags.
 *  - ARP requests for the gateway or for another endpoint of the network are answered here: the
 *    request is rewritten into the reply and sent straight back into the container.
 *  - IPv4 to another endpoint of the same network goes veth to veth with bpf_redirect_peer,
 *    never through the bridge; enable_icc=false drops it instead. A frame for an overlay endpoint
 *    on another host is encapsulated here and sent out of the underlay (lib/encap.h; the host's
 *    VXLAN device where BPF cannot), and ARP for it is answered here.
 *  - Leaving the subnet: dropped for --internal networks and when the destination is another
 *    bpfnet network or another container network on the host (but for the host's own address
 *    on its bridge); packets of known flows (replies of connections to published ports from
 *    outside, egress flows) are translated and sent straight out of their uplink
 *    (lib/reply_nat.h; their fragments too, lib/fragments.h); a new flow whose route leads out
 *    of an uplink becomes an egress flow (lib/egress.h); otherwise the bridge (gateway, host,
 *    what BPF leaves to the stack) takes it, as does everything else (broadcast/multicast, ARP
 *    the program does not answer, IPv6, other EtherTypes).
 *
 * The functions return a TC verdict, or BPFNET_DROP(reason) for the caller to drop. */
#ifndef BPFNET_BPF_LIB_ENDPOINT_H
#define BPFNET_BPF_LIB_ENDPOINT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/arp.h"
#include "lib/drop.h"
#include "lib/egress.h"
#include "lib/encap.h"
#include "lib/endpoint_maps.h"
#include "lib/ep_stats.h"
#include "lib/eth.h"
#include "lib/fragments.h"
#include "lib/ipv4.h"
#include "lib/reply_nat.h"
#include "lib/svc_maps.h"

/* Sends the (rewritten) frame back into the sandbox it came from. The program runs at ingress of
 * the host end of the veth, so "the peer of skb->ifindex" is the container's interface (in another
 * netns, which bpf_redirect_peer requires), and the frame is delivered to its ingress at once.
 * bpf_redirect(skb->ifindex, 0) would work too (out of the host end, which the veth hands to the
 * peer), but through the host end's egress path and the peer's backlog queue. Both verified on
 * real veths by tests/bpf/endpoint_attach_test.cpp. */
static __always_inline int bpfnet_back_to_sender(struct __sk_buff* skb) {
    return bpf_redirect_peer(skb->ifindex, 0);
}

static __always_inline int bpfnet_ep_arp(struct __sk_buff* skb, const struct bpfnet_endpoint* ep,
                                         struct bpfnet_pkt_info* info) {
    if (bpfnet_linearize(skb, sizeof(struct ethhdr) + sizeof(struct bpfnet_arp_eth_ipv4)) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct ethhdr* eth = data;
    struct bpfnet_arp_eth_ipv4* arp = (void*)(eth + 1);
    if ((void*)(arp + 1) > data_end) return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    if (!bpfnet_arp_is_eth_ipv4(arp)) return BPFNET_DROP(BPFNET_DROP_MALFORMED);

    const __be32 spa = arp->spa;
    const __be32 tpa = arp->tpa;
    info->saddr = spa;
    info->daddr = tpa;
    if (!bpfnet_mac_eq(arp->sha, ep->mac)) return BPFNET_DROP(BPFNET_DROP_SPOOFED_MAC);
    /* Sender address 0.0.0.0 is an address probe (RFC 5227), which any endpoint may send. */
    if (spa != ep->ip && spa != 0) return BPFNET_DROP(BPFNET_DROP_SPOOFED_IP);

    /* Replies, gratuitous ARP and requests the program cannot answer go on to the bridge. */
    if (arp->op != bpf_htons(BPFNET_ARP_OP_REQUEST) || tpa == spa) return TC_ACT_OK;
    __u32 network = ep->network;
    const struct bpfnet_net_info* net = bpf_map_lookup_elem(&bpfnet_net, &network);
    if (!net) return TC_ACT_OK;

    const __u8* answer;
    __u8 remote_mac[ETH_ALEN];
    if (tpa == net->gateway && tpa != 0) {
        answer = net->gateway_mac;
    } else {
        struct bpfnet_ep_key key = {.network = network, .ip = tpa};
        const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &key);
        if (dest) {
            /* Never answer an endpoint about itself: a probe for its own address must stay
             * unanswered, or it would think the address is taken. */
            if (dest->ifindex == skb->ifindex) return TC_ACT_OK;
            answer = dest->mac;
        } else {
            /* An endpoint of the overlay on another host: answered here, so no ARP broadcast
             * ever crosses the underlay. */
            const struct bpfnet_tunnel_dest* remote = bpfnet_remote_endpoint(network, tpa);
            if (!remote) return TC_ACT_OK;
            /* Copied out after the check: clang would otherwise compute &remote->mac before it,
             * which the verifier refuses on a pointer that may be null. */
            bpfnet_mac_copy(remote_mac, remote->mac);
            answer = remote_mac;
        }
    }
    bpfnet_arp_make_reply(eth, arp, answer);
    return bpfnet_back_to_sender(skb);
}

static __always_inline int bpfnet_ep_ipv4(struct __sk_buff* skb, const struct bpfnet_endpoint* ep,
                                          struct bpfnet_pkt_info* info) {
    if (bpfnet_linearize(skb, sizeof(struct ethhdr) + sizeof(struct iphdr)) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct iphdr* iph = data + sizeof(struct ethhdr);
    if ((void*)(iph + 1) > data_end) return BPFNET_DROP(BPFNET_DROP_MALFORMED);

    const __be32 saddr = iph->saddr;
    const __be32 daddr = iph->daddr;
    const __u32 hdr_len = bpfnet_ipv4_hdr_len(iph);
    const int later_fragment = bpfnet_ipv4_is_later_fragment(iph);
    info->saddr = saddr;
    info->daddr = daddr;
    info->protocol = iph->protocol;
    if (iph->version != 4 || hdr_len < sizeof(struct iphdr))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    /* Options: the whole header must be there too. This may pull, so iph is not used after it. */
    if (hdr_len > sizeof(struct iphdr) &&
        bpfnet_linearize(skb, sizeof(struct ethhdr) + hdr_len) != 0)
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    if (!later_fragment) info->l4_off = sizeof(struct ethhdr) + hdr_len;

    if (saddr != ep->ip) return BPFNET_DROP(BPFNET_DROP_SPOOFED_IP);
    /* Broadcast and multicast are the bridge's business (it floods them). */
    if (bpfnet_mac_is_multicast(info->dmac)) return TC_ACT_OK;

    __u32 network = ep->network;
    const struct bpfnet_net_info* net = bpf_map_lookup_elem(&bpfnet_net, &network);
    if (!net) return TC_ACT_OK;

    if (bpfnet_ipv4_in_subnet(daddr, net->subnet, net->prefix_len)) {
        struct bpfnet_ep_key key = {.network = network, .ip = daddr};
        const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &key);
        if (!dest) {
            /* An overlay endpoint on another host goes through the tunnel; anything else (the
             * gateway, an address nobody holds) to the bridge. */
            const struct bpfnet_tunnel_dest* remote = bpfnet_remote_endpoint(network, daddr);
            if (!remote) return TC_ACT_OK;
            if (!(net->flags & BPFNET_NET_ICC)) return BPFNET_DROP(BPFNET_DROP_ICC_DISABLED);
            return bpfnet_encap(skb, remote, info);
        }
        if (!(net->flags & BPFNET_NET_ICC)) return BPFNET_DROP(BPFNET_DROP_ICC_DISABLED);

        /* The sender's neighbour entry may be stale (address moved to a new endpoint): deliver
         * with the MAC the destination will accept. Only the MAC changes, so no checksum work. */
        if (!bpfnet_mac_eq(info->dmac, dest->mac) &&
            bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), dest->mac, ETH_ALEN, 0) != 0)
            return BPFNET_DROP(BPFNET_DROP_MALFORMED);

        bpfnet_ep_count_to(dest->ifindex, skb->len);
        return bpf_redirect_peer(dest->ifindex, 0);
    }

    if (net->flags & BPFNET_NET_INTERNAL) return BPFNET_DROP(BPFNET_DROP_INTERNAL);
    struct bpfnet_lpm_v4 lpm = {.prefix_len = 32, .addr = daddr};
    const __u32* other = bpf_map_lookup_elem(&bpfnet_subnets, &lpm);
    if (other && *other == BPFNET_SUBNET_OTHER_BRIDGE) {
        /* Another container network (docker0, virbr0, ...). Its bridge's own address is one of
         * the host's, which endpoints may reach as they may every host address. */
        if (!bpf_map_lookup_elem(&bpfnet_local_ip, &daddr))
            return BPFNET_DROP(BPFNET_DROP_OTHER_BRIDGE);
    } else if (other && *other != network) {
        return BPFNET_DROP(BPFNET_DROP_CROSS_NETWORK);
    }
    /* A packet of a known flow (an answer to a client of a published port, an egress flow)
     * leaves the way the flow does; a new flow to the outside is routed here if it can be. */
    struct bpfnet_flow f = {};
    const int parsed = later_fragment ? BPFNET_PARSE_FRAG : bpfnet_parse_flow(skb, &f);
    if (parsed == BPFNET_PARSE_FRAG) {
        const int sent = bpfnet_ep_fragment_out(skb);
        if (sent != BPFNET_CONTINUE) return sent;
    }
    const int verdict = bpfnet_ep_reply_nat(skb, &f, parsed);
    if (verdict != BPFNET_CONTINUE) return verdict;
    return bpfnet_ep_egress(skb, ep, net, &f, parsed);
}

static __always_inline int bpfnet_ep_ingress(struct __sk_buff* skb, struct bpfnet_pkt_info* info) {
    __u32 ifindex = skb->ifindex;

    /* Read the Ethernet header before anything can fail, so every drop event carries the MACs.
     * At TC the Ethernet header is always in the linear part. */
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct ethhdr* eth = data;
    const int have_eth = (void*)(eth + 1) <= data_end;
    if (have_eth) {
        bpfnet_mac_copy(info->smac, eth->h_source);
        bpfnet_mac_copy(info->dmac, eth->h_dest);
        info->eth_proto = eth->h_proto;
    }

    const struct bpfnet_endpoint* ep = bpf_map_lookup_elem(&bpfnet_ep_by_if, &ifindex);
    if (!ep) return BPFNET_DROP(BPFNET_DROP_UNKNOWN_ENDPOINT);
    struct bpfnet_ep_stats* from = bpfnet_ep_stats_of(ifindex);
    if (from) {
        from->from_packets++;
        from->from_bytes += skb->len;
    }

    if (!have_eth) return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    if (!bpfnet_mac_eq(info->smac, ep->mac)) return BPFNET_DROP(BPFNET_DROP_SPOOFED_MAC);
    /* The receive path moves an outer 802.1Q/802.1ad tag into skb metadata before TC ingress
     * runs, so a tagged frame usually shows up as vlan_present with the inner EtherType; a tag
     * still in the frame (the inner one of Q-in-Q, or BPF_PROG_TEST_RUN input) is caught too. */
    if (skb->vlan_present) {
        info->eth_proto = (__be16)skb->vlan_proto;
        return BPFNET_DROP(BPFNET_DROP_VLAN_TAGGED);
    }
    if (bpfnet_eth_proto_is_vlan(info->eth_proto)) return BPFNET_DROP(BPFNET_DROP_VLAN_TAGGED);

    if (info->eth_proto == bpf_htons(ETH_P_ARP)) return bpfnet_ep_arp(skb, ep, info);
    if (info->eth_proto == bpf_htons(ETH_P_IP)) return bpfnet_ep_ipv4(skb, ep, info);
    return TC_ACT_OK; /* IPv6 and everything else: the bridge's business */
}

#endif /* BPFNET_BPF_LIB_ENDPOINT_H */

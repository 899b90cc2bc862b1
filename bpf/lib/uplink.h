/* Published ports reached from outside, at TC ingress of an uplink (a device that carries the
 * host's outside traffic: the default route's device, or what --uplink names).
 *
 * A TCP/UDP/SCTP packet to a published port on one of the host's addresses starts a flow: two
 * conntrack entries (lib/conntrack.h) record where it goes (IN) and how the answers go back
 * (REPLY, used by the endpoint program, lib/reply_nat.h). Every packet of the flow is DNATed to
 * the endpoint, gets one hop less, the gateway's and the endpoint's MACs, and is redirected into
 * the endpoint's sandbox with bpf_redirect_peer: no bridge, no routing, no netfilter. ICMP errors
 * about the flow's replies (a router's "fragmentation needed", say) are translated the same way.
 *
 * Everything else is left to the host (TC_ACT_OK): traffic for the host itself, for ports that are
 * not published, answers to the host's own connections from a published port (lib/host_ct.h),
 * fragments (the kernel NAT, which stays installed, reassembles and translates them), SCTP to
 * another container port (CRC32c), packets whose TTL runs out. Nothing is dropped here except a
 * packet the program already started to rewrite and could not finish. */
#ifndef BPFNET_BPF_LIB_UPLINK_H
#define BPFNET_BPF_LIB_UPLINK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/endpoint_maps.h"
#include "lib/ep_stats.h"
#include "lib/eth.h"
#include "lib/host_ct.h"
#include "lib/nat.h"
#include "lib/svc_maps.h"

/* The endpoint a published port leads to: an exact host address first, then "any address" if the
 * destination is one of the host's. */
static __always_inline const struct bpfnet_svc_target* bpfnet_published(__be32 daddr, __be16 dport,
                                                                        __u8 proto) {
    struct bpfnet_svc_key key = {.host_ip = daddr, .port = dport, .proto = proto};
    const struct bpfnet_svc_target* target = bpf_map_lookup_elem(&bpfnet_pub_port, &key);
    if (target) return target;
    if (!bpf_map_lookup_elem(&bpfnet_local_ip, &daddr)) return 0;
    key.host_ip = 0;
    return bpf_map_lookup_elem(&bpfnet_pub_port, &key);
}

/* An address inside one of the BPF networks' subnets whose gateway mode keeps the outside from
 * routing to it (nat, the default). Other networks' addresses, and those of networks that allow
 * direct routing, are left to the host's firewall. */
static __always_inline int bpfnet_direct_routing_blocked(__be32 addr) {
    struct bpfnet_lpm_v4 key = {.prefix_len = 32, .addr = addr};
    const __u32* network = bpf_map_lookup_elem(&bpfnet_subnets, &key);
    if (!network || *network == BPFNET_SUBNET_OTHER_BRIDGE) return 0;
    __u32 id = *network;
    const struct bpfnet_net_info* net = bpf_map_lookup_elem(&bpfnet_net, &id);
    return !net || !(net->flags & BPFNET_NET_DIRECT_ROUTING);
}

/* The frame's Ethernet addresses: replies go back to where the request came from. */
struct bpfnet_uplink_macs {
    __u8 local[ETH_ALEN];  /* the uplink's (the request's destination MAC) */
    __u8 remote[ETH_ALEN]; /* the client's or the last router's (its source MAC) */
};

/* The REPLY entry of a flow whose packet `f` (client -> host:port) came in on uplink `ifindex`
 * with `macs`, and is translated to ep_addr:ep_port on `network`. */
static __always_inline void bpfnet_uplink_reply_entry(__u32 ifindex, const struct bpfnet_flow* f,
                                                      __be32 ep_addr, __be16 ep_port, __u32 network,
                                                      __u16 flags, __u64 expires,
                                                      const struct bpfnet_uplink_macs* macs,
                                                      struct bpfnet_ct_key* reply_key,
                                                      struct bpfnet_ct_entry* reply) {
    *reply_key =
        bpfnet_ct_key_of(ep_addr, f->saddr, ep_port, f->sport, f->proto, BPFNET_CT_DIR_REPLY);
    __builtin_memset(reply, 0, sizeof(*reply));
    reply->expires_ns = expires;
    reply->nat_addr = f->daddr;
    reply->nat_port = f->dport;
    reply->flags = flags;
    reply->ifindex = ifindex;
    reply->network = network;
    bpfnet_mac_copy(reply->smac, macs->local);
    bpfnet_mac_copy(reply->dmac, macs->remote);
}

/* A live flow's packet refreshed its IN entry `in` and found the REPLY entry gone: the LRU evicts
 * entries, not flows, and takes the REPLY entry of a flow with rare answers first. Without it the
 * endpoint's answers would leave untranslated (the kernel NAT has no state for a flow that went
 * around netfilter) while the client's packets keep the IN entry alive, so the flow would never
 * recover. Rebuilt from the IN entry and the packet (NOEXIST: a concurrent one stays). */
static __always_inline void bpfnet_uplink_restore_reply(__u32 ifindex, const struct bpfnet_flow* f,
                                                        const struct bpfnet_ct_entry* in,
                                                        const struct bpfnet_uplink_macs* macs) {
    struct bpfnet_ct_key reply_key;
    struct bpfnet_ct_entry reply;
    bpfnet_uplink_reply_entry(ifindex, f, in->nat_addr, in->nat_port, in->network, in->flags,
                              in->expires_ns, macs, &reply_key, &reply);
    bpf_map_update_elem(&bpfnet_ct, &reply_key, &reply, BPF_NOEXIST);
}

/* Creates both entries of a new flow to the published port `svc`; returns the IN entry, or 0 if
 * BPF cannot translate it. `ifindex` is the uplink's, `len` the frame's; shared by the TC and XDP
 * programs, which have checked that the packet does not answer a connection of the host's
 * (lib/host_ct.h). */
static __always_inline struct bpfnet_ct_entry* bpfnet_uplink_new_flow(
    __u32 ifindex, __u32 len, const struct bpfnet_flow* f, const struct bpfnet_svc_target* svc,
    const struct bpfnet_ct_key* key, const struct bpfnet_uplink_macs* macs, __u64 now) {
    const __be32 ep_addr = svc->ip;
    const __be16 ep_port = svc->port;
    __u32 network = svc->network;
    if (f->proto == IPPROTO_SCTP && ep_port != f->dport) {
        bpfnet_nat_count(BPFNET_NAT_PASS_SCTP, len);
        return 0;
    }
    struct bpfnet_ep_key ep_key = {.network = network, .ip = ep_addr};
    const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &ep_key);
    const struct bpfnet_net_info* net = bpf_map_lookup_elem(&bpfnet_net, &network);
    if (!dest || !net) return 0; /* not on a BPF network: the kernel NAT serves it */

    __u16 flags = (dest->flags & BPFNET_EP_F_XDP_TARGET) ? BPFNET_CT_F_XDP : 0;
    if (f->proto == IPPROTO_TCP) {
        if ((f->tcp_flags & (BPFNET_TCP_SYN | BPFNET_TCP_ACK)) == BPFNET_TCP_SYN)
            flags |= BPFNET_CT_F_SYN;
        flags |= bpfnet_ct_tcp_flags(f->tcp_flags, 1);
    }
    const __u64 expires = now + bpfnet_ct_lifetime_ns(f->proto, flags);
    struct bpfnet_ct_entry in = {
        .expires_ns = expires,
        .packets = 1,
        .bytes = len,
        .nat_addr = ep_addr,
        .nat_port = ep_port,
        .flags = flags,
        .ifindex = dest->ifindex,
        .network = network,
    };
    bpfnet_mac_copy(in.smac, net->gateway_mac);
    bpfnet_mac_copy(in.dmac, dest->mac);
    struct bpfnet_ct_key reply_key;
    struct bpfnet_ct_entry reply;
    bpfnet_uplink_reply_entry(ifindex, f, ep_addr, ep_port, network, flags, expires, macs,
                              &reply_key, &reply);
    /* REPLY first: once the IN entry exists packets flow, and their answers must find theirs.
     * NOEXIST: a live flow may hold the key already (the same client port reaching the container
     * port through another published port, or an egress flow of the endpoint's); its answers
     * would go out under this flow's port. The kernel's NAT refuses such a clash too. */
    if (bpf_map_update_elem(&bpfnet_ct, &reply_key, &reply, BPF_NOEXIST) != 0) {
        /* The same flow's own entry (its IN entry was evicted or died first) is taken over. */
        const struct bpfnet_ct_entry* held = bpf_map_lookup_elem(&bpfnet_ct, &reply_key);
        const int syn = (flags & BPFNET_CT_F_SYN) != 0;
        const int other_flow = held && (held->nat_addr != f->daddr || held->nat_port != f->dport ||
                                        (held->flags & BPFNET_CT_F_EGRESS));
        if (other_flow && bpfnet_ct_alive(held, now) && !(syn && bpfnet_ct_closed(held))) {
            bpfnet_nat_count(BPFNET_NAT_CT_FAILED, len);
            return 0;
        }
        if (bpf_map_update_elem(&bpfnet_ct, &reply_key, &reply, BPF_ANY) != 0) {
            bpfnet_nat_count(BPFNET_NAT_CT_FAILED, len);
            return 0;
        }
    }
    if (bpf_map_update_elem(&bpfnet_ct, key, &in, BPF_ANY) != 0) {
        bpf_map_delete_elem(&bpfnet_ct, &reply_key);
        bpfnet_nat_count(BPFNET_NAT_CT_FAILED, len);
        return 0;
    }
    bpfnet_nat_count(BPFNET_NAT_DNAT_NEW, len);
    return bpf_map_lookup_elem(&bpfnet_ct, key);
}

/* An ICMP error about one of the flow's replies (host:port -> client): the IN entry of that flow
 * says which endpoint it is for. */
static __always_inline int bpfnet_uplink_icmp(struct __sk_buff* skb,
                                              const struct bpfnet_flow* outer,
                                              struct bpfnet_pkt_info* info) {
    struct bpfnet_flow inner = {};
    if (bpfnet_parse_icmp_error(skb, outer, &inner) != 0) return TC_ACT_OK;
    if (outer->daddr != inner.saddr) return TC_ACT_OK;
    struct bpfnet_ct_key key = bpfnet_ct_key_of(inner.daddr, inner.saddr, inner.dport, inner.sport,
                                                inner.proto, BPFNET_CT_DIR_IN);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    if (!e || !bpfnet_ct_alive(e, bpf_ktime_get_ns()) || outer->ttl <= 1) return TC_ACT_OK;
    struct bpfnet_ct_nat ep;
    bpfnet_ct_nat_of(e, &ep);

    if (bpfnet_nat_icmp_error(skb, outer, &inner, 1, ep.addr, ep.port) ||
        bpfnet_forward_as(skb, outer->ttl, outer->proto, ep.smac, ep.dmac))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_ICMP_IN, skb->len);
    bpfnet_ep_count_to(ep.ifindex, skb->len);
    return bpf_redirect_peer(ep.ifindex, 0);
}

/* The counter of a packet that arrived on an uplink for flow `e`. */
static __always_inline __u32 bpfnet_uplink_in_counter(const struct bpfnet_ct_entry* e) {
    return (e->flags & BPFNET_CT_F_EGRESS) ? BPFNET_NAT_EGRESS_REPLY : BPFNET_NAT_DNAT;
}

/* Translates a packet of a known flow (`e`, its IN entry, alive) towards the endpoint and hands
 * it to the endpoint's sandbox. */
static __always_inline int bpfnet_uplink_to_endpoint(struct __sk_buff* skb,
                                                     const struct bpfnet_flow* f,
                                                     const struct bpfnet_ct_entry* e) {
    const __u32 counter = bpfnet_uplink_in_counter(e);
    struct bpfnet_ct_nat ep;
    bpfnet_ct_nat_of(e, &ep);
    if (bpfnet_nat_flow(skb, f, 1, ep.addr, ep.port) ||
        bpfnet_forward_as(skb, f->ttl, f->proto, ep.smac, ep.dmac))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(counter, skb->len);
    bpfnet_ep_count_to(ep.ifindex, skb->len);
    return bpf_redirect_peer(ep.ifindex, 0);
}

/* An ICMP echo reply to an endpoint's ping (an egress flow); BPFNET_CONTINUE if it is none. */
static __always_inline int bpfnet_uplink_echo_reply(struct __sk_buff* skb, struct bpfnet_flow* f) {
    if (bpfnet_parse_icmp_echo(skb, f, BPFNET_ICMP_ECHOREPLY) != 0 || f->ttl <= 1)
        return BPFNET_CONTINUE;
    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f->saddr, f->daddr, f->sport, f->dport, f->proto, BPFNET_CT_DIR_IN);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const __u64 now = bpf_ktime_get_ns();
    if (!e || !bpfnet_ct_alive(e, now)) return BPFNET_CONTINUE;
    bpfnet_ct_touch(&key, e, bpfnet_ct_packet_flags(e, f->proto, 0, 1), skb->len, now);
    return bpfnet_uplink_to_endpoint(skb, f, e);
}

static __always_inline int bpfnet_uplink_ingress(struct __sk_buff* skb,
                                                 struct bpfnet_pkt_info* info) {
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > data_end) return TC_ACT_OK;
    /* Tagged frames belong to VLAN devices on top of the uplink, which have their own hook. */
    if (eth->h_proto != bpf_htons(ETH_P_IP) || skb->vlan_present) return TC_ACT_OK;
    if (bpfnet_mac_is_multicast(eth->h_dest)) return TC_ACT_OK;
    struct bpfnet_uplink_macs macs;
    bpfnet_mac_copy(macs.local, eth->h_dest);
    bpfnet_mac_copy(macs.remote, eth->h_source);
    bpfnet_mac_copy(info->smac, eth->h_source);
    bpfnet_mac_copy(info->dmac, eth->h_dest);
    info->eth_proto = eth->h_proto;

    struct bpfnet_flow f = {};
    const int parsed = bpfnet_parse_flow(skb, &f);
    info->saddr = f.saddr;
    info->daddr = f.daddr;
    info->protocol = f.proto;
    if (parsed == BPFNET_PARSE_ICMP) {
        const int verdict = bpfnet_uplink_echo_reply(skb, &f);
        if (verdict != BPFNET_CONTINUE) return verdict;
    }
    /* Outside reaches containers through published ports (the host's addresses) only: a packet
     * routed to a container's own address is dropped, like Docker's direct-routing block, unless
     * it answers a flow the container started (checked below: egress of a network that does not
     * masquerade keeps the container's address). */
    const int blocked = f.daddr && bpfnet_direct_routing_blocked(f.daddr);
    if (parsed == BPFNET_PARSE_FRAG) {
        if (blocked) return BPFNET_DROP(BPFNET_DROP_UNPUBLISHED);
        bpfnet_nat_count(BPFNET_NAT_PASS_FRAG, skb->len);
        return TC_ACT_OK;
    }
    if (parsed == BPFNET_PARSE_ICMP) {
        const int verdict = bpfnet_uplink_icmp(skb, &f, info);
        if (verdict == TC_ACT_OK && blocked) return BPFNET_DROP(BPFNET_DROP_UNPUBLISHED);
        return verdict;
    }
    if (parsed != BPFNET_PARSE_FLOW)
        return blocked ? BPFNET_DROP(BPFNET_DROP_UNPUBLISHED) : TC_ACT_OK;
    info->l4_off = f.l4_off;

    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f.saddr, f.daddr, f.sport, f.dport, f.proto, BPFNET_CT_DIR_IN);
    const __u64 now = bpf_ktime_get_ns();
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const int syn_only = f.proto == IPPROTO_TCP &&
                         (f.tcp_flags & (BPFNET_TCP_SYN | BPFNET_TCP_ACK)) == BPFNET_TCP_SYN;
    const int known = e && bpfnet_ct_alive(e, now) && !(syn_only && bpfnet_ct_closed(e));
    if (blocked && !known) return BPFNET_DROP(BPFNET_DROP_UNPUBLISHED);
    /* A packet that cannot be forwarded is the stack's (it is for a host address, so the kernel
     * NAT translates it and the forwarding path answers "time exceeded"). */
    if (f.ttl <= 1) {
        bpfnet_nat_count(BPFNET_NAT_TTL_EXPIRED, skb->len);
        return TC_ACT_OK;
    }

    if (known) {
        if (bpfnet_ct_touch(&key, e, bpfnet_ct_packet_flags(e, f.proto, f.tcp_flags, 1), skb->len,
                            now))
            bpfnet_uplink_restore_reply(skb->ifindex, &f, e, &macs);
    } else {
        /* A TCP flow starts with a SYN. Anything else without a flow is the stack's: an answer
         * to a connection the host masqueraded (its port may equal a published one), or a flow
         * BPF lost (LRU eviction, a replaced map), which the kernel NAT picks up. */
        if (f.proto == IPPROTO_TCP && !syn_only) return TC_ACT_OK;
        const struct bpfnet_svc_target* svc = bpfnet_published(f.daddr, f.dport, f.proto);
        if (!svc) return TC_ACT_OK;
        /* A UDP answer (or a simultaneous open) to the host's own connection from that port. */
        if (bpfnet_host_started_skb(skb, &f)) {
            bpfnet_nat_count(BPFNET_NAT_PASS_HOST_FLOW, skb->len);
            return TC_ACT_OK;
        }
        e = bpfnet_uplink_new_flow(skb->ifindex, skb->len, &f, svc, &key, &macs, now);
        if (!e) return TC_ACT_OK;
    }
    return bpfnet_uplink_to_endpoint(skb, &f, e);
}

#endif /* BPFNET_BPF_LIB_UPLINK_H */

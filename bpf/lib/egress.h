/* Egress in BPF: the first packet of a flow an endpoint starts towards a destination outside every
 * bpfnet network (the caller has checked that, and that no flow has the packet yet,
 * lib/reply_nat.h).
 *
 * The packet is routed with bpf_fib_lookup as the kernel would forward it from the endpoint's
 * veth. If the route leads out of an uplink (bpfnet_uplinks), the flow gets its two conntrack
 * entries (BPFNET_CT_F_EGRESS): the REPLY entry, keyed as the endpoint sends, takes its packets
 * out of the uplink (lib/reply_nat.h); the IN entry, keyed as the answers arrive, takes those
 * back to the endpoint (lib/uplink.h, lib/uplink_xdp.h). A masquerading network's flow is
 * translated to the uplink's address and a port of its range, chosen as Cilium's lib/nat.h does:
 * the endpoint's own port if it is in the range, else random ones, each claimed with a
 * BPF_NOEXIST insert of the IN entry, so two flows never share the key their answers come back
 * under (a flow to a published port holds the same kind of key, so neither can take the other's).
 * A network that does not masquerade keeps the addresses and ports; its flow still has both
 * entries, so the answers bypass the stack too.
 *
 * What BPF leaves to the host's stack (TC_ACT_OK: the bridge, routing, netfilter and its
 * masquerade, as without BPF), counted as BPFNET_NAT_EGRESS_STACK or BPFNET_NAT_SNAT_EXHAUSTED:
 * fragments, protocols other than TCP, UDP and ICMP echo, TTL 1, destinations the host itself
 * holds, routes that do not lead out of an uplink (or that the kernel would not forward: no route,
 * a blackhole, forwarding off, a packet above the device's MTU), a TCP segment without a flow that
 * is not a SYN (a connection the kernel's conntrack has), no free port. */
#ifndef BPFNET_BPF_LIB_EGRESS_H
#define BPFNET_BPF_LIB_EGRESS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/egress_maps.h"
#include "lib/endpoint_maps.h"
#include "lib/nat.h"
#include "lib/reply_nat.h"
#include "lib/svc_maps.h"

/* Ports tried for one new flow before it is left to the kernel's masquerade. */
#define BPFNET_SNAT_RETRIES 32

static __always_inline int bpfnet_egress_to_stack(struct __sk_buff* skb, __u32 counter) {
    bpfnet_nat_count(counter, skb->len);
    return TC_ACT_OK;
}

/* One new flow's search for a port (bpfnet_egress_claim). */
struct bpfnet_claim {
    struct bpfnet_ct_key* in_key;
    const struct bpfnet_ct_entry* in;
    __u64 now;
    __be16 own;
    __u16 min, max;
    __u8 translate, syn;
    __u8 keep_own; /* the endpoint's own port may be tried first */
    __u8 pad;
    __be16 port; /* the result, 0 until one is claimed */
};

/* Attempt `i`: the endpoint's own port first where it may be kept (always, untranslated), then
 * random ones of the range. Returns 1 (stop) once a port is claimed. */
static long bpfnet_claim_try(__u32 i, void* ctx) {
    struct bpfnet_claim* c = ctx;
    __be16 port = c->own;
    if (c->translate && (i != 0 || !c->keep_own))
        port = bpf_htons(c->min + (__u16)(bpf_get_prandom_u32() % ((__u32)c->max - c->min + 1)));
    c->in_key->dport = port;
    if (bpf_map_update_elem(&bpfnet_ct, c->in_key, c->in, BPF_NOEXIST) == 0) {
        c->port = port;
        return 1;
    }
    /* A closed flow's port is taken over only by a new connection of the same endpoint socket
     * (its initial sequence number follows the old one's, so the remote side's TIME_WAIT accepts
     * it); another endpoint's would be taken for a stray segment of the old connection. */
    const struct bpfnet_ct_entry* old = bpf_map_lookup_elem(&bpfnet_ct, c->in_key);
    const int same_socket = old && old->nat_addr == c->in->nat_addr &&
                            old->nat_port == c->in->nat_port && old->network == c->in->network;
    if (old &&
        (!bpfnet_ct_alive(old, c->now) || (c->syn && same_socket && bpfnet_ct_closed(old))) &&
        bpf_map_update_elem(&bpfnet_ct, c->in_key, c->in, BPF_EXIST) == 0) {
        c->port = port;
        return 1;
    }
    return 0;
}

/* Claims the IN key of a new flow: `in_key` with its destination port (the answers' port) set to
 * a free one of [min, max], or only `own` when `translate` is 0. An entry of that key that is
 * dead, or closed when `syn` opens a new connection from the same endpoint socket, is taken over.
 * Returns the port (network byte order), or 0 if none was free. bpf_loop: the verifier checks one
 * attempt, not all of them. */
static __always_inline __be16 bpfnet_egress_claim(struct bpfnet_ct_key* in_key,
                                                  const struct bpfnet_ct_entry* in, __be16 own,
                                                  int translate, int keep_own, int syn, __u16 min,
                                                  __u16 max, __u64 now) {
    struct bpfnet_claim c = {.in_key = in_key,
                             .in = in,
                             .now = now,
                             .own = own,
                             .min = min,
                             .max = max,
                             .translate = translate != 0,
                             .syn = syn != 0,
                             .keep_own = keep_own != 0};
    bpf_loop(translate ? BPFNET_SNAT_RETRIES : 1, bpfnet_claim_try, &c, 0);
    return c.port;
}

/* Whether a socket of the host holds (or listens on) what the answers of a flow translated to
 * out_addr:port would arrive as: remote -> out_addr:port. Such a port is not the flow's to keep. */
static __always_inline int bpfnet_host_socket_has(struct __sk_buff* skb,
                                                  const struct bpfnet_flow* f, __be32 out_addr,
                                                  __be16 port) {
    struct bpf_sock_tuple tuple = {
        .ipv4 = {.saddr = f->daddr, .daddr = out_addr, .sport = f->dport, .dport = port}};
    struct bpf_sock* sk = 0;
    if (f->proto == IPPROTO_TCP)
        sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
    else if (f->proto == IPPROTO_UDP)
        sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
    if (!sk) return 0;
    bpf_sk_release(sk);
    return 1;
}

/* Routes and, if it leads out of an uplink, starts the egress flow of packet `f` (TCP, UDP or an
 * ICMP echo request parsed by bpfnet_parse_flow / bpfnet_parse_icmp_echo). */
static __always_inline int bpfnet_ep_egress(struct __sk_buff* skb, const struct bpfnet_endpoint* ep,
                                            const struct bpfnet_net_info* net,
                                            struct bpfnet_flow* f, int parsed) {
    if (!(net->flags & BPFNET_NET_EGRESS)) return TC_ACT_OK;
    if (parsed == BPFNET_PARSE_FRAG) return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    if (parsed == BPFNET_PARSE_ICMP) {
        /* An echo request: reply_nat parsed it (f->sport is its identifier); errors and other
         * ICMP the endpoint starts are the stack's. */
        if (bpfnet_parse_icmp_echo(skb, f, BPFNET_ICMP_ECHO) != 0)
            return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    } else if (parsed != BPFNET_PARSE_FLOW || f->proto == IPPROTO_SCTP) {
        /* SCTP's CRC32c cannot follow a port change in BPF. */
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    }
    __be32 daddr = f->daddr;
    if (f->ttl <= 1 || bpf_map_lookup_elem(&bpfnet_local_ip, &daddr))
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    const int syn_only = f->proto == IPPROTO_TCP &&
                         (f->tcp_flags & (BPFNET_TCP_SYN | BPFNET_TCP_ACK)) == BPFNET_TCP_SYN;
    if (f->proto == IPPROTO_TCP && !syn_only)
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);

    __u8 tos = 0;
    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, tos), &tos, 1);
    struct bpf_fib_lookup fib = {
        .family = BPFNET_AF_INET,
        .l4_protocol = f->proto,
        .sport = f->sport,
        .dport = f->dport,
        .ifindex = skb->ifindex,
        .tos = tos,
        .ipv4_src = f->saddr,
        .ipv4_dst = f->daddr,
    };
    /* tot_len 0: the kernel checks the MTU on the skb, which knows about GSO. */
    const long routed = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
    if (routed != BPF_FIB_LKUP_RET_SUCCESS && routed != BPF_FIB_LKUP_RET_NO_NEIGH)
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    __u32 out_ifindex = fib.ifindex;
    const struct bpfnet_uplink* uplink = bpf_map_lookup_elem(&bpfnet_uplinks, &out_ifindex);
    if (!uplink) return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);
    const int translate = (net->flags & BPFNET_NET_MASQUERADE) != 0;
    const __be32 out_addr = translate ? uplink->snat_addr : f->saddr;
    const __u16 port_min = uplink->port_min;
    const __u16 port_max = uplink->port_max;
    if (translate && (!out_addr || port_min > port_max))
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_EGRESS_STACK);

    __u16 flags = BPFNET_CT_F_EGRESS;
    if (routed == BPF_FIB_LKUP_RET_NO_NEIGH) flags |= BPFNET_CT_F_NEIGH;
    struct bpfnet_ep_key self = {.network = ep->network, .ip = ep->ip};
    const struct bpfnet_ep_dest* dest = bpf_map_lookup_elem(&bpfnet_ep_by_ip, &self);
    if (dest && (dest->flags & BPFNET_EP_F_XDP_TARGET)) flags |= BPFNET_CT_F_XDP;
    if (syn_only) flags |= BPFNET_CT_F_SYN;
    const __u64 now = bpf_ktime_get_ns();
    const __u64 expires = now + bpfnet_ct_lifetime_ns(f->proto, flags);
    /* The entries are built in a per-CPU scratch slot: with the route lookup and the rest on the
     * stack they would not fit its 512 bytes. */
    __u32 slot = 0;
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct_tmp, &slot);
    if (!e) return bpfnet_egress_to_stack(skb, BPFNET_NAT_CT_FAILED);

    /* IN: the answers, remote -> out_addr:port, go to the endpoint's address and port. */
    __builtin_memset(e, 0, sizeof(*e));
    e->expires_ns = expires;
    e->nat_addr = f->saddr;
    e->nat_port = f->sport;
    e->flags = flags;
    e->ifindex = skb->ifindex;
    e->network = ep->network;
    bpfnet_mac_copy(e->smac, net->gateway_mac);
    bpfnet_mac_copy(e->dmac, ep->mac);
    struct bpfnet_ct_key in_key =
        bpfnet_ct_key_of(f->daddr, out_addr, f->dport, 0, f->proto, BPFNET_CT_DIR_IN);
    /* Like the kernel's masquerade, the endpoint keeps its own port where it can: the remote
     * side then sees one 4-tuple per endpoint connection, and a reused one comes with a higher
     * initial sequence number, which its TIME_WAIT sockets accept (random ports from a small range
     * would hit them). Not where a host socket has that tuple, nor below 1024; the range's ports
     * are kept for flows that cannot keep theirs. */
    const __u16 own = bpf_ntohs(f->sport);
    const int keep_own = (own >= port_min && own <= port_max) ||
                         (f->proto != IPPROTO_ICMP && own >= 1024 &&
                          !bpfnet_host_socket_has(skb, f, out_addr, f->sport));
    const __be16 port = bpfnet_egress_claim(&in_key, e, f->sport, translate, keep_own, syn_only,
                                            port_min, port_max, now);
    if (!port) return bpfnet_egress_to_stack(skb, BPFNET_NAT_SNAT_EXHAUSTED);

    /* REPLY: the endpoint's packets leave as out_addr:port through the uplink. */
    e->nat_addr = out_addr;
    e->nat_port = port;
    e->ifindex = out_ifindex;
    e->nexthop = fib.ipv4_dst; /* the route's gateway, or the destination on a direct route */
    bpfnet_mac_copy(e->smac, fib.smac);
    bpfnet_mac_copy(e->dmac, fib.dmac);
    struct bpfnet_ct_key reply_key =
        bpfnet_ct_key_of(f->saddr, f->daddr, f->sport, f->dport, f->proto, BPFNET_CT_DIR_REPLY);
    /* ANY: a REPLY entry of this key is dead or closed (reply_nat found no live one), and another
     * CPU starting the same flow at the same moment can only be a retransmission. */
    if (bpf_map_update_elem(&bpfnet_ct, &reply_key, e, BPF_ANY) != 0) {
        bpf_map_delete_elem(&bpfnet_ct, &in_key);
        return bpfnet_egress_to_stack(skb, BPFNET_NAT_CT_FAILED);
    }
    bpfnet_nat_count(translate ? BPFNET_NAT_SNAT_NEW : BPFNET_NAT_EGRESS_NEW, skb->len);
    return bpfnet_ep_out(skb, f, e);
}

#endif /* BPFNET_BPF_LIB_EGRESS_H */

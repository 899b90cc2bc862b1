/* What an endpoint sends on a flow conntrack knows, found by its REPLY entry:
 *
 *  - the answers of a published port reached from outside (and ICMP errors about what it
 *    received): the entry the uplink program created gives the host address and port the client
 *    used, the uplink the request came in on and the MACs it came with;
 *  - the packets of an egress flow the endpoint started (lib/egress.h): the entry gives the
 *    uplink's address and the port it was translated to (or the endpoint's own, when the network
 *    does not masquerade), the uplink the route leads out of and the next hop's MACs.
 *
 * The packet is translated and sent straight out of that uplink: no bridge, no routing, no
 * netfilter. (Handing a published port's answer to the bridge instead would not work: the host
 * would see a packet with one of its own addresses as the source arrive from outside, a martian,
 * and drop it.) */
#ifndef BPFNET_BPF_LIB_REPLY_NAT_H
#define BPFNET_BPF_LIB_REPLY_NAT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/nat.h"

#define BPFNET_AF_INET 2 /* <sys/socket.h>'s, which the BPF target lacks */

/* Sends a translated packet out of the flow's uplink: with the MACs the entry recorded, or, when
 * the next hop had no neighbour entry as the flow began, through the kernel's neighbour code. */
static __always_inline int bpfnet_ct_send_out(struct __sk_buff* skb,
                                              const struct bpfnet_ct_nat* out, __u8 ttl,
                                              __u8 proto) {
    if (out->flags & BPFNET_CT_F_NEIGH) {
        if (bpfnet_ipv4_dec_ttl(skb, ttl, proto)) return BPFNET_DROP(BPFNET_DROP_MALFORMED);
        struct bpf_redir_neigh nh = {.nh_family = BPFNET_AF_INET, .ipv4_nh = out->nexthop};
        return bpf_redirect_neigh(out->ifindex, &nh, sizeof(nh), 0);
    }
    if (bpfnet_forward_as(skb, ttl, proto, out->smac, out->dmac))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    return bpf_redirect(out->ifindex, 0);
}

/* Which counter a packet the endpoint sent on a known flow goes to. */
static __always_inline __u32 bpfnet_ep_out_counter(const struct bpfnet_ct_nat* out,
                                                   const struct bpfnet_flow* f) {
    if (!(out->flags & BPFNET_CT_F_EGRESS)) return BPFNET_NAT_REPLY;
    return out->addr == f->saddr && out->port == f->sport ? BPFNET_NAT_EGRESS_ROUTED
                                                          : BPFNET_NAT_SNAT;
}

/* Translates a packet the endpoint sent on flow `e` (its REPLY entry) and sends it out. */
static __always_inline int bpfnet_ep_out(struct __sk_buff* skb, const struct bpfnet_flow* f,
                                         const struct bpfnet_ct_entry* e) {
    struct bpfnet_ct_nat out;
    bpfnet_ct_nat_of(e, &out);
    if (bpfnet_nat_flow(skb, f, 0, out.addr, out.port)) return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(bpfnet_ep_out_counter(&out, f), skb->len);
    return bpfnet_ct_send_out(skb, &out, f->ttl, f->proto);
}

/* An ICMP error the endpoint sends about a packet it received on a known flow (say, port
 * unreachable for UDP): the quoted packet travelled towards the endpoint. */
static __always_inline int bpfnet_ep_icmp_reply_nat(struct __sk_buff* skb,
                                                    const struct bpfnet_flow* outer) {
    struct bpfnet_flow inner = {};
    if (bpfnet_parse_icmp_error(skb, outer, &inner) != 0) return BPFNET_CONTINUE;
    if (outer->saddr != inner.daddr || outer->daddr != inner.saddr) return BPFNET_CONTINUE;
    struct bpfnet_ct_key key = bpfnet_ct_key_of(inner.daddr, inner.saddr, inner.dport, inner.sport,
                                                inner.proto, BPFNET_CT_DIR_REPLY);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    if (!e || !bpfnet_ct_alive(e, bpf_ktime_get_ns()) || outer->ttl <= 1) return BPFNET_CONTINUE;
    struct bpfnet_ct_nat host;
    bpfnet_ct_nat_of(e, &host);

    if (bpfnet_nat_icmp_error(skb, outer, &inner, 0, host.addr, host.port))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_ICMP_OUT, skb->len);
    return bpfnet_ct_send_out(skb, &host, outer->ttl, outer->proto);
}

/* Called for every IPv4 packet an endpoint sends out of its subnet. Returns a TC verdict for a
 * packet of a known flow, BPFNET_DROP(reason) if the translation failed half-way, or
 * BPFNET_CONTINUE. `f` is parsed here and left for the caller. */
static __always_inline int bpfnet_ep_reply_nat(struct __sk_buff* skb, struct bpfnet_flow* f,
                                               int parsed) {
    if (parsed == BPFNET_PARSE_ICMP) {
        if (bpfnet_parse_icmp_echo(skb, f, BPFNET_ICMP_ECHO) != 0)
            return bpfnet_ep_icmp_reply_nat(skb, f);
    } else if (parsed != BPFNET_PARSE_FLOW) {
        return BPFNET_CONTINUE;
    }

    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f->saddr, f->daddr, f->sport, f->dport, f->proto, BPFNET_CT_DIR_REPLY);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const __u64 now = bpf_ktime_get_ns();
    if (!e || !bpfnet_ct_alive(e, now)) return BPFNET_CONTINUE;
    /* The host's stack answers an expiring TTL (time exceeded to the endpoint). */
    if (f->ttl <= 1) return BPFNET_CONTINUE;
    /* A new connection reusing the 4-tuple of a closed egress flow starts a new flow (its port
     * may have to change: the old one's answers may still be under way). */
    const int syn_only = f->proto == IPPROTO_TCP &&
                         (f->tcp_flags & (BPFNET_TCP_SYN | BPFNET_TCP_ACK)) == BPFNET_TCP_SYN;
    if (syn_only && (e->flags & BPFNET_CT_F_EGRESS) && bpfnet_ct_closed(e)) return BPFNET_CONTINUE;

    bpfnet_ct_touch(&key, e, bpfnet_ct_packet_flags(e, f->proto, f->tcp_flags, 0), skb->len, now);
    return bpfnet_ep_out(skb, f, e);
}

#endif /* BPFNET_BPF_LIB_REPLY_NAT_H */

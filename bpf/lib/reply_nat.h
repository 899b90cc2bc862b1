/* The endpoint's side of published ports reached from outside: its answers (and ICMP errors about
 * what it received) carry the endpoint's address and port; the REPLY conntrack entry the uplink
 * program created gives the host address and port the client used, the uplink the request came
 * in on and the MACs it came with. The packet is translated and sent straight out of that
 * uplink: no bridge, no routing, no netfilter. (Handing it to the bridge instead would not work:
 * the host would see a packet with one of its own addresses as the source arrive from outside, a
 * martian, and drop it.) */
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

/* An ICMP error the endpoint sends about a packet it received through a published port
 * (say, port unreachable for UDP): the quoted packet went client -> endpoint. */
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

    if (bpfnet_nat_icmp_error(skb, outer, &inner, 0, host.addr, host.port) ||
        bpfnet_forward_as(skb, outer->ttl, outer->proto, host.smac, host.dmac))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_ICMP_OUT, skb->len);
    return bpf_redirect(host.ifindex, 0);
}

/* Called for every IPv4 packet an endpoint sends out of its subnet. Returns a TC verdict for a
 * translated reply, BPFNET_DROP(reason) if the translation failed half-way, or BPFNET_CONTINUE. */
static __always_inline int bpfnet_ep_reply_nat(struct __sk_buff* skb) {
    struct bpfnet_flow f = {};
    const int parsed = bpfnet_parse_flow(skb, &f);
    if (parsed == BPFNET_PARSE_ICMP) return bpfnet_ep_icmp_reply_nat(skb, &f);
    if (parsed != BPFNET_PARSE_FLOW) return BPFNET_CONTINUE;

    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f.saddr, f.daddr, f.sport, f.dport, f.proto, BPFNET_CT_DIR_REPLY);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const __u64 now = bpf_ktime_get_ns();
    if (!e || !bpfnet_ct_alive(e, now)) return BPFNET_CONTINUE;
    /* The host's stack answers an expiring TTL (time exceeded to the endpoint). */
    if (f.ttl <= 1) return BPFNET_CONTINUE;

    __u16 add_flags = BPFNET_CT_F_REPLIED;
    if (f.proto == IPPROTO_TCP) add_flags |= bpfnet_ct_tcp_flags(f.tcp_flags, 0);
    bpfnet_ct_touch(&key, e, add_flags, skb->len, now);
    struct bpfnet_ct_nat host;
    bpfnet_ct_nat_of(e, &host);

    if (bpfnet_nat_rewrite(skb, &f, 0, host.addr, host.port) ||
        bpfnet_forward_as(skb, f.ttl, f.proto, host.smac, host.dmac))
        return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_REPLY, skb->len);
    return bpf_redirect(host.ifindex, 0);
}

#endif /* BPFNET_BPF_LIB_REPLY_NAT_H */

/* Fragments an endpoint sends on a flow conntrack knows (an answer to a published port's client,
 * an egress flow). The kernel cannot translate them: it never saw the flow (BPF translated its
 * packets), so through the stack they would leave with the container's address and port, which
 * the peer has never heard of.
 *
 * The first fragment carries the L4 header: it is translated as any packet of the flow (its
 * checksum covers the whole datagram, and the incremental update for the new address and port
 * keeps it right for the whole) and leaves the datagram's ports in bpfnet_frag under its
 * identification. Each later fragment finds the ports there, and with them the flow; it gets the
 * new source address (only the IPv4 header changes). What cannot be placed goes to the stack as
 * before (counted as egress-stack by the caller): a later fragment ahead of its first, SCTP (its
 * CRC32c covers the ports and cannot be updated a piece at a time), an expiring TTL. */
#ifndef BPFNET_BPF_LIB_FRAGMENTS_H
#define BPFNET_BPF_LIB_FRAGMENTS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/conntrack.h"
#include "lib/drop.h"
#include "lib/map_defs.h"
#include "lib/nat.h"
#include "lib/reply_nat.h"

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, BPFNET_MAX_FRAG_DATAGRAMS);
    __type(key, struct bpfnet_frag_key);
    __type(value, struct bpfnet_frag_ports);
} bpfnet_frag SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_frag);

/* A later fragment's new source address: the IPv4 header is all it has to change. */
static __always_inline int bpfnet_nat_saddr_only(struct __sk_buff* skb, __be32 old_addr,
                                                 __be32 new_addr) {
    if (old_addr == new_addr) return 0;
    if (bpf_l3_csum_replace(skb, BPFNET_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)))
        return -1;
    return bpf_skb_store_bytes(skb, BPFNET_IP_SADDR_OFF, &new_addr, sizeof(new_addr), 0) ? -1 : 0;
}

/* Translates and sends a fragment of a known flow; BPFNET_CONTINUE when it is none of ours. */
static __always_inline int bpfnet_ep_fragment_out(struct __sk_buff* skb) {
    struct iphdr iph;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)) != 0) return BPFNET_CONTINUE;
    if (iph.protocol != IPPROTO_TCP && iph.protocol != IPPROTO_UDP) return BPFNET_CONTINUE;
    if (iph.ttl <= 1) return BPFNET_CONTINUE; /* the stack answers time exceeded */
    const int first = (iph.frag_off & bpf_htons(BPFNET_IPV4_FRAG_OFFSET_MASK)) == 0;
    struct bpfnet_flow f = {
        .saddr = iph.saddr,
        .daddr = iph.daddr,
        .l4_off = ETH_HLEN + (__u32)iph.ihl * 4,
        .proto = iph.protocol,
        .ttl = iph.ttl,
    };
    struct bpfnet_frag_key fk = {
        .saddr = iph.saddr, .daddr = iph.daddr, .id = iph.id, .proto = iph.protocol};
    if (first) {
        /* The whole fixed L4 header, or its checksum cannot be updated. */
        __u8 l4[sizeof(struct udphdr)];
        if (iph.ihl < 5 || bpf_skb_load_bytes(skb, f.l4_off, l4, sizeof(l4)) != 0)
            return BPFNET_CONTINUE;
        __builtin_memcpy(&f.sport, l4, sizeof(f.sport));
        __builtin_memcpy(&f.dport, l4 + 2, sizeof(f.dport));
        if (f.proto == IPPROTO_TCP) {
            __u8 tcp[20];
            if (bpf_skb_load_bytes(skb, f.l4_off, tcp, sizeof(tcp)) != 0) return BPFNET_CONTINUE;
        }
    } else {
        const struct bpfnet_frag_ports* ports = bpf_map_lookup_elem(&bpfnet_frag, &fk);
        if (!ports) return BPFNET_CONTINUE;
        f.sport = ports->sport;
        f.dport = ports->dport;
    }
    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f.saddr, f.daddr, f.sport, f.dport, f.proto, BPFNET_CT_DIR_REPLY);
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const __u64 now = bpf_ktime_get_ns();
    if (!e || !bpfnet_ct_alive(e, now)) return BPFNET_CONTINUE;
    if (first) {
        struct bpfnet_frag_ports ports = {.sport = f.sport, .dport = f.dport};
        if (bpf_map_update_elem(&bpfnet_frag, &fk, &ports, BPF_ANY) != 0) return BPFNET_CONTINUE;
    }
    bpfnet_ct_touch(&key, e, bpfnet_ct_packet_flags(e, f.proto, 0, 0), skb->len, now);
    struct bpfnet_ct_nat out;
    bpfnet_ct_nat_of(e, &out);
    const int rewritten = first ? bpfnet_nat_rewrite(skb, &f, 0, out.addr, out.port)
                                : bpfnet_nat_saddr_only(skb, f.saddr, out.addr);
    if (rewritten != 0) return BPFNET_DROP(BPFNET_DROP_MALFORMED);
    bpfnet_nat_count(BPFNET_NAT_FRAG_OUT, skb->len);
    return bpfnet_ct_send_out(skb, &out, f.ttl, f.proto);
}

#endif /* BPFNET_BPF_LIB_FRAGMENTS_H */

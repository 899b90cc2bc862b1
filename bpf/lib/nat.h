/* Packet parsing and rewriting for the NAT of published ports (TC programs, IPv4 at ETH_HLEN).
 *
 * Checksums are updated incrementally with the kernel's helpers, which also keep skb->csum right
 * for CHECKSUM_COMPLETE packets (NIC receive) and leave CHECKSUM_PARTIAL ones (a container's
 * TCP/UDP with offload) for the device to finish: an address in the TCP/UDP pseudo-header changes
 * the L4 checksum (BPF_F_PSEUDO_HDR), a port changes it directly, and a UDP checksum of 0 ("none")
 * stays 0 (BPF_F_MARK_MANGLED_0). SCTP's CRC32c covers neither addresses nor anything a BPF program
 * could recompute cheaply, so SCTP is only NATed where the port stays the same.
 *
 * Offsets are runtime values (IPv4 options move the L4 header), which the helpers bounds-check; the
 * parser reads with bpf_skb_load_bytes for the same reason. */
#ifndef BPFNET_BPF_LIB_NAT_H
#define BPFNET_BPF_LIB_NAT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/csum.h"
#include "lib/eth.h"
#include "lib/ipv4.h"

#define BPFNET_IP_OFF ETH_HLEN
#define BPFNET_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define BPFNET_IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define BPFNET_IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define BPFNET_IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define BPFNET_IPV4_MF 0x2000

/* ICMP (RFC 792); <linux/icmp.h> drags in glibc's socket headers, which the BPF target lacks. */
#define BPFNET_ICMP_HDR_LEN 8 /* type, code, checksum, 4 bytes that depend on the type */
#define BPFNET_ICMP_CSUM_OFF 2
#define BPFNET_ICMP_DEST_UNREACH 3
#define BPFNET_ICMP_TIME_EXCEEDED 11
#define BPFNET_ICMP_PARAMETERPROB 12
#define BPFNET_ICMP_ECHOREPLY 0
#define BPFNET_ICMP_ECHO 8
#define BPFNET_ICMP_ID_OFF 4 /* an echo's identifier, after type, code and checksum */

/* A TCP/UDP/SCTP packet's 5-tuple and where its L4 header is. */
struct bpfnet_flow {
    __be32 saddr;
    __be32 daddr;
    __be16 sport;
    __be16 dport;
    __u32 l4_off;
    __u8 proto;
    __u8 tcp_flags; /* TCP only */
    __u8 ttl;
    __u8 pad;
};

enum bpfnet_parse_result {
    BPFNET_PARSE_FLOW = 0, /* TCP, UDP or SCTP with both ports */
    BPFNET_PARSE_ICMP,     /* ICMP; l4_off, addresses and ttl set */
    BPFNET_PARSE_FRAG,     /* a fragment of a larger datagram: no NAT in BPF */
    BPFNET_PARSE_OTHER,    /* not IPv4, malformed, truncated, or another protocol */
};

static __always_inline int bpfnet_l4_has_ports(__u8 proto) {
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* Parses the IPv4 packet after the Ethernet header. The caller has checked the EtherType. */
static __always_inline int bpfnet_parse_flow(struct __sk_buff* skb, struct bpfnet_flow* f) {
    if (bpfnet_linearize(skb, ETH_HLEN + sizeof(struct iphdr)) != 0) return BPFNET_PARSE_OTHER;
    void* data = bpfnet_data(skb);
    void* data_end = bpfnet_data_end(skb);
    struct iphdr* iph = data + ETH_HLEN;
    if ((void*)(iph + 1) > data_end) return BPFNET_PARSE_OTHER;
    const __u32 hdr_len = bpfnet_ipv4_hdr_len(iph);
    if (iph->version != 4 || hdr_len < sizeof(struct iphdr)) return BPFNET_PARSE_OTHER;
    f->saddr = iph->saddr;
    f->daddr = iph->daddr;
    f->proto = iph->protocol;
    f->ttl = iph->ttl;
    f->l4_off = ETH_HLEN + hdr_len;
    /* The packet ends at the IPv4 total length, not at the frame's end: Ethernet pads short
     * frames, and padding must never be read (or rewritten) as header bytes. */
    const __u32 ip_end = ETH_HLEN + bpf_ntohs(iph->tot_len);
    if (iph->frag_off & bpf_htons(BPFNET_IPV4_MF | BPFNET_IPV4_FRAG_OFFSET_MASK))
        return BPFNET_PARSE_FRAG;
    if (f->proto == IPPROTO_ICMP) return BPFNET_PARSE_ICMP;
    if (!bpfnet_l4_has_ports(f->proto)) return BPFNET_PARSE_OTHER;

    const __u32 l4_len = f->proto == IPPROTO_TCP   ? sizeof(struct tcphdr)
                         : f->proto == IPPROTO_UDP ? sizeof(struct udphdr)
                                                   : 4; /* SCTP: the ports */
    if (ip_end < f->l4_off + l4_len) return BPFNET_PARSE_OTHER;
    __be16 ports[2];
    if (bpf_skb_load_bytes(skb, f->l4_off, ports, sizeof(ports)) != 0) return BPFNET_PARSE_OTHER;
    f->sport = ports[0];
    f->dport = ports[1];
    f->tcp_flags = 0;
    if (f->proto == IPPROTO_TCP) {
        /* The whole fixed header must be there, or the checksum update would write past it. */
        __u8 tcp[sizeof(struct tcphdr)];
        if (bpf_skb_load_bytes(skb, f->l4_off, tcp, sizeof(tcp)) != 0) return BPFNET_PARSE_OTHER;
        f->tcp_flags = tcp[13];
    } else if (f->proto == IPPROTO_UDP) {
        __u8 udp[sizeof(struct udphdr)];
        if (bpf_skb_load_bytes(skb, f->l4_off, udp, sizeof(udp)) != 0) return BPFNET_PARSE_OTHER;
    }
    return BPFNET_PARSE_FLOW;
}

/* The packet an ICMP error (destination unreachable, time exceeded, parameter problem) quotes:
 * its IPv4 header (without options) and first 8 bytes. 0, or -1 if it is not such an error about a
 * TCP/UDP/SCTP packet. */
static __always_inline int bpfnet_parse_icmp_error(struct __sk_buff* skb,
                                                   const struct bpfnet_flow* outer,
                                                   struct bpfnet_flow* inner) {
    __u8 type;
    if (bpf_skb_load_bytes(skb, outer->l4_off, &type, 1) != 0) return -1;
    if (type != BPFNET_ICMP_DEST_UNREACH && type != BPFNET_ICMP_TIME_EXCEEDED &&
        type != BPFNET_ICMP_PARAMETERPROB)
        return -1;
    struct iphdr iph;
    const __u32 inner_ip_off = outer->l4_off + BPFNET_ICMP_HDR_LEN;
    if (bpf_skb_load_bytes(skb, inner_ip_off, &iph, sizeof(iph)) != 0) return -1;
    if (iph.version != 4 || iph.ihl != 5 || bpfnet_ipv4_is_later_fragment(&iph)) return -1;
    if (!bpfnet_l4_has_ports(iph.protocol)) return -1;
    __be16 ports[2];
    inner->l4_off = inner_ip_off + sizeof(struct iphdr);
    if (bpf_skb_load_bytes(skb, inner->l4_off, ports, sizeof(ports)) != 0) return -1;
    inner->saddr = iph.saddr;
    inner->daddr = iph.daddr;
    inner->proto = iph.protocol;
    inner->sport = ports[0];
    inner->dport = ports[1];
    inner->ttl = iph.ttl;
    inner->tcp_flags = 0;
    return 0;
}

/* An ICMP echo request or reply (`type`) becomes a flow keyed by its identifier (abi.h, "ICMP
 * echo flow"): a request's identifier is its source port, a reply's its destination port. 0, or
 * -1 if the packet is no such echo. */
static __always_inline int bpfnet_parse_icmp_echo(struct __sk_buff* skb, struct bpfnet_flow* f,
                                                  __u8 type) {
    __u8 hdr[BPFNET_ICMP_HDR_LEN];
    if (bpf_skb_load_bytes(skb, f->l4_off, hdr, sizeof(hdr)) != 0) return -1;
    if (hdr[0] != type || hdr[1] != 0) return -1;
    __be16 id;
    __builtin_memcpy(&id, hdr + BPFNET_ICMP_ID_OFF, sizeof(id));
    f->sport = type == BPFNET_ICMP_ECHO ? id : 0;
    f->dport = type == BPFNET_ICMP_ECHO ? 0 : id;
    return 0;
}

/* Where a TCP/UDP checksum is and how it reacts to changes; 0 for SCTP (none we can update). */
static __always_inline __u32 bpfnet_l4_csum_off(const struct bpfnet_flow* f, __u64* flags) {
    if (f->proto == IPPROTO_TCP) {
        *flags = BPF_F_PSEUDO_HDR;
        return f->l4_off + offsetof(struct tcphdr, check);
    }
    if (f->proto == IPPROTO_UDP) {
        *flags = BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0;
        return f->l4_off + offsetof(struct udphdr, check);
    }
    *flags = 0;
    return 0;
}

/* Rewrites the destination (dst != 0) or source address and port of a TCP/UDP/SCTP packet. */
static __always_inline int bpfnet_nat_rewrite(struct __sk_buff* skb, const struct bpfnet_flow* f,
                                              int dst, __be32 new_addr, __be16 new_port) {
    const __u32 addr_off = dst ? BPFNET_IP_DADDR_OFF : BPFNET_IP_SADDR_OFF;
    const __u32 port_off = f->l4_off + (dst ? 2 : 0);
    const __be32 old_addr = dst ? f->daddr : f->saddr;
    const __be16 old_port = dst ? f->dport : f->sport;
    __u64 csum_flags;
    const __u32 csum_off = bpfnet_l4_csum_off(f, &csum_flags);

    if (old_addr != new_addr) {
        if (csum_off && bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
                                            csum_flags | sizeof(new_addr)) != 0)
            return -1;
        if (bpf_l3_csum_replace(skb, BPFNET_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)))
            return -1;
        if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) != 0) return -1;
    }
    if (old_port != new_port) {
        if (csum_off &&
            bpf_l4_csum_replace(skb, csum_off, old_port, new_port,
                                (csum_flags & BPF_F_MARK_MANGLED_0) | sizeof(new_port)) != 0)
            return -1;
        if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) != 0) return -1;
    }
    return 0;
}

/* Rewrites the destination (dst != 0) or source address of an ICMP echo (parsed by
 * bpfnet_parse_icmp_echo) and its identifier: the ICMP checksum has no pseudo-header, so only the
 * identifier is in it. */
static __always_inline int bpfnet_nat_icmp_echo(struct __sk_buff* skb, const struct bpfnet_flow* f,
                                                int dst, __be32 new_addr, __be16 new_id) {
    const __u32 addr_off = dst ? BPFNET_IP_DADDR_OFF : BPFNET_IP_SADDR_OFF;
    const __be32 old_addr = dst ? f->daddr : f->saddr;
    const __be16 old_id = dst ? f->dport : f->sport;
    if (old_addr != new_addr &&
        (bpf_l3_csum_replace(skb, BPFNET_IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)) ||
         bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0)))
        return -1;
    if (old_id != new_id &&
        (bpf_l4_csum_replace(skb, f->l4_off + BPFNET_ICMP_CSUM_OFF, old_id, new_id,
                             sizeof(new_id)) ||
         bpf_skb_store_bytes(skb, f->l4_off + BPFNET_ICMP_ID_OFF, &new_id, sizeof(new_id), 0)))
        return -1;
    return 0;
}

/* Rewrites the address and port (identifier) of a flow's packet, whichever kind it is. */
static __always_inline int bpfnet_nat_flow(struct __sk_buff* skb, const struct bpfnet_flow* f,
                                           int dst, __be32 new_addr, __be16 new_port) {
    if (f->proto == IPPROTO_ICMP) return bpfnet_nat_icmp_echo(skb, f, dst, new_addr, new_port);
    return bpfnet_nat_rewrite(skb, f, dst, new_addr, new_port);
}

/* Rewrites an ICMP error about a translated flow: the outer destination (outer_dst != 0) or
 * source address, and in the quoted packet, which travelled the other way, the source (or
 * destination) address and port. The quoted header's checksum follows its address, a quoted UDP
 * checksum follows address and port, and the ICMP checksum (no pseudo-header) follows every quoted
 * byte that changed. */
static __always_inline int bpfnet_nat_icmp_error(struct __sk_buff* skb,
                                                 const struct bpfnet_flow* outer,
                                                 const struct bpfnet_flow* inner, int outer_dst,
                                                 __be32 new_addr, __be16 new_port) {
    const __u32 icmp_csum_off = outer->l4_off + BPFNET_ICMP_CSUM_OFF;
    const __u32 inner_ip_off = outer->l4_off + BPFNET_ICMP_HDR_LEN;
    const __u32 inner_csum_off = inner_ip_off + offsetof(struct iphdr, check);
    const __u32 inner_addr_off =
        inner_ip_off + (outer_dst ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));
    const __u32 inner_port_off = inner->l4_off + (outer_dst ? 0 : 2);
    const __be32 old_outer = outer_dst ? outer->daddr : outer->saddr;
    const __be32 old_inner = outer_dst ? inner->saddr : inner->daddr;
    const __be16 old_port = outer_dst ? inner->sport : inner->dport;

    if (bpf_l3_csum_replace(skb, BPFNET_IP_CSUM_OFF, old_outer, new_addr, sizeof(new_addr)) ||
        bpf_skb_store_bytes(skb, outer_dst ? BPFNET_IP_DADDR_OFF : BPFNET_IP_SADDR_OFF, &new_addr,
                            sizeof(new_addr), 0))
        return -1;

    __be16 old_inner_csum, new_inner_csum;
    if (bpf_skb_load_bytes(skb, inner_csum_off, &old_inner_csum, sizeof(old_inner_csum)) ||
        bpf_l3_csum_replace(skb, inner_csum_off, old_inner, new_addr, sizeof(new_addr)) ||
        bpf_skb_load_bytes(skb, inner_csum_off, &new_inner_csum, sizeof(new_inner_csum)) ||
        bpf_skb_store_bytes(skb, inner_addr_off, &new_addr, sizeof(new_addr), 0) ||
        bpf_l4_csum_replace(skb, icmp_csum_off, old_inner, new_addr, sizeof(new_addr)) ||
        bpf_l4_csum_replace(skb, icmp_csum_off, old_inner_csum, new_inner_csum,
                            sizeof(new_inner_csum)))
        return -1;
    if (old_port != new_port &&
        (bpf_skb_store_bytes(skb, inner_port_off, &new_port, sizeof(new_port), 0) ||
         bpf_l4_csum_replace(skb, icmp_csum_off, old_port, new_port, sizeof(new_port))))
        return -1;
    /* A quoted UDP header is whole (8 bytes), checksum included: it follows its pseudo-header
     * address and port, like the kernel's NAT does it, and the ICMP checksum follows it. (TCP's
     * checksum lies beyond the 8 quoted bytes.) */
    if (inner->proto == IPPROTO_UDP) {
        const __u32 udp_csum_off = inner->l4_off + offsetof(struct udphdr, check);
        __u16 old_udp_csum;
        if (bpf_skb_load_bytes(skb, udp_csum_off, &old_udp_csum, sizeof(old_udp_csum))) return -1;
        if (old_udp_csum != 0) {
            __u16 new_udp_csum = bpfnet_csum_replace4(old_udp_csum, old_inner, new_addr);
            new_udp_csum = bpfnet_csum_replace2(new_udp_csum, old_port, new_port);
            if (new_udp_csum == 0) new_udp_csum = 0xffff;
            if (bpf_skb_store_bytes(skb, udp_csum_off, &new_udp_csum, sizeof(new_udp_csum), 0) ||
                bpf_l4_csum_replace(skb, icmp_csum_off, old_udp_csum, new_udp_csum,
                                    sizeof(new_udp_csum)))
                return -1;
        }
    }
    return 0;
}

/* Forwarding like a router: one hop less (the caller has checked ttl > 1). */
static __always_inline int bpfnet_ipv4_dec_ttl(struct __sk_buff* skb, __u8 ttl, __u8 proto) {
    const __be16 old_word = bpf_htons((__u16)ttl << 8 | proto);
    const __be16 new_word = bpf_htons((__u16)(ttl - 1) << 8 | proto);
    const __u8 new_ttl = ttl - 1;
    if (bpf_l3_csum_replace(skb, BPFNET_IP_CSUM_OFF, old_word, new_word, sizeof(new_word)))
        return -1;
    return bpf_skb_store_bytes(skb, BPFNET_IP_TTL_OFF, &new_ttl, 1, 0) ? -1 : 0;
}

/* New Ethernet addresses for a frame that leaves through another device. */
static __always_inline int bpfnet_set_macs(struct __sk_buff* skb, const __u8* smac,
                                           const __u8* dmac) {
    __u8 macs[2 * ETH_ALEN];
    __builtin_memcpy(macs, dmac, ETH_ALEN);
    __builtin_memcpy(macs + ETH_ALEN, smac, ETH_ALEN);
    return bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) ? -1 : 0;
}

/* What every translated packet gets besides its addresses: one hop less and the MACs of the way
 * it leaves (`smac`, `dmac`: ETH_ALEN bytes each). */
static __always_inline int bpfnet_forward_as(struct __sk_buff* skb, __u8 ttl, __u8 proto,
                                             const __u8* smac, const __u8* dmac) {
    return bpfnet_ipv4_dec_ttl(skb, ttl, proto) || bpfnet_set_macs(skb, smac, dmac) ? -1 : 0;
}

#endif /* BPFNET_BPF_LIB_NAT_H */

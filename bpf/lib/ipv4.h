/* IPv4 header helpers. */
#ifndef BPFNET_BPF_LIB_IPV4_H
#define BPFNET_BPF_LIB_IPV4_H

#include <linux/in.h>
#include <linux/ip.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define BPFNET_IPV4_FRAG_OFFSET_MASK 0x1fff

/* Header length in bytes from the IHL field (20..60 for a valid header). */
static __always_inline __u32 bpfnet_ipv4_hdr_len(const struct iphdr* iph) {
    return (__u32)iph->ihl * 4;
}

/* Whether the packet is a non-first fragment, which carries no L4 header. */
static __always_inline int bpfnet_ipv4_is_later_fragment(const struct iphdr* iph) {
    return (iph->frag_off & bpf_htons(BPFNET_IPV4_FRAG_OFFSET_MASK)) != 0;
}

/* Whether `addr` lies in subnet/prefix_len (all network byte order; prefix_len above 32 is
 * treated as 32). */
static __always_inline int bpfnet_ipv4_in_subnet(__be32 addr, __be32 subnet, __u32 prefix_len) {
    if (prefix_len == 0) return 1;
    if (prefix_len > 32) prefix_len = 32;
    const __u32 mask = 0xffffffffu << (32 - prefix_len);
    return ((bpf_ntohl(addr) ^ bpf_ntohl(subnet)) & mask) == 0;
}

#endif /* BPFNET_BPF_LIB_IPV4_H */

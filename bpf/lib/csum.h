/* Incremental Internet checksum updates (RFC 1624: HC' = ~(~HC + ~m + m')) for programs that
 * rewrite packets through direct access, where the skb checksum helpers are not available (XDP).
 * The one's-complement sum does not depend on byte order as long as every word is taken the same
 * way, so raw network-order values go in and out. Correct for fully checksummed packets only: an
 * XDP program never sees CHECKSUM_PARTIAL metadata, which is why XDP is not used where partial
 * checksums can arrive (see the agent's uplink policy). */
#ifndef BPFNET_BPF_LIB_CSUM_H
#define BPFNET_BPF_LIB_CSUM_H

#include <linux/types.h>

static __always_inline __u16 bpfnet_csum_fold(__u32 sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

static __always_inline __u16 bpfnet_csum_replace2(__u16 check, __u16 from, __u16 to) {
    return bpfnet_csum_fold((__u32)(__u16)~check + (__u16)~from + to);
}

static __always_inline __u16 bpfnet_csum_replace4(__u16 check, __u32 from, __u32 to) {
    return bpfnet_csum_fold((__u32)(__u16)~check + (__u16) ~(from & 0xffff) +
                            (__u16) ~(from >> 16) + (to & 0xffff) + (to >> 16));
}

#endif /* BPFNET_BPF_LIB_CSUM_H */

/* Ethernet and packet-access helpers for TC programs.
 *
 * Packet access is direct (skb->data .. skb->data_end) for speed. Direct access reaches only the
 * linear part of the skb, which at TC always holds the Ethernet header but not necessarily what
 * follows (a packet socket may hand the kernel a frame whose L3 header is in page fragments), so
 * bpfnet_linearize() pulls the bytes a parser needs before it reads them. Every helper that can
 * change the packet (pull, store) invalidates all packet pointers: reload them afterwards. */
#ifndef BPFNET_BPF_LIB_ETH_H
#define BPFNET_BPF_LIB_ETH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define BPFNET_ETH_P_8021Q 0x8100
#define BPFNET_ETH_P_8021AD 0x88a8

static __always_inline void* bpfnet_data(const struct __sk_buff* skb) {
    return (void*)(long)skb->data;
}

static __always_inline void* bpfnet_data_end(const struct __sk_buff* skb) {
    return (void*)(long)skb->data_end;
}

/* Makes the first `len` bytes of the packet directly readable. Returns 0, or -1 when the packet is
 * shorter than `len` (or the pull failed). `len` must be a small bounded value (header sizes). */
static __always_inline int bpfnet_linearize(struct __sk_buff* skb, __u32 len) {
    if (bpfnet_data(skb) + len <= bpfnet_data_end(skb)) return 0;
    if (skb->len < len) return -1;
    return bpf_skb_pull_data(skb, len) == 0 ? 0 : -1;
}

/* Byte-wise, so it works for any alignment of packet and map memory; 6 loads each side. */
static __always_inline int bpfnet_mac_eq(const __u8* a, const __u8* b) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
            (a[5] ^ b[5])) == 0;
}

static __always_inline void bpfnet_mac_copy(__u8* dst, const __u8* src) {
    __builtin_memcpy(dst, src, ETH_ALEN);
}

/* Group bit: multicast, including broadcast. */
static __always_inline int bpfnet_mac_is_multicast(const __u8* mac) {
    return mac[0] & 1;
}

static __always_inline int bpfnet_eth_proto_is_vlan(__be16 proto) {
    return proto == bpf_htons(BPFNET_ETH_P_8021Q) || proto == bpf_htons(BPFNET_ETH_P_8021AD);
}

#endif /* BPFNET_BPF_LIB_ETH_H */

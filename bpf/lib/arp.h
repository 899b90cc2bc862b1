/* ARP for IPv4 over Ethernet (RFC 826): the fixed 28-byte body and the in-place reply. The
 * kernel's <linux/if_arp.h> declares only the 8-byte fixed part (the address fields depend on hlen
 * and plen) and drags in <linux/netdevice.h>, so the Ethernet/IPv4 form is spelled out here. */
#ifndef BPFNET_BPF_LIB_ARP_H
#define BPFNET_BPF_LIB_ARP_H

#include <linux/if_ether.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/eth.h"

#define BPFNET_ARP_HTYPE_ETHER 1
#define BPFNET_ARP_OP_REQUEST 1
#define BPFNET_ARP_OP_REPLY 2

/* The protocol addresses sit at 2-byte offsets (14 and 24), hence packed: clang then reads them
 * byte by byte, which is right for any alignment of the packet. */
struct bpfnet_arp_eth_ipv4 {
    __be16 htype;
    __be16 ptype;
    __u8 hlen;
    __u8 plen;
    __be16 op;
    __u8 sha[ETH_ALEN];
    __be32 spa;
    __u8 tha[ETH_ALEN];
    __be32 tpa;
} __attribute__((packed));
_Static_assert(sizeof(struct bpfnet_arp_eth_ipv4) == 28, "ARP Ethernet/IPv4 body is 28 bytes");

/* Whether the fixed part says Ethernet hardware addresses and IPv4 protocol addresses. */
static __always_inline int bpfnet_arp_is_eth_ipv4(const struct bpfnet_arp_eth_ipv4* arp) {
    return arp->htype == bpf_htons(BPFNET_ARP_HTYPE_ETHER) && arp->ptype == bpf_htons(ETH_P_IP) &&
           arp->hlen == ETH_ALEN && arp->plen == 4;
}

/* Turns a request (as validated by the caller) into the reply `answer_mac` would send, in place:
 * the frame goes back to the requester, who learns tpa is at answer_mac. Ethernet padding after
 * the body is left as it is. `answer_mac` must not point into the packet. */
static __always_inline void bpfnet_arp_make_reply(struct ethhdr* eth,
                                                  struct bpfnet_arp_eth_ipv4* arp,
                                                  const __u8* answer_mac) {
    const __be32 requester_ip = arp->spa;
    const __be32 asked_ip = arp->tpa;
    __u8 requester_mac[ETH_ALEN];

    bpfnet_mac_copy(requester_mac, arp->sha);
    bpfnet_mac_copy(eth->h_dest, requester_mac);
    bpfnet_mac_copy(eth->h_source, answer_mac);
    arp->op = bpf_htons(BPFNET_ARP_OP_REPLY);
    bpfnet_mac_copy(arp->sha, answer_mac);
    arp->spa = asked_ip;
    bpfnet_mac_copy(arp->tha, requester_mac);
    arp->tpa = requester_ip;
}

#endif /* BPFNET_BPF_LIB_ARP_H */

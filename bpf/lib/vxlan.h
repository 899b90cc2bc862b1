/* VXLAN on the wire (RFC 7348) as both decapsulation paths read it: the TC one (lib/decap.h) and
 * the XDP one (lib/decap_xdp.h). The encapsulation's own view is in lib/encap.h. */
#ifndef BPFNET_BPF_LIB_VXLAN_H
#define BPFNET_BPF_LIB_VXLAN_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define BPFNET_VXLAN_FLAG_VNI 0x08000000 /* the I flag: the VNI field is valid */
#define BPFNET_IP_MF 0x2000
#define BPFNET_IP_OFFSET 0x1fff

/* The outer headers up to UDP, as they arrive. */
struct bpfnet_outer_udp {
    struct ethhdr eth;
    struct iphdr ip;
    struct udphdr udp;
} __attribute__((packed));

/* What follows them: the VXLAN header, the inner Ethernet header and the inner IPv4 header up to
 * its destination. */
struct bpfnet_vxlan_inner {
    __be32 vx_flags;
    __be32 vx_vni;
    struct ethhdr eth;
    struct iphdr ip;
} __attribute__((packed));

#endif /* BPFNET_BPF_LIB_VXLAN_H */

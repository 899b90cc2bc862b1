/* The XDP fast path of the uplink program, for uplinks whose driver runs XDP natively: TCP and
 * UDP packets of flows to published ports, and the answers of egress flows, are translated in the
 * driver's receive path and handed to the endpoint's veth with bpf_redirect (XDP_REDIRECT), before
 * the kernel allocates an skb.
 *
 * VXLAN to this host's VTEP for a local endpoint is decapsulated first (lib/decap_xdp.h), where
 * the uplink is also the overlays' underlay.
 *
 * Only the common case is handled here; everything else (IPv4 options, fragments, SCTP, ICMP
 * errors, TTL 1, anything malformed or not for a published port) is passed on (XDP_PASS) to the
 * TC program on the same uplink (lib/uplink.h), which handles it or leaves it to the host. Flows
 * and counters are the same maps either way, so replies are translated by the endpoint program
 * whichever path created the flow.
 *
 * The redirect target is the host end of the endpoint's veth; the veth driver hands the frame to
 * its peer in the sandbox, which needs NAPI for that: the agent turns GRO on for the sandbox ends
 * while an uplink runs XDP. */
#ifndef BPFNET_BPF_LIB_UPLINK_XDP_H
#define BPFNET_BPF_LIB_UPLINK_XDP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/conntrack.h"
#include "lib/csum.h"
#include "lib/decap_xdp.h"
#include "lib/ep_stats.h"
#include "lib/host_ct.h"
#include "lib/uplink.h"

static __always_inline int bpfnet_uplink_xdp(struct xdp_md* ctx) {
    /* An uplink that is also the overlay's underlay: VXLAN for a local endpoint first. */
    const int vxlan = bpfnet_vxlan_decap_xdp(ctx);
    if (vxlan != BPFNET_CONTINUE) return vxlan;

    void* data = (void*)(long)ctx->data;
    void* data_end = (void*)(long)ctx->data_end;
    const __u32 len = (__u32)(data_end - data);
    struct ethhdr* eth = data;
    struct iphdr* iph = (void*)(eth + 1);
    if ((void*)(iph + 1) > data_end) return XDP_PASS;
    if (eth->h_proto != bpf_htons(ETH_P_IP) || bpfnet_mac_is_multicast(eth->h_dest))
        return XDP_PASS;
    if (iph->version != 4 || iph->ihl != 5 || iph->ttl <= 1) return XDP_PASS;
    if (iph->frag_off & bpf_htons(BPFNET_IPV4_MF | BPFNET_IPV4_FRAG_OFFSET_MASK)) return XDP_PASS;

    struct bpfnet_flow f = {
        .saddr = iph->saddr,
        .daddr = iph->daddr,
        .proto = iph->protocol,
        .ttl = iph->ttl,
        .l4_off = ETH_HLEN + sizeof(struct iphdr),
    };
    void* l4 = iph + 1;
    __sum16* l4_check;
    /* The packet ends at the IPv4 total length; what follows is Ethernet padding. */
    const __u32 ip_end = ETH_HLEN + bpf_ntohs(iph->tot_len);
    const __u32 l4_len = f.proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
    if (ip_end < f.l4_off + l4_len) return XDP_PASS;
    if (f.proto == IPPROTO_TCP) {
        struct tcphdr* th = l4;
        if ((void*)(th + 1) > data_end) return XDP_PASS;
        f.tcp_flags = ((__u8*)th)[13];
        l4_check = &th->check;
    } else if (f.proto == IPPROTO_UDP) {
        struct udphdr* uh = l4;
        if ((void*)(uh + 1) > data_end) return XDP_PASS;
        l4_check = &uh->check;
    } else {
        return XDP_PASS;
    }
    __be16* ports = l4;
    f.sport = ports[0];
    f.dport = ports[1];

    struct bpfnet_ct_key key =
        bpfnet_ct_key_of(f.saddr, f.daddr, f.sport, f.dport, f.proto, BPFNET_CT_DIR_IN);
    const __u64 now = bpf_ktime_get_ns();
    struct bpfnet_ct_entry* e = bpf_map_lookup_elem(&bpfnet_ct, &key);
    const int syn_only = f.proto == IPPROTO_TCP &&
                         (f.tcp_flags & (BPFNET_TCP_SYN | BPFNET_TCP_ACK)) == BPFNET_TCP_SYN;
    if (e && bpfnet_ct_alive(e, now) && !(syn_only && bpfnet_ct_closed(e))) {
        /* An endpoint whose veth cannot take XDP frames is reached from the TC program. */
        if (!(e->flags & BPFNET_CT_F_XDP)) return XDP_PASS;
        if (bpfnet_ct_touch(&key, e, bpfnet_ct_packet_flags(e, f.proto, f.tcp_flags, 1), len,
                            now)) {
            struct bpfnet_uplink_macs macs;
            bpfnet_mac_copy(macs.local, eth->h_dest);
            bpfnet_mac_copy(macs.remote, eth->h_source);
            bpfnet_uplink_restore_reply(ctx->ingress_ifindex, &f, e, &macs);
        }
    } else {
        if (f.proto == IPPROTO_TCP && !syn_only) return XDP_PASS; /* see lib/uplink.h */
        const struct bpfnet_svc_target* svc = bpfnet_published(f.daddr, f.dport, f.proto);
        if (!svc) return XDP_PASS;
        /* The host's own connection: the TC program finds it too, and counts it. */
        if (bpfnet_host_started_xdp(ctx, &f)) return XDP_PASS;
        struct bpfnet_uplink_macs macs;
        bpfnet_mac_copy(macs.local, eth->h_dest);
        bpfnet_mac_copy(macs.remote, eth->h_source);
        e = bpfnet_uplink_new_flow(ctx->ingress_ifindex, len, &f, svc, &key, &macs, now);
        if (!e) return XDP_PASS;
        if (!(e->flags & BPFNET_CT_F_XDP)) return XDP_PASS; /* TC forwards its first packet */
    }
    const __u32 counter = bpfnet_uplink_in_counter(e);
    struct bpfnet_ct_nat ep;
    bpfnet_ct_nat_of(e, &ep);
    const __be32 ep_addr = ep.addr;
    const __be16 ep_port = ep.port;
    const __u32 ep_ifindex = ep.ifindex;
    bpfnet_mac_copy(eth->h_source, ep.smac);
    bpfnet_mac_copy(eth->h_dest, ep.dmac);

    /* The pseudo-header's address and the port are in the TCP/UDP checksum; a UDP checksum of 0
     * means "none" and stays 0, and a computed 0 is sent as 0xffff (RFC 768). */
    if (f.proto == IPPROTO_TCP || *l4_check != 0) {
        __u16 check = bpfnet_csum_replace4(*l4_check, f.daddr, ep_addr);
        check = bpfnet_csum_replace2(check, f.dport, ep_port);
        if (f.proto == IPPROTO_UDP && check == 0) check = 0xffff;
        *l4_check = check;
    }
    ports[1] = ep_port;
    __u16 ip_check = bpfnet_csum_replace4(iph->check, f.daddr, ep_addr);
    const __be16 old_ttl_word = bpf_htons((__u16)f.ttl << 8 | f.proto);
    const __be16 new_ttl_word = bpf_htons((__u16)(f.ttl - 1) << 8 | f.proto);
    iph->check = bpfnet_csum_replace2(ip_check, old_ttl_word, new_ttl_word);
    iph->daddr = ep_addr;
    iph->ttl = f.ttl - 1;

    bpfnet_nat_count(counter, len);
    bpfnet_nat_count(BPFNET_NAT_DNAT_XDP, len);
    bpfnet_ep_count_to(ep_ifindex, len);
    return bpf_redirect(ep_ifindex, 0);
}

#endif /* BPFNET_BPF_LIB_UPLINK_XDP_H */

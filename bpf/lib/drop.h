/* Dropping a packet: count it by reason in bpfnet_drops and report it as a struct bpfnet_event on
 * the bpfnet_events ring buffer, so `bpfnet monitor` can say which packet was dropped and why.
 *
 * Parsers fill a struct bpfnet_pkt_info as they go; a drop reports whatever was parsed by then. */
#ifndef BPFNET_BPF_LIB_DROP_H
#define BPFNET_BPF_LIB_DROP_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/endpoint_maps.h"
#include "lib/eth.h"

/* Knob: report drops on the ring buffer (1) or only count them (0). Counting is always on. */
const volatile __u8 emit_drop_events = 1;

/* What the program learned about a packet, for drop events. Zero means "not parsed". */
struct bpfnet_pkt_info {
    __be32 saddr;     /* IPv4 source, or ARP sender protocol address */
    __be32 daddr;     /* IPv4 destination, or ARP target protocol address */
    __u32 l4_off;     /* offset of the TCP/UDP header from skb->data, 0 if none */
    __be16 eth_proto; /* outer EtherType (the VLAN TPID for tagged frames) */
    __u8 protocol;    /* IPv4 protocol */
    __u8 pad;
    __u8 smac[ETH_ALEN];
    __u8 dmac[ETH_ALEN];
};

/* Parsers return a TC verdict (>= 0) or BPFNET_DROP(reason) (< 0), so the entry function has a
 * single place that drops, counts and reports. */
#define BPFNET_DROP(reason) (-(int)(reason))
/* What a stage returns when the packet is not its business and the caller goes on. */
#define BPFNET_CONTINUE (-1000)

/* `type` BPFNET_EVENT_DROP with the drop reason, or BPFNET_EVENT_TRACE with the verdict. */
static __always_inline void bpfnet_emit_event(struct __sk_buff* skb,
                                              const struct bpfnet_pkt_info* info, __u32 type,
                                              __u32 code) {
    /* Ring buffer memory is not zeroed: every field, padding included, is written below. A full
     * ring buffer (no reader, or a slow one) loses the event, never the count. */
    struct bpfnet_event* ev = bpf_ringbuf_reserve(&bpfnet_events, sizeof(*ev), 0);
    if (!ev) return;

    __be16 ports[2] = {0, 0};
    if (info->l4_off && (info->protocol == IPPROTO_TCP || info->protocol == IPPROTO_UDP)) {
        if (bpf_skb_load_bytes(skb, info->l4_off, ports, sizeof(ports)) != 0) {
            ports[0] = 0;
            ports[1] = 0;
        }
    }

    ev->timestamp_ns = bpf_ktime_get_ns();
    ev->type = type;
    ev->reason = code;
    ev->ifindex = skb->ifindex;
    ev->len = skb->len;
    ev->saddr = info->saddr;
    ev->daddr = info->daddr;
    ev->sport = ports[0];
    ev->dport = ports[1];
    ev->eth_proto = info->eth_proto;
    ev->protocol = info->protocol;
    ev->pad = 0;
    bpfnet_mac_copy(ev->smac, info->smac);
    bpfnet_mac_copy(ev->dmac, info->dmac);
    __builtin_memset(ev->pad2, 0, sizeof(ev->pad2));
    bpf_ringbuf_submit(ev, 0);
}

static __always_inline int bpfnet_drop(struct __sk_buff* skb, const struct bpfnet_pkt_info* info,
                                       __u32 reason) {
    /* The verifier cannot know reason < BPFNET_DROP_REASON_MAX; the array lookup bounds it. */
    __u32 key = reason;
    struct bpfnet_drop_stats* stats = bpf_map_lookup_elem(&bpfnet_drops, &key);
    if (stats) {
        stats->packets++;
        stats->bytes += skb->len;
    }
    if (emit_drop_events) bpfnet_emit_event(skb, info, BPFNET_EVENT_DROP, reason);
    return TC_ACT_SHOT;
}

/* While `bpfnet monitor --type trace` runs: report a packet the program let through, with its
 * verdict. One array lookup per packet otherwise. */
static __always_inline int bpfnet_trace(struct __sk_buff* skb, const struct bpfnet_pkt_info* info,
                                        int verdict) {
    __u32 key = 0;
    const struct bpfnet_monitor_cfg* cfg = bpf_map_lookup_elem(&bpfnet_mon_cfg, &key);
    if (cfg && cfg->trace) bpfnet_emit_event(skb, info, BPFNET_EVENT_TRACE, (__u32)verdict);
    return verdict;
}

#endif /* BPFNET_BPF_LIB_DROP_H */

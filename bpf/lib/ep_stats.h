/* Per-endpoint packet counters (bpfnet_ep_stats), shared by every program that delivers to or
 * takes from an endpoint. */
#ifndef BPFNET_BPF_LIB_EP_STATS_H
#define BPFNET_BPF_LIB_EP_STATS_H

#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/endpoint_maps.h"

/* The counters of a host-side veth, created on first use. Per-CPU, so plain adds are safe. */
static __always_inline struct bpfnet_ep_stats* bpfnet_ep_stats_of(__u32 ifindex) {
    struct bpfnet_ep_stats* stats = bpf_map_lookup_elem(&bpfnet_ep_stats, &ifindex);
    if (stats) return stats;

    /* Another CPU may create it first: BPF_NOEXIST then fails and the lookup finds theirs. A full
     * map leaves the packet uncounted, nothing worse. */
    struct bpfnet_ep_stats zero = {};
    bpf_map_update_elem(&bpfnet_ep_stats, &ifindex, &zero, BPF_NOEXIST);
    return bpf_map_lookup_elem(&bpfnet_ep_stats, &ifindex);
}

/* Counts a frame delivered to the endpoint behind host-side veth `ifindex`. */
static __always_inline void bpfnet_ep_count_to(__u32 ifindex, __u32 bytes) {
    struct bpfnet_ep_stats* to = bpfnet_ep_stats_of(ifindex);
    if (to) {
        to->to_packets++;
        to->to_bytes += bytes;
    }
}

#endif /* BPFNET_BPF_LIB_EP_STATS_H */

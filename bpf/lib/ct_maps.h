/* The conntrack of published ports reached from outside, shared by the uplink program (which
 * creates flows) and the endpoint program (which reverses the NAT of replies). Pinned by name like
 * every bpfnet map, so flows survive agent restarts. Keys and values in bpfnet/abi.h, section
 * "conntrack and NAT". */
#ifndef BPFNET_BPF_LIB_CT_MAPS_H
#define BPFNET_BPF_LIB_CT_MAPS_H

#include "lib/map_defs.h"

/* Two entries per flow (IN and REPLY). LRU: a full table evicts the least recently used flow
 * instead of refusing new ones. max_entries is the default; the agent sets --ct-max before load. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, BPFNET_CT_DEFAULT_ENTRIES);
    __type(key, struct bpfnet_ct_key);
    __type(value, struct bpfnet_ct_entry);
    BPFNET_PIN_BY_NAME;
} bpfnet_ct SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_ct);

/* Counters by enum bpfnet_nat_counter, per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, BPFNET_NAT_COUNTER_MAX);
    __type(key, __u32);
    __type(value, struct bpfnet_nat_stats);
    BPFNET_PIN_BY_NAME;
} bpfnet_nat_cnt SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_nat_cnt);

#endif /* BPFNET_BPF_LIB_CT_MAPS_H */

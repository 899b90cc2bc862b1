/* The uplinks egress may leave through in BPF (bpfnet/abi.h, section "egress"), pinned by name
 * and filled by the agent with each uplink's address and SNAT port range. */
#ifndef BPFNET_BPF_LIB_EGRESS_MAPS_H
#define BPFNET_BPF_LIB_EGRESS_MAPS_H

#include "lib/map_defs.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_UPLINKS);
    __type(key, __u32);
    __type(value, struct bpfnet_uplink);
    BPFNET_PIN_BY_NAME;
} bpfnet_uplinks SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_uplinks);

/* Where the endpoint program builds a new egress flow's conntrack entries (lib/egress.h): one
 * per CPU, private to the program (not pinned: nothing else reads it). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpfnet_ct_entry);
} bpfnet_ct_tmp SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_ct_tmp);

#endif /* BPFNET_BPF_LIB_EGRESS_MAPS_H */

/* The maps of the BPF overlay: remote endpoints, VNIs and the host's VXLAN device. Shared by the
 * endpoint program (encapsulation, ARP for remote endpoints) and the overlay program
 * (decapsulation). Keys and values in bpfnet/abi.h, section "overlay". */
#ifndef BPFNET_BPF_LIB_OVERLAY_MAPS_H
#define BPFNET_BPF_LIB_OVERLAY_MAPS_H

#include "lib/map_defs.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_TUNNEL_ENDPOINTS);
    __type(key, struct bpfnet_ep_key);
    __type(value, struct bpfnet_tunnel_dest);
    BPFNET_PIN_BY_NAME;
} bpfnet_tunnel SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_tunnel);

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_NETWORKS);
    __type(key, __u32);
    __type(value, __u32);
    BPFNET_PIN_BY_NAME;
} bpfnet_vni SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_vni);

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpfnet_vx_cfg);
    BPFNET_PIN_BY_NAME;
} bpfnet_vx_cfg SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_vx_cfg);

#endif /* BPFNET_BPF_LIB_OVERLAY_MAPS_H */

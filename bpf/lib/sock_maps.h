/* The maps of the socket NAT (bpf/sock.bpf.c) besides the published ports (lib/svc_maps.h).
 * Conventions are in lib/maps.h; keys and values in bpfnet/abi.h, section "socket NAT". Pinned by
 * name so the agent can refill them after a restart while the pinned cgroup links keep the
 * programs (and these maps) alive. */
#ifndef BPFNET_BPF_LIB_SOCK_MAPS_H
#define BPFNET_BPF_LIB_SOCK_MAPS_H

#include "lib/map_defs.h"
#include "lib/svc_maps.h"

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, BPFNET_MAX_SOCK_ORIG);
    __type(key, __u64);
    __type(value, struct bpfnet_sock_orig);
    BPFNET_PIN_BY_NAME;
} bpfnet_sk_orig SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_sk_orig);

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpfnet_sock_cfg);
    BPFNET_PIN_BY_NAME;
} bpfnet_sk_cfg SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_sk_cfg);

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_ENDPOINTS);
    __type(key, struct bpfnet_sk_netns_key);
    __type(value, __u8);
    BPFNET_PIN_BY_NAME;
} bpfnet_sk_netns SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_sk_netns);

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpfnet_sock_stats);
    BPFNET_PIN_BY_NAME;
} bpfnet_sk_stats SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_sk_stats);

#endif /* BPFNET_BPF_LIB_SOCK_MAPS_H */

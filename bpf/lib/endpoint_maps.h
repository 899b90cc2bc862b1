/* The maps of the endpoint datapath (bpf/endpoint.bpf.c). Conventions are in lib/maps.h.
 *
 * All of them are pinned by name: the agent fills the configuration maps (networks, endpoints,
 * subnets) and the inspection CLI reads the counters and the event ring buffer straight from
 * <pin_root>/<name>, and all of it must survive an agent restart so forwarding never stops. Keys
 * and values are defined in bpfnet/abi.h, section "endpoint". */
#ifndef BPFNET_BPF_LIB_ENDPOINT_MAPS_H
#define BPFNET_BPF_LIB_ENDPOINT_MAPS_H

#include "lib/map_defs.h"

/* Networks, by datapath ID: subnet, gateway, ICC/internal flags. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_NETWORKS);
    __type(key, __u32);
    __type(value, struct bpfnet_net_info);
    BPFNET_PIN_BY_NAME;
} bpfnet_net SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_net);

/* Endpoints as traffic sources, by the ifindex of their host-side veth. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_ENDPOINTS);
    __type(key, __u32);
    __type(value, struct bpfnet_endpoint);
    BPFNET_PIN_BY_NAME;
} bpfnet_ep_by_if SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_ep_by_if);

/* Endpoints as destinations, by (network, IPv4 address). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_ENDPOINTS);
    __type(key, struct bpfnet_ep_key);
    __type(value, struct bpfnet_ep_dest);
    BPFNET_PIN_BY_NAME;
} bpfnet_ep_by_ip SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_ep_by_ip);

/* Every bpfnet network's subnet -> its network, to recognise traffic aimed at another network.
 * LPM tries must be created with BPF_F_NO_PREALLOC. */
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, BPFNET_MAX_NETWORKS);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct bpfnet_lpm_v4);
    __type(value, __u32);
    BPFNET_PIN_BY_NAME;
} bpfnet_subnets SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_subnets);

/* Per-endpoint counters, per CPU (no atomics, no shared cache line on the fast path). The program
 * creates an endpoint's entry on its first packet; the agent deletes it with the endpoint. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, BPFNET_MAX_ENDPOINTS);
    __type(key, __u32);
    __type(value, struct bpfnet_ep_stats);
    BPFNET_PIN_BY_NAME;
} bpfnet_ep_stats SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_ep_stats);

/* Drop counters by enum bpfnet_drop_reason, per CPU. Slot 0 is unused. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, BPFNET_DROP_REASON_MAX);
    __type(key, __u32);
    __type(value, struct bpfnet_drop_stats);
    BPFNET_PIN_BY_NAME;
} bpfnet_drops SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_drops);

/* struct bpfnet_event records (drops) for `bpfnet monitor` and the agent's log. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, BPFNET_EVENTS_RINGBUF_BYTES);
    BPFNET_PIN_BY_NAME;
} bpfnet_events SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_events);

/* What `bpfnet monitor` wants reported besides drops. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bpfnet_monitor_cfg);
    BPFNET_PIN_BY_NAME;
} bpfnet_mon_cfg SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_mon_cfg);

#endif /* BPFNET_BPF_LIB_ENDPOINT_MAPS_H */

/* The published ports, shared by the socket NAT (bpf/sock.bpf.c) and the uplink program
 * (bpf/uplink.bpf.c): both are pinned by name, so every object that includes this header uses the
 * same two maps, filled by the agent. Keys and values in bpfnet/abi.h, section "socket NAT". */
#ifndef BPFNET_BPF_LIB_SVC_MAPS_H
#define BPFNET_BPF_LIB_SVC_MAPS_H

#include "lib/map_defs.h"

/* (host address or 0 for any, host port, protocol) -> endpoint address, port and network. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_PUBLISHED);
    __type(key, struct bpfnet_svc_key);
    __type(value, struct bpfnet_svc_target);
    BPFNET_PIN_BY_NAME;
} bpfnet_pub_port SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_pub_port);

/* The host's own IPv4 addresses (network byte order): "any address" bindings apply to these. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, BPFNET_MAX_LOCAL_IPS);
    __type(key, __u32);
    __type(value, __u8);
    BPFNET_PIN_BY_NAME;
} bpfnet_local_ip SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_local_ip);

#endif /* BPFNET_BPF_LIB_SVC_MAPS_H */

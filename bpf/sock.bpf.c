// SPDX-License-Identifier: GPL-2.0
/* Socket NAT for published ports: cgroup sock_addr programs on the root of the cgroup v2
 * hierarchy. A socket of the host's network namespace, or of a sandbox on the endpoint's network
 * (hairpin), that connects (TCP, SCTP) or sends (UDP) to a published port on a host address gets
 * the endpoint's address instead, once, at the socket: no per-packet NAT, no conntrack entry, no
 * proxy process. recvmsg4 and getpeername4 show the
 * application the address it asked for. Anything else is left alone: these programs never refuse
 * a socket operation (they always return 1), because they run for every process on the host. */
#include <linux/bpf.h>
#include <linux/in.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/sock_maps.h"

#define SOCK_ALLOW 1

static __always_inline int bpfnet_is_loopback(__u32 ip) {
    return (bpf_ntohl(ip) >> 24) == 127;
}

static __always_inline int bpfnet_is_local(__u32 ip) {
    return bpfnet_is_loopback(ip) || bpf_map_lookup_elem(&bpfnet_local_ip, &ip) != 0;
}

static __always_inline int bpfnet_sock_rewrite(struct bpf_sock_addr* ctx) {
    const __u32 proto = ctx->protocol;
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP) return SOCK_ALLOW;
    __u32 zero = 0;
    struct bpfnet_sock_cfg* cfg = bpf_map_lookup_elem(&bpfnet_sk_cfg, &zero);
    if (!cfg || cfg->host_netns_cookie == 0) return SOCK_ALLOW;
    const __u64 netns = bpf_get_netns_cookie(ctx);
    const int host = netns == cfg->host_netns_cookie;

    const __u32 dst_ip = ctx->user_ip4;
    const __u16 dst_port = (__u16)ctx->user_port;
    /* A sandbox's own loopback is its own business. */
    if (!host && bpfnet_is_loopback(dst_ip)) return SOCK_ALLOW;
    struct bpfnet_svc_key key = {.host_ip = dst_ip, .port = dst_port, .proto = (__u8)proto};
    struct bpfnet_svc_target* target = bpf_map_lookup_elem(&bpfnet_pub_port, &key);
    if (!target) {
        if (!bpfnet_is_local(dst_ip)) return SOCK_ALLOW;
        key.host_ip = 0;
        target = bpf_map_lookup_elem(&bpfnet_pub_port, &key);
        if (!target) return SOCK_ALLOW;
    }
    if (!host) {
        struct bpfnet_sk_netns_key member = {.netns_cookie = netns, .network = target->network};
        if (!bpf_map_lookup_elem(&bpfnet_sk_netns, &member)) return SOCK_ALLOW;
    }
    struct bpfnet_sock_orig orig = {
        .ip = dst_ip,
        .port = dst_port,
        .target_ip = target->ip,
        .target_port = target->port,
    };
    __u64 cookie = bpf_get_socket_cookie(ctx);
    bpf_map_update_elem(&bpfnet_sk_orig, &cookie, &orig, BPF_ANY);
    ctx->user_ip4 = target->ip;
    ctx->user_port = target->port;

    struct bpfnet_sock_stats* stats = bpf_map_lookup_elem(&bpfnet_sk_stats, &zero);
    if (stats) stats->rewrites++;
    return SOCK_ALLOW;
}

/* Replies and peer names show the address the application asked for. */
static __always_inline int bpfnet_sock_restore(struct bpf_sock_addr* ctx) {
    __u64 cookie = bpf_get_socket_cookie(ctx);
    struct bpfnet_sock_orig* orig = bpf_map_lookup_elem(&bpfnet_sk_orig, &cookie);
    if (!orig) return SOCK_ALLOW;
    if (ctx->user_ip4 == orig->target_ip && (__u16)ctx->user_port == orig->target_port) {
        ctx->user_ip4 = orig->ip;
        ctx->user_port = orig->port;
    }
    return SOCK_ALLOW;
}

SEC("cgroup/connect4")
int bpfnet_connect4(struct bpf_sock_addr* ctx) {
    return bpfnet_sock_rewrite(ctx);
}

SEC("cgroup/sendmsg4")
int bpfnet_sendmsg4(struct bpf_sock_addr* ctx) {
    return bpfnet_sock_rewrite(ctx);
}

SEC("cgroup/recvmsg4")
int bpfnet_recvmsg4(struct bpf_sock_addr* ctx) {
    return bpfnet_sock_restore(ctx);
}

SEC("cgroup/getpeername4")
int bpfnet_getpeername4(struct bpf_sock_addr* ctx) {
    return bpfnet_sock_restore(ctx);
}

char LICENSE[] SEC("license") = "GPL";

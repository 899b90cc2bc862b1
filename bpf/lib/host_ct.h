/* The host's own conntrack (netfilter's), asked from the uplink programs through the kernel's
 * conntrack kfuncs.
 *
 * A packet to a published port that no BPF flow knows starts a new inbound flow, unless it is an
 * answer to a connection the host's stack started from that very port: a socket of the host's, or
 * a connection the kernel masqueraded (Docker's own bridges, a kernel-datapath network, egress BPF
 * left to the stack) whose source port the kernel's NAT chose equal to a published one. The
 * kernel NAT only checks its own tuples for clashes, and BPF flows are not among them. netfilter
 * has such a connection with this packet as its REPLY tuple; Docker's DNAT rules never see it
 * either, since NAT rules only apply to a connection's first packet. Such a packet is left to the
 * stack, which translates it back.
 *
 * The kfuncs are declared weak: on a kernel without them (or without nf_conntrack) the programs
 * load all the same and the check reads "no" (nothing can have been masqueraded there either).
 * Only the first packet of a new flow pays for the lookup. */
#ifndef BPFNET_BPF_LIB_HOST_CT_H
#define BPFNET_BPF_LIB_HOST_CT_H

#include <linux/bpf.h>
#include <linux/in.h>

#include <bpf/bpf_helpers.h>

#include "lib/nat.h"

/* The kernel's types, as much of them as the programs use. libbpf checks each kfunc's prototype
 * against the kernel's BTF and takes a forward declaration for another kind than a struct, so
 * nf_conn is an empty struct here. */
struct nf_conn {};
struct bpf_ct_opts {
    __s32 netns_id; /* BPF_F_CURRENT_NETNS: the device's */
    __s32 error;    /* out */
    __u8 l4proto;
    __u8 dir; /* out: the direction of the connection the tuple matched */
    __u8 reserved[2];
};
#define BPFNET_CT_OPTS_SIZE 12 /* the size every kernel with the kfuncs accepts */
#define BPFNET_IP_CT_DIR_REPLY 1

extern struct nf_conn* bpf_skb_ct_lookup(struct __sk_buff* skb, struct bpf_sock_tuple* tuple,
                                         __u32 tuple_size, struct bpf_ct_opts* opts,
                                         __u32 opts_size) __ksym __weak;
extern struct nf_conn* bpf_xdp_ct_lookup(struct xdp_md* ctx, struct bpf_sock_tuple* tuple,
                                         __u32 tuple_size, struct bpf_ct_opts* opts,
                                         __u32 opts_size) __ksym __weak;
extern void bpf_ct_release(struct nf_conn* ct) __ksym __weak;

static __always_inline void bpfnet_host_ct_query(const struct bpfnet_flow* f,
                                                 struct bpf_sock_tuple* tuple,
                                                 struct bpf_ct_opts* opts) {
    tuple->ipv4.saddr = f->saddr;
    tuple->ipv4.daddr = f->daddr;
    tuple->ipv4.sport = f->sport;
    tuple->ipv4.dport = f->dport;
    opts->netns_id = BPF_F_CURRENT_NETNS;
    opts->l4proto = f->proto;
}

/* 1 if `ct` (a lookup's result, released here) is a connection `f` answers. */
static __always_inline int bpfnet_host_ct_answered(struct nf_conn* ct,
                                                   const struct bpf_ct_opts* opts) {
    if (!ct) return 0;
    bpf_ct_release(ct);
    return opts->dir == BPFNET_IP_CT_DIR_REPLY;
}

/* Whether `f`, arriving at an uplink's TC hook, answers a connection the host's stack started. */
static __always_inline int bpfnet_host_started_skb(struct __sk_buff* skb,
                                                   const struct bpfnet_flow* f) {
    if (!bpf_skb_ct_lookup || !bpf_ct_release) return 0;
    if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP) return 0; /* all the kfuncs know */
    struct bpf_sock_tuple tuple = {};
    struct bpf_ct_opts opts = {};
    bpfnet_host_ct_query(f, &tuple, &opts);
    struct nf_conn* ct =
        bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, BPFNET_CT_OPTS_SIZE);
    return bpfnet_host_ct_answered(ct, &opts);
}

/* The same at the uplink's XDP hook. */
static __always_inline int bpfnet_host_started_xdp(struct xdp_md* ctx,
                                                   const struct bpfnet_flow* f) {
    if (!bpf_xdp_ct_lookup || !bpf_ct_release) return 0;
    if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP) return 0;
    struct bpf_sock_tuple tuple = {};
    struct bpf_ct_opts opts = {};
    bpfnet_host_ct_query(f, &tuple, &opts);
    struct nf_conn* ct =
        bpf_xdp_ct_lookup(ctx, &tuple, sizeof(tuple.ipv4), &opts, BPFNET_CT_OPTS_SIZE);
    return bpfnet_host_ct_answered(ct, &opts);
}

#endif /* BPFNET_BPF_LIB_HOST_CT_H */

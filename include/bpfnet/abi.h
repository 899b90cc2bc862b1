/* The one header shared by the BPF programs (C, clang -target bpf) and the C++ agent: map keys and
 * values, enums and limits. Everything a map holds is defined here exactly once, so the kernel and
 * user space can never disagree about a layout; the C++ side checks sizes and offsets at compile
 * time below. Later datapath features (endpoints, conntrack, NAT, overlay) add their keys/values
 * here too.
 *
 * Rules that keep the layouts identical for both compilers:
 *  - only fixed-width kernel types (__u8.. __u64, __be16, __be32) from <linux/types.h>;
 *  - fields ordered largest first, explicit padding fields instead of implicit holes (the verifier
 *    rejects reads of uninitialised stack padding, and the kernel copies holes verbatim);
 *  - no bool, no enums as field types (their size is the compiler's choice); store them as __u32.
 *
 * C, not C++, syntax throughout: this file is compiled by clang for the BPF target as plain C. */
#ifndef BPFNET_ABI_H
#define BPFNET_ABI_H

#include <linux/types.h>

/* Verdicts a TC program returns. The values are the kernel's TC_ACT_* ABI (linux/pkt_cls.h),
 * mirrored here so user space (tests, knobs, the CLI's drop reasons) can name them without the
 * kernel header; the C++ block below checks the mirror against the kernel's values. */
enum bpfnet_tc_verdict {
    BPFNET_TC_OK = 0,       /* TC_ACT_OK: hand the packet on to the stack */
    BPFNET_TC_SHOT = 2,     /* TC_ACT_SHOT: drop it */
    BPFNET_TC_REDIRECT = 7, /* TC_ACT_REDIRECT: bpf_redirect*() chose another device */
};

/* ---- pipeline: the build-pipeline proof and datapath probe program (bpf/pipeline.bpf.c) ---- */

/* bpfnet_pl_stats is an ARRAY with a single slot; its value counts what the program saw. */
#define BPFNET_PIPELINE_STATS_KEY 0
#define BPFNET_PIPELINE_STATS_ENTRIES 1

struct bpfnet_pipeline_stats {
    __u64 packets; /* every skb the program ran on */
    __u64 bytes;   /* sum of skb->len, including the Ethernet header */
};

#ifdef __cplusplus
#include <linux/pkt_cls.h>

#include <cstddef>

static_assert(BPFNET_TC_OK == TC_ACT_OK);
static_assert(BPFNET_TC_SHOT == TC_ACT_SHOT);
static_assert(BPFNET_TC_REDIRECT == TC_ACT_REDIRECT);

static_assert(sizeof(struct bpfnet_pipeline_stats) == 16);
static_assert(offsetof(struct bpfnet_pipeline_stats, bytes) == 8);
#endif /* __cplusplus */

#endif /* BPFNET_ABI_H */

// SPDX-License-Identifier: GPL-2.0
/* The pipeline program: proves the BPF build pipeline end to end (clang -> .bpf.o -> skeleton ->
 * C++), and is what the datapath probe loads and runs to learn whether bpf(), the verifier and
 * BPF_PROG_TEST_RUN work on this host. It counts every skb and returns a verdict chosen at load
 * time. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/maps.h"

/* Knobs are const volatile rodata, set through the skeleton before load: the verifier sees the
 * final value and prunes dead branches, so a knob costs nothing at run time and needs no recompile.
 * volatile keeps clang from folding the default into the code. */
const volatile __u32 pipeline_verdict = TC_ACT_OK;

SEC("tc")
int bpfnet_pipeline(struct __sk_buff* skb) {
    __u32 key = BPFNET_PIPELINE_STATS_KEY;
    struct bpfnet_pipeline_stats* stats = bpf_map_lookup_elem(&bpfnet_pl_stats, &key);

    /* The lookup cannot fail for key 0 of an ARRAY, but the verifier insists on the check. The map
     * is shared by all CPUs, so the adds must be atomic (BPF_ATOMIC | BPF_ADD). */
    if (stats) {
        __sync_fetch_and_add(&stats->packets, 1);
        __sync_fetch_and_add(&stats->bytes, skb->len);
    }
    return pipeline_verdict;
}

char LICENSE[] SEC("license") = "GPL";

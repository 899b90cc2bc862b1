// SPDX-License-Identifier: GPL-2.0
/* Test harness for the overlay program (tests/bpf/overlay_test.cpp), not part of bpfnet.
 * BPF_PROG_TEST_RUN cannot give a packet tunnel metadata: only a collect_md VXLAN device's receive
 * path attaches it, so a test run of bpfnet_from_vx stops at its first check. This program gives
 * the packet what that path would (bpf_skb_set_tunnel_key: the VNI and the sending VTEP, set by
 * the test in .bss before each run) and tail-calls the overlay program (slot 0 of decap_prog),
 * which then runs on the packet as it does on the VXLAN device. Verdicts no TC program returns say
 * that the harness itself failed. */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#define HARNESS_SET_KEY_FAILED 1000
#define HARNESS_TAIL_CALL_FAILED 1001

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} decap_prog SEC(".maps");

__u32 tunnel_vni;    /* the VNI the frame "arrived" with */
__u32 tunnel_remote; /* the sending VTEP's IPv4 address, host byte order as in bpf_tunnel_key */

SEC("tc")
int with_tunnel_key(struct __sk_buff* skb) {
    struct bpf_tunnel_key key = {
        .tunnel_id = tunnel_vni,
        .remote_ipv4 = tunnel_remote,
        .tunnel_ttl = 64,
    };
    if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) != 0) return HARNESS_SET_KEY_FAILED;
    bpf_tail_call(skb, &decap_prog, 0);
    return HARNESS_TAIL_CALL_FAILED;
}

char LICENSE[] SEC("license") = "GPL";

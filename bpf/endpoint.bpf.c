// SPDX-License-Identifier: GPL-2.0
/* The endpoint program: TC ingress on the host end of every endpoint veth, i.e. every packet a
 * container sends. Same-network traffic goes straight to the destination's sandbox with
 * bpf_redirect_peer, ARP for the gateway and local endpoints is answered here, and spoofed,
 * tagged, cross-network, icc=false and internal-leaving packets are dropped, counted and reported.
 * The logic is in lib/endpoint.h; the maps in lib/endpoint_maps.h. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/drop.h"
#include "lib/endpoint.h"

SEC("tc")
int bpfnet_from_ep(struct __sk_buff* skb) {
    struct bpfnet_pkt_info info = {};
    const int verdict = bpfnet_ep_ingress(skb, &info);

    if (verdict < 0) return bpfnet_drop(skb, &info, (__u32)-verdict);
    return bpfnet_trace(skb, &info, verdict);
}

char LICENSE[] SEC("license") = "GPL";

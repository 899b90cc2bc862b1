// SPDX-License-Identifier: GPL-2.0
/* The uplink programs: TC ingress of each uplink, and XDP where the driver runs it natively.
 * Connections from outside to published ports are tracked, DNATed and redirected into the
 * endpoint's sandbox; everything else goes on to the host. The logic is in lib/uplink.h; replies
 * are translated by the endpoint program (lib/reply_nat.h). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/drop.h"
#include "lib/uplink.h"
#include "lib/uplink_xdp.h"

SEC("tc")
int bpfnet_from_uplink(struct __sk_buff* skb) {
    struct bpfnet_pkt_info info = {};
    const int verdict = bpfnet_uplink_ingress(skb, &info);

    if (verdict < 0) return bpfnet_drop(skb, &info, (__u32)-verdict);
    return verdict;
}

/* The same in the driver's receive path, for uplinks that run XDP natively: the common case of
 * TCP/UDP flows to published ports (lib/uplink_xdp.h); the rest is passed to the TC program. */
SEC("xdp")
int bpfnet_up_xdp(struct xdp_md* ctx) {
    return bpfnet_uplink_xdp(ctx);
}

char LICENSE[] SEC("license") = "GPL";

// Attaching a TC program to a device's ingress so that it outlives the agent: as a tcx bpf_link
// pinned at <links_dir>/<ifname> (kernel >= 6.6), or as a cls_bpf filter on a clsact or ingress
// qdisc, which lives with the device (older kernels, and endpoint veths everywhere: see
// BpfDatapath::open). Re-attaching swaps the program in place, atomically (bpf_link_update, or
// BPF_TC_F_REPLACE), so a restarting agent never leaves a moment without a program.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace bpfnet {

struct TcIngressHook {
    std::string links_dir;       // where tcx links are pinned
    bool tcx = true;             // bpf_link (tcx) or a cls_bpf filter
    uint32_t clsact_handle = 1;  // the filter's handle; one per program kind
    // Without tcx, the filter's qdisc: clsact, or the ingress qdisc where only ingress is hooked
    // (endpoint veths: one tc block where clsact binds two; see kernel/ingress_qdisc.h).
    bool ingress_qdisc = false;
    // tcx: the program goes first in the device's chain (it must see packets before a program
    // that ends the chain with TC_ACT_OK). clsact keeps the order filters were added in.
    bool first = false;
};

// An endpoint veth's hook: a cls_bpf filter on the ingress qdisc, never tcx (see
// BpfDatapath::open); `links_dir` only names where earlier versions pinned tcx links.
TcIngressHook endpoint_veth_hook(std::string links_dir = "");

Status attach_tc_ingress(const TcIngressHook& hook, int prog_fd, const std::string& ifname,
                         int ifindex);
// Removes the pinned link (the link's only reference, so this detaches it) or, without tcx, the
// filter if the device still exists. Detaching what is not attached is success.
Status detach_tc_ingress(const TcIngressHook& hook, const std::string& ifname);
// Whether the device's ingress qdisc (clsact or ingress) holds bpfnet's filter with this handle.
bool clsact_filter_present(int ifindex, uint32_t handle);

}  // namespace bpfnet

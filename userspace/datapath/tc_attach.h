// Attaching a TC program to a device's ingress so that it outlives the agent: as a tcx bpf_link
// pinned at <links_dir>/<ifname> (kernel >= 6.6), or as a cls_bpf filter on a clsact qdisc, which
// lives with the device (older kernels, and endpoint veths everywhere: see BpfDatapath::open).
// Re-attaching swaps the program in place, atomically (bpf_link_update, or BPF_TC_F_REPLACE), so a
// restarting agent never leaves a moment without a program.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace bpfnet {

struct TcIngressHook {
    std::string links_dir;       // where tcx links are pinned
    bool tcx = true;             // bpf_link (tcx) or clsact
    uint32_t clsact_handle = 1;  // the filter's handle on clsact; one per program kind
    // tcx: the program goes first in the device's chain (it must see packets before a program
    // that ends the chain with TC_ACT_OK). clsact keeps the order filters were added in.
    bool first = false;
};

Status attach_tc_ingress(const TcIngressHook& hook, int prog_fd, const std::string& ifname,
                         int ifindex);
// Removes the pinned link (the link's only reference, so this detaches it) or, on clsact, the
// filter if the device still exists. Detaching what is not attached is success.
Status detach_tc_ingress(const TcIngressHook& hook, const std::string& ifname);
// Whether the device's clsact ingress holds bpfnet's filter with this handle.
bool clsact_filter_present(int ifindex, uint32_t handle);

}  // namespace bpfnet

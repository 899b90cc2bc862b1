#include "agent/drivers/network_driver.h"

#include <fmt/format.h>

#include "core/ipam.h"

namespace bpfnet {

Status check_bpf_requested(const BridgeOptions& options, const DatapathGraph& datapaths) {
    if (options.datapath != DatapathMode::Bpf || datapaths.has_bpf()) return {};
    return fail(ErrorKind::Unsupported,
                fmt::format("bpfnet.datapath=bpf: the BPF datapath cannot be used on this host "
                            "({}); use bpfnet.datapath=auto or kernel",
                            datapaths.bpf_unavailable()));
}

Result<Ipv4> NetworkDriver::allocate_address(const Network& network, const std::set<Ipv4>& used,
                                             std::optional<Ipv4> requested,
                                             const std::string& /*endpoint_id*/) {
    return bpfnet::allocate_address(network.ipam, used, requested, network.name);
}

}  // namespace bpfnet

#include "datapath/host_addresses.h"

#include "kernel/netlink.h"

namespace bpfnet {

Result<std::set<uint32_t>> host_ipv4_addresses() {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto addresses, kernel::list_all_ipv4_addresses(sock));
    std::set<uint32_t> out;
    for (const auto& a : addresses) out.insert(a.address.addr.network_order());
    return out;
}

}  // namespace bpfnet

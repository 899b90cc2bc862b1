// The host's own IPv4 addresses: what "any address" published ports apply to
// (bpfnet_local_ip) and what the published-port flow cleanup compares destinations with.
#pragma once

#include <cstdint>
#include <set>

#include "core/result.h"

namespace bpfnet {

// Every IPv4 address of the host's network namespace, in network byte order.
Result<std::set<uint32_t>> host_ipv4_addresses();

}  // namespace bpfnet

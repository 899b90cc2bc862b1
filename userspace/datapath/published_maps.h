// The published-port maps shared by the uplink program and the socket NAT: bpfnet_pub_port (host
// address, port, protocol -> endpoint address, port, network) and bpfnet_local_ip (the host's
// addresses, which "any address" bindings apply to).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "core/result.h"
#include "datapath/datapath.h"

namespace bpfnet {

// Makes bpfnet_pub_port exactly `ports` (stale entries first, so a wanted entry is never missing)
// and bpfnet_local_ip exactly the host's current IPv4 addresses.
Status sync_published_maps(int published_fd, int local_ips_fd,
                           const std::vector<PublishedPort>& ports);

// Makes bpfnet_local_ip exactly the host's current IPv4 addresses (also after address changes).
Status sync_local_ips(int local_ips_fd);

// Every IPv4 address of the host's network namespace, in network byte order.
Result<std::set<uint32_t>> host_ipv4_addresses();

}  // namespace bpfnet

// The published-port maps shared by the uplink program and the socket NAT: bpfnet_pub_port (host
// address, port, protocol -> endpoint address, port, network) and bpfnet_local_ip (the host's
// addresses, which "any address" bindings apply to).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "bpfnet/abi.h"
#include "core/result.h"
#include "datapath/datapath.h"

namespace bpfnet {

// bpfnet_pub_port's key for a binding.
bpfnet_svc_key published_key(const PortBinding& binding);
// Puts `ports` into bpfnet_pub_port (connect -p), or deletes them (an absent one is no error),
// leaving every other entry alone.
Status put_published_ports(int published_fd, const std::vector<PublishedPort>& ports);
Status delete_published_ports(int published_fd, const std::vector<PublishedPort>& ports);

// Makes bpfnet_pub_port exactly `ports` (stale entries first, so a wanted entry is never missing)
// and bpfnet_local_ip exactly the host's current IPv4 addresses.
Status sync_published_maps(int published_fd, int local_ips_fd,
                           const std::vector<PublishedPort>& ports);

// Makes bpfnet_local_ip exactly the host's current IPv4 addresses (also after address changes).
Status sync_local_ips(int local_ips_fd);

// Every IPv4 address of the host's network namespace, in network byte order.
Result<std::set<uint32_t>> host_ipv4_addresses();

}  // namespace bpfnet

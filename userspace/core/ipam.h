// IP address management with docker's rules: default pools, user subnets/ranges/gateways/aux
// addresses, static and dynamic endpoint addresses. Pure functions over the current allocations, so
// the agent can compute an allocation, persist it in one transaction, and never leak an address.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "core/model.h"
#include "core/result.h"

namespace bpfnet {

// Docker's default local address pools, in the order they are tried:
// 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 .. 192.168.240.0/20.
std::vector<Cidr> default_address_pools();

struct IpamRequest {
    std::optional<Cidr> subnet;
    std::optional<Ipv4> gateway;
    std::optional<Cidr> ip_range;
    std::map<std::string, Ipv4> aux_addresses;
};

// Plans a network's address configuration.
// - Without a subnet: the first default pool that overlaps neither `host_routes` (the host's IPv4
//   route destinations; the default route is ignored) nor `existing_subnets` (other networks).
// - With a subnet: it must be canonical-able (host bits are masked like docker), /30 or larger, and
//   must not overlap `existing_subnets` (Conflict).
// - Gateway: given (must be a host address of the subnet) or the first host address.
// - ip_range: must lie within the subnet. Aux addresses: within the subnet, distinct from gateway.
Result<IpamConfig> plan_network_ipam(const IpamRequest& request,
                                     const std::vector<Cidr>& host_routes,
                                     const std::vector<Cidr>& existing_subnets);

// Allocates an endpoint address. `used` holds addresses of the network's existing endpoints.
// - `requested` set: must be inside the subnet, not reserved (network, broadcast, gateway, aux) and
// not
//   used; only allowed when the network's subnet was user-specified (docker's rule).
// - otherwise: the lowest free address of ip_range (if set) or the subnet, skipping reserved ones.
// Exhaustion is ErrorKind::Exhausted. `network_name` is used in messages.
Result<Ipv4> allocate_address(const IpamConfig& ipam, const std::set<Ipv4>& used,
                              std::optional<Ipv4> requested, const std::string& network_name);

// ---- Pools for Docker's IpamDriver protocol ----------------------------------------------------

// The id of the pool for a subnet (and optional range): identical requests get the same pool.
std::string pool_id_for(const Cidr& subnet, const std::optional<Cidr>& ip_range);

// Allocates an address from a pool. `requested` must be a host address of the subnet not yet
// handed out; otherwise the lowest free host address of ip_range (or the subnet) is taken.
// Exhaustion is ErrorKind::Exhausted.
Result<Ipv4> allocate_pool_address(const AddressPool& pool, std::optional<Ipv4> requested);

}  // namespace bpfnet

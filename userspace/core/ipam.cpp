#include "core/ipam.h"

#include <fmt/format.h>

namespace bpfnet {

namespace {

// Smallest subnet with a host address left after the network, gateway and broadcast addresses.
constexpr uint8_t kMaxSubnetPrefixLen = 30;

bool overlaps_any(const Cidr& cidr, const std::vector<Cidr>& others) {
    for (const auto& other : others)
        if (cidr.overlaps(other)) return true;
    return false;
}

Result<Cidr> pick_default_pool(const std::vector<Cidr>& host_routes,
                               const std::vector<Cidr>& existing_subnets) {
    for (const auto& pool : default_address_pools()) {
        bool routed = false;
        for (const auto& route : host_routes) {
            // The default route covers everything; like docker, only specific routes mean the
            // pool is already reachable through some other interface.
            if (route.prefix_len != 0 && pool.overlaps(route)) routed = true;
        }
        if (!routed && !overlaps_any(pool, existing_subnets)) return pool;
    }
    return fail(ErrorKind::Exhausted,
                "could not find an available, non-overlapping IPv4 address pool among the defaults "
                "to assign to the network");
}

constexpr uint8_t kMinSubnetPrefixLen = 8;

Status check_user_subnet(const Cidr& subnet, const std::vector<Cidr>& existing_subnets) {
    if (subnet.prefix_len > kMaxSubnetPrefixLen) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("subnet {} is too small: a network needs at least a /{} for its "
                                "network, gateway, broadcast and one endpoint address",
                                subnet.str(), kMaxSubnetPrefixLen));
    }
    // A shorter prefix would swallow most of the address space (a /0 "network" would capture every
    // host route through its bridge); no docker default or sane user network is larger than a /8.
    if (subnet.prefix_len < kMinSubnetPrefixLen) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("subnet {} is too large: the largest allowed network is a /{}",
                                subnet.str(), kMinSubnetPrefixLen));
    }
    for (const auto& other : existing_subnets) {
        if (subnet.overlaps(other)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("subnet {} overlaps with an existing network's subnet {}",
                                    subnet.str(), other.masked().str()));
        }
    }
    return {};
}

Status check_gateway(const Cidr& subnet, Ipv4 gateway) {
    if (!subnet.contains(gateway)) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("gateway {} is not inside subnet {}", gateway.str(), subnet.str()));
    }
    if (gateway == subnet.network() || gateway == subnet.broadcast()) {
        return fail(
            ErrorKind::InvalidArgument,
            fmt::format("gateway {} is the {} address of subnet {}", gateway.str(),
                        gateway == subnet.network() ? "network" : "broadcast", subnet.str()));
    }
    return {};
}

// Names what a reserved address is reserved for, or nothing if it is free for endpoints.
std::optional<std::string> reserved_as(const IpamConfig& ipam, Ipv4 ip) {
    if (ip == ipam.subnet.network()) return "the network address";
    if (ip == ipam.subnet.broadcast()) return "the broadcast address";
    if (ip == ipam.gateway) return "the gateway";
    for (const auto& [name, aux] : ipam.aux_addresses)
        if (ip == aux) return fmt::format("auxiliary address \"{}\"", name);
    return std::nullopt;
}

}  // namespace

std::vector<Cidr> default_address_pools() {
    std::vector<Cidr> pools;
    for (uint32_t second = 17; second <= 31; ++second)
        pools.push_back(Cidr{Ipv4{(172u << 24) | (second << 16)}, 16});
    for (uint32_t third = 0; third <= 240; third += 16)
        pools.push_back(Cidr{Ipv4{(192u << 24) | (168u << 16) | (third << 8)}, 20});
    return pools;
}

Result<IpamConfig> plan_network_ipam(const IpamRequest& request,
                                     const std::vector<Cidr>& host_routes,
                                     const std::vector<Cidr>& existing_subnets) {
    IpamConfig ipam;
    ipam.user_subnet = request.subnet.has_value();
    if (request.subnet) {
        ipam.subnet = request.subnet->masked();
        BPFNET_TRY(check_user_subnet(ipam.subnet, existing_subnets));
    } else {
        // Docker's CLI rejects these without --subnet: they cannot be checked against a pool that
        // has not been chosen yet.
        if (request.gateway || request.ip_range) {
            return fail(ErrorKind::InvalidArgument,
                        "every ip-range or gateway must have a corresponding subnet");
        }
        if (!request.aux_addresses.empty()) {
            const auto& [name, ip] = *request.aux_addresses.begin();
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("no matching subnet for aux-address {}={}", name, ip.str()));
        }
        BPFNET_ASSIGN_OR_RETURN(ipam.subnet, pick_default_pool(host_routes, existing_subnets));
    }

    if (request.gateway) {
        BPFNET_TRY(check_gateway(ipam.subnet, *request.gateway));
        ipam.gateway = *request.gateway;
    } else {
        ipam.gateway = Ipv4{ipam.subnet.network().value + 1};
    }

    if (request.ip_range) {
        Cidr range = request.ip_range->masked();
        if (!ipam.subnet.contains(range)) {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format("ip range {} is not inside subnet {}", range.str(), ipam.subnet.str()));
        }
        ipam.ip_range = range;
    }

    for (const auto& [name, ip] : request.aux_addresses) {
        if (!ipam.subnet.contains(ip)) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("auxiliary address {}={} is not inside subnet {}", name,
                                    ip.str(), ipam.subnet.str()));
        }
        if (ip == ipam.gateway) {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format("auxiliary address {}={} is the network's gateway", name, ip.str()));
        }
    }
    ipam.aux_addresses = request.aux_addresses;
    return ipam;
}

Result<Ipv4> allocate_address(const IpamConfig& ipam, const std::set<Ipv4>& used,
                              std::optional<Ipv4> requested, const std::string& network_name) {
    if (requested) {
        if (!ipam.user_subnet) {
            return fail(ErrorKind::InvalidArgument,
                        "user specified IP address is supported only when connecting to networks "
                        "with user configured subnets");
        }
        // Like docker, a static address may lie outside ip_range: the range only steers dynamic
        // allocation away from addresses the user hands out by hand.
        if (!ipam.subnet.contains(*requested)) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("address {} is not in subnet {} of network {}",
                                    requested->str(), ipam.subnet.str(), network_name));
        }
        if (auto reserved = reserved_as(ipam, *requested)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("address {} is reserved as {} of network {}", requested->str(),
                                    *reserved, network_name));
        }
        if (used.count(*requested)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("address {} is already in use on network {}", requested->str(),
                                    network_name));
        }
        return *requested;
    }

    const Cidr& pool = ipam.ip_range ? *ipam.ip_range : ipam.subnet;
    // 64-bit so the loop terminates when the pool ends at 255.255.255.255. Every skipped candidate
    // is in `used` or reserved, so this runs at most used.size() + reserved + 1 times.
    const uint64_t last = pool.broadcast().value;
    for (uint64_t candidate = pool.network().value; candidate <= last; ++candidate) {
        Ipv4 ip{static_cast<uint32_t>(candidate)};
        if (!reserved_as(ipam, ip) && !used.count(ip)) return ip;
    }
    return fail(ErrorKind::Exhausted,
                fmt::format("no available IPv4 addresses on network {}", network_name));
}

std::string pool_id_for(const Cidr& subnet, const std::optional<Cidr>& ip_range) {
    std::string id = "bpfnet/" + subnet.masked().str();
    if (ip_range) id += "/" + ip_range->masked().str();
    return id;
}

Result<Ipv4> allocate_pool_address(const AddressPool& pool, std::optional<Ipv4> requested) {
    // A pool reserves only its network and broadcast addresses: the gateway is one of its
    // allocations (Docker asks for it like for any other address).
    IpamConfig ipam;
    ipam.subnet = pool.subnet;
    ipam.gateway = pool.subnet.network();
    ipam.ip_range = pool.ip_range;
    ipam.user_subnet = true;
    return allocate_address(ipam, pool.allocated, requested, "pool " + pool.id);
}

}  // namespace bpfnet

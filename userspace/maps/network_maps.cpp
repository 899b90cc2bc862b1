#include "maps/network_maps.h"

#include <cstring>
#include <utility>

namespace bpfnet {

NetworkMaps::NetworkMaps(int net_fd, int subnets_fd)
    : net_(net_fd, "bpfnet_net"), subnets_(subnets_fd, "bpfnet_subnets") {}

bpfnet_net_info NetworkMaps::encode(const NetworkEntry& network) {
    bpfnet_net_info info{};
    info.subnet = network.subnet.network().network_order();
    info.gateway = network.gateway.network_order();
    info.flags = network.flags;
    info.prefix_len = network.subnet.prefix_len;
    info.bridge_ifindex = network.bridge_ifindex;
    std::memcpy(info.gateway_mac, network.gateway_mac.bytes.data(), 6);
    return info;
}

bpfnet_lpm_v4 NetworkMaps::subnet_key(const Cidr& subnet) {
    return bpfnet_lpm_v4{.prefix_len = subnet.prefix_len, .addr = subnet.network().network_order()};
}

Status NetworkMaps::put(const NetworkEntry& network) {
    BPFNET_TRY(net_.put(network.id, encode(network)));
    return subnets_.put(subnet_key(network.subnet), network.id);
}

void NetworkMaps::drop(uint32_t id, const Cidr& subnet) {
    net_.erase(id);
    const bpfnet_lpm_v4 prefix = subnet_key(subnet);
    if (auto owner = subnets_.get(prefix); owner && *owner == id) subnets_.erase(prefix);
}

Status NetworkMaps::sync_other_bridges(const std::vector<Cidr>& subnets) {
    std::set<std::pair<uint32_t, uint32_t>> wanted;  // (prefix length, network-order address)
    for (const auto& subnet : subnets)
        wanted.insert({subnet.prefix_len, subnet.addr.network_order()});
    for (const auto& key : subnets_.keys()) {
        auto value = subnets_.get(key);
        if (value && *value == BPFNET_SUBNET_OTHER_BRIDGE &&
            !wanted.count({key.prefix_len, key.addr}))
            subnets_.erase(key);
    }
    for (const auto& [prefix_len, addr] : wanted) {
        // Insert only: a bpfnet network's own entry for the same prefix (never expected: IPAM
        // keeps networks off routed subnets) is not overwritten.
        BPFNET_TRY(subnets_.insert(bpfnet_lpm_v4{.prefix_len = prefix_len, .addr = addr},
                                   BPFNET_SUBNET_OTHER_BRIDGE));
    }
    return {};
}

void NetworkMaps::forget_networks_except(const std::set<uint32_t>& live) {
    for (uint32_t key : net_.keys())
        if (!live.count(key)) net_.erase(key);
}

void NetworkMaps::forget_subnets_except(const std::set<uint32_t>& live) {
    for (const auto& key : subnets_.keys()) {
        auto network = subnets_.get(key);
        if (network && *network != BPFNET_SUBNET_OTHER_BRIDGE && !live.count(*network))
            subnets_.erase(key);
    }
}

}  // namespace bpfnet

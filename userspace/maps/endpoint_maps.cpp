#include "maps/endpoint_maps.h"

#include <cstring>

#include <fmt/format.h>

namespace bpfnet {

namespace {

// A full endpoint map is the host's limit, said as such.
Status endpoint_status(Status st) {
    if (!st && st.error().kind == ErrorKind::Exhausted) {
        Error e = st.error();
        e.message = fmt::format("no room for another endpoint on this host ({} at most): {}",
                                BPFNET_MAX_ENDPOINTS, e.message);
        return fail(std::move(e));
    }
    return st;
}

bool same_mac(const uint8_t* mac, const MacAddr& want) {
    return std::memcmp(mac, want.bytes.data(), 6) == 0;
}

}  // namespace

EndpointMaps::EndpointMaps(int by_if_fd, int by_ip_fd, int stats_fd)
    : by_if_(by_if_fd, "bpfnet_ep_by_if"),
      by_ip_(by_ip_fd, "bpfnet_ep_by_ip"),
      stats_(stats_fd, "bpfnet_ep_stats") {}

bpfnet_endpoint EndpointMaps::encode_source(const EndpointEntry& endpoint) {
    bpfnet_endpoint src{};
    src.ip = endpoint.ip.network_order();
    src.network = endpoint.network;
    std::memcpy(src.mac, endpoint.mac.bytes.data(), 6);
    return src;
}

bpfnet_ep_key EndpointMaps::encode_key(uint32_t network, Ipv4 ip) {
    return bpfnet_ep_key{.network = network, .ip = ip.network_order()};
}

bpfnet_ep_dest EndpointMaps::encode_destination(const EndpointEntry& endpoint) {
    bpfnet_ep_dest dest{};
    dest.ifindex = endpoint.ifindex;
    std::memcpy(dest.mac, endpoint.mac.bytes.data(), 6);
    if (endpoint.xdp_target) dest.flags |= BPFNET_EP_F_XDP_TARGET;
    return dest;
}

Status EndpointMaps::put_source(const EndpointEntry& endpoint) {
    return endpoint_status(by_if_.put(endpoint.ifindex, encode_source(endpoint)));
}

Status EndpointMaps::put_destination(const EndpointEntry& endpoint) {
    return endpoint_status(
        by_ip_.put(encode_key(endpoint.network, endpoint.ip), encode_destination(endpoint)));
}

Status EndpointMaps::put(const EndpointEntry& endpoint) {
    BPFNET_TRY(put_source(endpoint));
    if (Status st = put_destination(endpoint); !st) {
        by_if_.erase(endpoint.ifindex);
        return st;
    }
    return {};
}

void EndpointMaps::drop_source(uint32_t ifindex) {
    by_if_.erase(ifindex);
    stats_.erase(ifindex);
}

std::vector<uint32_t> EndpointMaps::remove(std::optional<uint32_t> ifindex, Ipv4 ip,
                                           const MacAddr& mac) {
    const uint32_t addr = ip.network_order();
    auto same_endpoint = [&](const bpfnet_endpoint& src) {
        return src.ip == addr && same_mac(src.mac, mac);
    };
    std::vector<uint32_t> networks;
    if (auto src = ifindex ? by_if_.get(*ifindex) : std::nullopt; src && same_endpoint(*src)) {
        const bpfnet_ep_key key = encode_key(src->network, ip);
        if (auto dest = by_ip_.get(key); dest && same_mac(dest->mac, mac)) by_ip_.erase(key);
        drop_source(*ifindex);
        networks.push_back(src->network);
        return networks;
    }
    for (uint32_t key : by_if_.keys()) {
        if (auto src = by_if_.get(key); src && same_endpoint(*src)) {
            drop_source(key);
            networks.push_back(src->network);
        }
    }
    for (const auto& key : by_ip_.keys()) {
        if (key.ip != addr) continue;
        if (auto dest = by_ip_.get(key); dest && same_mac(dest->mac, mac)) by_ip_.erase(key);
    }
    return networks;
}

void EndpointMaps::forget_interfaces_if(const std::function<bool(uint32_t)>& gone) {
    for (uint32_t key : by_if_.keys())
        if (gone(key)) drop_source(key);
}

void EndpointMaps::forget_unbacked_destinations() {
    // A destination is only as good as the source entry of its veth: the same network and address
    // (anything else is left from an endpoint whose veth number was reused).
    for (const auto& key : by_ip_.keys()) {
        auto dest = by_ip_.get(key);
        if (!dest) continue;
        auto src = by_if_.get(dest->ifindex);
        const bool backed = src && src->network == key.network && src->ip == key.ip;
        if (!backed) by_ip_.erase(key);
    }
}

void EndpointMaps::forget_networks_except(const std::set<uint32_t>& live) {
    for (uint32_t key : by_if_.keys()) {
        if (auto src = by_if_.get(key); src && !live.count(src->network)) drop_source(key);
    }
    for (const auto& key : by_ip_.keys())
        if (!live.count(key.network)) by_ip_.erase(key);
}

}  // namespace bpfnet

#include "maps/published_port_maps.h"

#include <arpa/inet.h>

#include <tuple>

namespace bpfnet {

PublishedPortMaps::PublishedPortMaps(int published_fd, int local_ips_fd)
    : published_(published_fd, "bpfnet_pub_port"), local_ips_(local_ips_fd, "bpfnet_local_ip") {}

bpfnet_svc_key PublishedPortMaps::encode_key(const PortBinding& binding) {
    bpfnet_svc_key key{};
    key.host_ip = binding.host_ip.network_order();
    key.port = htons(binding.host_port);
    key.proto = static_cast<uint8_t>(binding.proto);
    return key;
}

bpfnet_svc_target PublishedPortMaps::encode_target(const PublishedPort& port) {
    bpfnet_svc_target target{};
    target.ip = port.endpoint_ip.network_order();
    target.network = port.network;
    target.port = htons(port.binding.container_port);
    return target;
}

Status PublishedPortMaps::put(const std::vector<PublishedPort>& ports) {
    for (const auto& p : ports) BPFNET_TRY(published_.put(encode_key(p.binding), encode_target(p)));
    return {};
}

Status PublishedPortMaps::erase(const std::vector<PublishedPort>& ports) {
    for (const auto& p : ports) BPFNET_TRY(published_.remove(encode_key(p.binding)));
    return {};
}

Status PublishedPortMaps::sync(const std::vector<PublishedPort>& ports) {
    auto id = [](const bpfnet_svc_key& k) { return std::tuple(k.host_ip, k.port, k.proto); };
    std::set<std::tuple<uint32_t, uint16_t, uint8_t>> wanted;
    for (const auto& p : ports) wanted.insert(id(encode_key(p.binding)));
    for (const auto& key : published_.keys())
        if (!wanted.count(id(key))) published_.erase(key);
    return put(ports);
}

Status PublishedPortMaps::sync_local_ips(const std::set<uint32_t>& addresses) {
    for (uint32_t ip : local_ips_.keys())
        if (!addresses.count(ip)) local_ips_.erase(ip);
    for (uint32_t ip : addresses) BPFNET_TRY(local_ips_.put(ip, 1));
    return {};
}

}  // namespace bpfnet

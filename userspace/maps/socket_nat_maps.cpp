#include "maps/socket_nat_maps.h"

namespace bpfnet {

// The BPF object names the config map bpfnet_sk_cfg; errors keep the name the agent has always
// reported (bpfnet_sock_cfg, after its value type).
SocketNatMaps::SocketNatMaps(int netns_fd, int cfg_fd)
    : netns_(netns_fd, "bpfnet_sk_netns"), cfg_(cfg_fd, "bpfnet_sock_cfg") {}

bpfnet_sk_netns_key SocketNatMaps::encode_key(uint64_t netns_cookie, uint32_t network) {
    return bpfnet_sk_netns_key{.netns_cookie = netns_cookie, .network = network, .pad = 0};
}

Status SocketNatMaps::set_host_netns(uint64_t netns_cookie) {
    return cfg_.put(0, bpfnet_sock_cfg{.host_netns_cookie = netns_cookie});
}

Status SocketNatMaps::allow_sandbox(uint64_t netns_cookie, uint32_t network) {
    return netns_.put(encode_key(netns_cookie, network), 1);
}

void SocketNatMaps::forget_sandbox(uint64_t netns_cookie, uint32_t network) {
    netns_.erase(encode_key(netns_cookie, network));
}

void SocketNatMaps::forget_networks_except(const std::set<uint32_t>& live) {
    for (const auto& key : netns_.keys())
        if (!live.count(key.network)) netns_.erase(key);
}

}  // namespace bpfnet

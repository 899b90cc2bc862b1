#include "maps/overlay_maps.h"

#include <arpa/inet.h>

#include <cstring>

namespace bpfnet {

OverlayMaps::OverlayMaps(int tunnel_fd, int vni_fd, int vx_cfg_fd)
    : tunnel_(tunnel_fd, "bpfnet_tunnel"),
      vni_(vni_fd, "bpfnet_vni"),
      vx_cfg_(vx_cfg_fd, "bpfnet_vx_cfg") {}

bpfnet_tunnel_dest OverlayMaps::encode_tunnel(uint32_t vni, const RemoteEndpoint& remote) {
    bpfnet_tunnel_dest dest{};
    dest.vtep = remote.vtep.network_order();
    dest.vni = vni;
    std::memcpy(dest.mac, remote.mac.bytes.data(), 6);
    return dest;
}

bpfnet_vx_cfg OverlayMaps::encode_config(const VxlanConfig& config) {
    return bpfnet_vx_cfg{.vxlan_ifindex = config.vxlan_ifindex,
                         .local_vtep = config.local_vtep.network_order(),
                         .port = htons(config.port),
                         .pad = 0,
                         .underlay_ifindex = config.underlay_ifindex};
}

Status OverlayMaps::set_config(const VxlanConfig& config) {
    return vx_cfg_.put(0, encode_config(config));
}

Status OverlayMaps::put_vni(uint32_t vni, uint32_t network) {
    return vni_.put(vni, network);
}

Status OverlayMaps::put_tunnel(uint32_t network, uint32_t vni, const RemoteEndpoint& remote) {
    return tunnel_.put(bpfnet_ep_key{.network = network, .ip = remote.ip.network_order()},
                       encode_tunnel(vni, remote));
}

Status OverlayMaps::sync_tunnels(uint32_t network, uint32_t vni,
                                 const std::vector<RemoteEndpoint>& remote) {
    std::set<uint32_t> wanted;
    for (const auto& r : remote) {
        BPFNET_TRY(put_tunnel(network, vni, r));
        wanted.insert(r.ip.network_order());
    }
    for (const auto& key : tunnel_.keys()) {
        auto dest = tunnel_.get(key);
        if (!dest) continue;
        const bool ours = key.network == network;
        if ((ours && !wanted.count(key.ip)) || (!ours && dest->vni == vni)) tunnel_.erase(key);
    }
    return {};
}

void OverlayMaps::forget_networks_except(const std::set<uint32_t>& live) {
    if (tunnel_.valid()) {
        for (const auto& key : tunnel_.keys())
            if (!live.count(key.network)) tunnel_.erase(key);
    }
    if (vni_.valid()) {
        for (uint32_t vni : vni_.keys()) {
            if (auto network = vni_.get(vni); network && !live.count(*network)) vni_.erase(vni);
        }
    }
}

}  // namespace bpfnet

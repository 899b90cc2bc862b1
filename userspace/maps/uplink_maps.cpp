#include "maps/uplink_maps.h"

#include <arpa/inet.h>

namespace bpfnet {

UplinkMaps::UplinkMaps(int uplinks_fd) : uplinks_(uplinks_fd, "bpfnet_uplinks") {}

bpfnet_uplink UplinkMaps::encode(const UplinkEgress& uplink) {
    bpfnet_uplink value{};
    value.snat_addr = uplink.snat_address.network_order();
    value.port_min = uplink.ports.first;
    value.port_max = uplink.ports.last;
    return value;
}

Status UplinkMaps::sync(const std::map<int, UplinkEgress>& uplinks) {
    for (uint32_t ifindex : uplinks_.keys())
        if (!uplinks.count(static_cast<int>(ifindex))) uplinks_.erase(ifindex);
    for (const auto& [ifindex, uplink] : uplinks)
        BPFNET_TRY(uplinks_.put(static_cast<uint32_t>(ifindex), encode(uplink)));
    return {};
}

std::map<int, bpfnet_uplink> UplinkMaps::entries() const {
    std::map<int, bpfnet_uplink> out;
    for (uint32_t ifindex : uplinks_.keys())
        if (auto value = uplinks_.get(ifindex)) out[static_cast<int>(ifindex)] = *value;
    return out;
}

}  // namespace bpfnet

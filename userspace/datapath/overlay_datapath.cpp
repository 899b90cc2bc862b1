#include "datapath/overlay_datapath.h"

#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/options.h"
#include "datapath/bpf_datapath.h"
#include "kernel/netlink.h"

namespace bpfnet {

namespace {

constexpr unsigned kVxlanOverhead = 50;  // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8

Result<uint32_t> vni_of(const Network& network) {
    auto it = network.options.find(kOverlayVniOption);
    uint32_t vni = 0;
    if (it == network.options.end() ||
        std::from_chars(it->second.data(), it->second.data() + it->second.size(), vni).ec !=
            std::errc{})
        return fail(ErrorKind::Internal,
                    fmt::format("overlay network {} has no VNI", network.name));
    return vni;
}

}  // namespace

std::string overlay_cluster_id(const Network& network) {
    auto it = network.options.find(kOverlayClusterOption);
    return it == network.options.end() || it->second.empty() ? network.id : it->second;
}

std::string overlay_bridge_name(const std::string& network_id) {
    return "bo-" + network_id.substr(0, 12);
}
std::string overlay_vxlan_name(const std::string& network_id) {
    return "vx-" + network_id.substr(0, 12);
}

Status OverlayDatapath::ensure_network(const NetworkSpec& spec) {
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(uint32_t vni, vni_of(network));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    // Underlay MTU minus the encapsulation, unless the user chose one.
    unsigned mtu = static_cast<unsigned>(spec.options.mtu);
    if (!network.options.count(opt::kMtu)) {
        BPFNET_ASSIGN_OR_RETURN(unsigned underlay, kernel::mtu_of_address(sock, vtep_));
        mtu = (underlay ? underlay : 1500) - kVxlanOverhead;
    }
    const std::string alias = kernel_.owner_alias("net", overlay_cluster_id(network));
    BPFNET_ASSIGN_OR_RETURN(auto bridge, kernel::find_link(sock, network.bridge_name));
    if (bridge && !kernel_.owned_by_us(bridge->alias))
        return fail(ErrorKind::Conflict,
                    fmt::format("interface {} exists and is not managed by this agent",
                                network.bridge_name));
    if (!bridge) BPFNET_TRY(kernel::create_bridge(sock, network.bridge_name, mtu, alias));
    const std::string vxlan = overlay_vxlan_name(overlay_cluster_id(network));
    BPFNET_ASSIGN_OR_RETURN(auto existing, kernel::find_link(sock, vxlan));
    if (bpf_) {
        // One device for every overlay on BPF; a per-network one left from a kernel-datapath run
        // would take this VNI's traffic, so it goes.
        if (existing && kernel_.owned_by_us(existing->alias))
            BPFNET_TRY(kernel::delete_link(sock, vxlan));
        BPFNET_TRY(kernel::set_link_up(sock, network.bridge_name));
        BPFNET_TRY(bpf_->enable_overlay(vtep_, port_, kernel_.owner_alias("vxlan", "host")));
        return bpf_->ensure_overlay_network(network, vni);
    }
    if (!existing) {
        BPFNET_TRY(kernel::create_vxlan(sock, {.name = vxlan,
                                               .vni = vni,
                                               .local = vtep_,
                                               .port = port_,
                                               .master = network.bridge_name,
                                               .mtu = mtu,
                                               .alias = alias}));
    }
    return kernel::set_link_up(sock, network.bridge_name);
}

Status OverlayDatapath::ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                        const Sandbox& sandbox) {
    // Always bridge ports: frames from other hosts come out of the VXLAN device into the bridge,
    // which can deliver them only to its ports.
    BridgeOptions options = spec.options;
    options.endpoint_mode = EndpointMode::Bridge;
    const NetworkSpec bridged{spec.network, options};
    return bpf_ ? bpf_->ensure_endpoint(bridged, endpoint, sandbox)
                : kernel_.ensure_endpoint(bridged, endpoint, sandbox);
}

Status OverlayDatapath::remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) {
    return bpf_ ? bpf_->remove_endpoint(endpoint, sandbox)
                : kernel_.remove_endpoint(endpoint, sandbox);
}

Status OverlayDatapath::remove_network(const Network& network) {
    if (bpf_) {
        auto vni = vni_of(network);
        if (vni) BPFNET_TRY(bpf_->remove_overlay_network(network, *vni));
    }
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    for (const auto& name :
         {overlay_vxlan_name(overlay_cluster_id(network)), network.bridge_name}) {
        BPFNET_ASSIGN_OR_RETURN(auto link, kernel::find_link(sock, name));
        if (link && kernel_.owned_by_us(link->alias)) BPFNET_TRY(kernel::delete_link(sock, name));
    }
    return {};
}

Status OverlayDatapath::sync_remote(const Network& network,
                                    const std::vector<kernel::RemoteEntry>& remote) {
    if (bpf_) {
        BPFNET_ASSIGN_OR_RETURN(uint32_t vni, vni_of(network));
        std::vector<BpfDatapath::Tunnel> tunnels;
        for (const auto& r : remote) tunnels.push_back({r.ip, r.mac, r.vtep});
        return bpf_->sync_tunnels(network, vni, tunnels);
    }
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    return kernel::sync_vxlan_entries(sock, overlay_vxlan_name(overlay_cluster_id(network)),
                                      remote);
}

}  // namespace bpfnet

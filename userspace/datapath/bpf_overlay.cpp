// The BPF datapath's part of overlay networks: the host's collect_md VXLAN device with the
// overlay program on its ingress, the underlay program on the device holding this host's VTEP
// address, and the maps the endpoint and overlay programs share (bpfnet_tunnel, bpfnet_vni,
// bpfnet_vx_cfg; see include/bpfnet/abi.h, section "overlay").
#include <bpf/libbpf.h>

#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpfnet/abi.h"
#include "core/pin_layout.h"
#include "datapath/bpf_datapath.h"
#include "datapath/bpf_datapath_state.h"
#include "datapath/pinned_maps.h"
#include "kernel/netlink.h"
#include "kernel/vxlan.h"

namespace bpfnet {

namespace {

constexpr const char* kVxlanDevice = "bpfnet_vx";
using pin_layout::kOverlayFilterHandle;
using pin_layout::kUnderlayFilterHandle;

}  // namespace

Status BpfDatapath::enable_overlay(Ipv4 vtep, uint16_t vxlan_port, const std::string& alias) {
    if (!state_->overlay_skel.is_loaded()) {
        LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = state_->pin_dir.c_str());
        BPFNET_TRY(state_->overlay_skel.open(&opts));
        BPFNET_TRY(drop_incompatible_pins(state_->overlay_skel->obj, state_->pin_dir));
        BPFNET_TRY(state_->overlay_skel.load());
        auto* skel = state_->overlay_skel.get();
        state_->overlay_maps =
            OverlayMaps(bpf_map__fd(state_->skel->maps.bpfnet_tunnel),
                        bpf_map__fd(skel->maps.bpfnet_vni), bpf_map__fd(skel->maps.bpfnet_vx_cfg));
        state_->overlay_hook = {state_->pin_dir + "/" + pin_layout::kOverlayLinks,
                                state_->uplink_hook.tcx, kOverlayFilterHandle};
        state_->underlay_hook = {state_->pin_dir + "/" + pin_layout::kUnderlayLinks,
                                 state_->uplink_hook.tcx, kUnderlayFilterHandle, true};
        std::error_code ec;
        std::filesystem::create_directories(state_->overlay_hook.links_dir, ec);
        std::filesystem::create_directories(state_->underlay_hook.links_dir, ec);
    }
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto device, kernel::find_link(sock, kVxlanDevice));
    if (!device) {
        BPFNET_TRY(kernel::create_vxlan_external(sock, kVxlanDevice, vxlan_port, alias));
        BPFNET_ASSIGN_OR_RETURN(device, kernel::find_link(sock, kVxlanDevice));
        if (!device) return fail(ErrorKind::Internal, "the VXLAN device vanished");
    }
    BPFNET_TRY(attach_tc_ingress(state_->overlay_hook,
                                 bpf_program__fd(state_->overlay_skel->progs.bpfnet_from_vx),
                                 kVxlanDevice, device->ifindex));
    VxlanConfig config{.vxlan_ifindex = static_cast<uint32_t>(device->ifindex),
                       .local_vtep = Ipv4{},
                       .port = vxlan_port,
                       .underlay_ifindex = 0};
    BPFNET_ASSIGN_OR_RETURN(auto underlay, kernel::link_of_address(sock, vtep));
    const std::string device_path =
        fmt::format("VXLAN through the collect_md device {} (port {})", kVxlanDevice, vxlan_port);
    if (!underlay) {
        state_->overlay_path =
            fmt::format("{}: no device holds the VTEP address {} (yet)", device_path, vtep.str());
    } else if (underlay->arptype != 1) {
        state_->overlay_path =
            fmt::format("{}: the underlay {} has no Ethernet header", device_path, underlay->name);
    } else {
        // The program is first on the device: an uplink program there ends the chain for what
        // it passes to the stack.
        Status attached =
            attach_tc_ingress(state_->underlay_hook,
                              bpf_program__fd(state_->overlay_skel->progs.bpfnet_from_underlay),
                              underlay->name, underlay->ifindex);
        if (!attached) {
            state_->overlay_path =
                fmt::format("{}: cannot attach to the underlay {}: {}", device_path, underlay->name,
                            attached.error().message);
        } else {
            config.local_vtep = vtep;
            config.underlay_ifindex = static_cast<uint32_t>(underlay->ifindex);
            state_->overlay_path = fmt::format(
                "VXLAN encapsulated and decapsulated in BPF on the underlay {} (VTEP {}, port {}); "
                "the collect_md device {} takes what BPF leaves",
                underlay->name, vtep.str(), vxlan_port, kVxlanDevice);
        }
    }
    // The underlay moved: the old device's program goes.
    if (!state_->underlay.empty() &&
        (!underlay || underlay->name != state_->underlay || config.local_vtep == Ipv4{})) {
        (void)detach_tc_ingress(state_->underlay_hook, state_->underlay);
    }
    state_->underlay = config.local_vtep == Ipv4{} ? std::string() : underlay->name;
    return state_->overlay_maps.set_config(config);
}

std::string BpfDatapath::overlay_path() const {
    // The uplink XDP program decapsulates too (lib/decap_xdp.h) where the underlay is an uplink
    // running it.
    if (!state_->underlay.empty() && state_->xdp_uplinks.count(state_->underlay))
        return fmt::format(
            "{}; on {} already in XDP (the uplink's program) for endpoints that "
            "take XDP frames",
            state_->overlay_path, state_->underlay);
    return state_->overlay_path;
}

Status BpfDatapath::ensure_overlay_network(const Network& network, uint32_t vni) {
    // No gateway: the overlay is L2 between containers.
    BPFNET_ASSIGN_OR_RETURN(
        uint32_t key,
        put_network_maps(network, Ipv4{},
                         BPFNET_NET_ICC | (network.internal ? BPFNET_NET_INTERNAL : 0)));
    return state_->overlay_maps.put_vni(vni, key);
}

Status BpfDatapath::remove_overlay_network(const Network& network, uint32_t vni) {
    BPFNET_TRY(sync_tunnels(network, vni, {}));
    state_->overlay_maps.erase_vni(vni);
    drop_network_maps(network);
    return {};
}

Status BpfDatapath::sync_tunnels(const Network& network, uint32_t vni,
                                 const std::vector<Tunnel>& remote) {
    if (!state_->overlay_maps.valid() || network.datapath_id == 0) return {};
    return state_->overlay_maps.sync_tunnels(network.datapath_id, vni, remote);
}

}  // namespace bpfnet

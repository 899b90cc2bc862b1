// The BPF datapath's part of overlay networks: the host's collect_md VXLAN device with the
// overlay program on its ingress, and the maps the endpoint and overlay programs share
// (bpfnet_tunnel, bpfnet_vni, bpfnet_vx_cfg; see include/bpfnet/abi.h, section "overlay").
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

}  // namespace

Status BpfDatapath::enable_overlay(uint16_t vxlan_port, const std::string& alias) {
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
                                state_->endpoint_hook.tcx, kOverlayFilterHandle};
        std::error_code ec;
        std::filesystem::create_directories(state_->overlay_hook.links_dir, ec);
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
    return state_->overlay_maps.set_vxlan_device(static_cast<uint32_t>(device->ifindex));
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

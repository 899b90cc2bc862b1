// The BPF datapath's loaded objects and what it keeps between calls; private to the datapath
// library (bpf_datapath.cpp, bpf_overlay.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "bpf/endpoint.skel.h"
#include "bpf/overlay.skel.h"
#include "bpf/uplink.skel.h"
#include "datapath/bpf_datapath.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/socket_nat.h"
#include "datapath/tc_attach.h"
#include "maps/conntrack_map.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"
#include "maps/overlay_maps.h"
#include "maps/published_port_maps.h"
#include "maps/uplink_maps.h"

namespace bpfnet {

struct BpfDatapath::State {
    BpfSkeleton<endpoint> skel;
    BpfSkeleton<uplink> uplink_skel;
    BpfDatapathOptions options;
    std::string pin_dir;
    TcIngressHook endpoint_hook;
    TcIngressHook uplink_hook;
    std::string xdp_links_dir;
    int prog_fd = -1, uplink_prog_fd = -1, uplink_xdp_fd = -1;
    // The maps, over the fds of the skeletons above (which own them).
    NetworkMaps networks;
    EndpointMaps endpoints;
    PublishedPortMaps ports;
    ConntrackMap conntrack;
    UplinkMaps uplink_maps;
    // Overlay (loaded by enable_overlay; not valid() until then).
    BpfSkeleton<overlay> overlay_skel;
    TcIngressHook overlay_hook;
    TcIngressHook underlay_hook;
    OverlayMaps overlay_maps;
    std::string underlay;      // the device the underlay program is on, empty if none
    std::string overlay_path;  // what overlay_path() reports
    // Uplinks the program is attached to, and what happened to each configured one (status).
    std::set<std::string> uplinks, xdp_uplinks;
    std::map<std::string, std::string> uplink_state;
    // Uplink name -> what egress through it gets (status), as last written to bpfnet_uplinks.
    std::map<std::string, UplinkEgress> egress_uplinks;
    // (host address, host port, proto) -> (endpoint address, port), all network order, as
    // published at the last sync.
    std::map<std::tuple<uint32_t, uint16_t, uint8_t>, std::pair<uint32_t, uint16_t>> published;
    std::unique_ptr<SocketNat> socket_nat;  // null where it cannot run: the kernel NAT serves
    std::string socket_nat_unavailable;
};

}  // namespace bpfnet

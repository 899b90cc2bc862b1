// The overlay's maps: bpfnet_tunnel ((network, address) -> a remote endpoint's host and MAC, read
// by the endpoint program to encapsulate), bpfnet_vni (VNI -> network, read by the overlay program
// to deliver what it decapsulates) and bpfnet_vx_cfg (the host's VXLAN device and underlay
// address). Written by the BPF datapath's overlay layer (bpf_overlay.cpp) from what the cluster
// says is where.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "bpfnet/abi.h"
#include "core/ipv4.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

// How this host carries overlay traffic (bpfnet_vx_cfg).
struct VxlanConfig {
    uint32_t vxlan_ifindex = 0;  // the collect_md device
    // This host's underlay address: where set, the endpoint program encapsulates and the underlay
    // program decapsulates; zero leaves both to the device.
    Ipv4 local_vtep;
    uint16_t port = 4789;
    uint32_t underlay_ifindex = 0;  // the device holding local_vtep
};

// An endpoint of an overlay network on another host.
struct RemoteEndpoint {
    Ipv4 ip;
    MacAddr mac;
    Ipv4 vtep;  // the other host's underlay address
};

class OverlayMaps {
  public:
    OverlayMaps() = default;
    OverlayMaps(int tunnel_fd, int vni_fd, int vx_cfg_fd);

    static bpfnet_tunnel_dest encode_tunnel(uint32_t vni, const RemoteEndpoint& remote);
    static bpfnet_vx_cfg encode_config(const VxlanConfig& config);

    // False until the overlay is enabled on this host.
    bool valid() const { return tunnel_.valid(); }

    Status set_config(const VxlanConfig& config);
    Status put_vni(uint32_t vni, uint32_t network);
    void erase_vni(uint32_t vni) { vni_.erase(vni); }
    Status put_tunnel(uint32_t network, uint32_t vni, const RemoteEndpoint& remote);
    // Makes the network's remote endpoints exactly `remote`; entries of the same VNI under
    // another network key go too.
    Status sync_tunnels(uint32_t network, uint32_t vni, const std::vector<RemoteEndpoint>& remote);
    // Tunnels, then VNIs, of networks not in `live`.
    void forget_networks_except(const std::set<uint32_t>& live);

  private:
    BpfMap<bpfnet_ep_key, bpfnet_tunnel_dest> tunnel_;
    BpfMap<uint32_t, uint32_t> vni_;
    BpfMap<uint32_t, bpfnet_vx_cfg> vx_cfg_;
};

}  // namespace bpfnet

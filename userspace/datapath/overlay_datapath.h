// Overlay networks on the kernel datapath, Docker's layout: per network a bridge without an
// address (`bo-<id12>`, pure L2: the overlay is not routed by the host) and a VXLAN device
// (`vx-<id12>`, the network's VNI, this host's VTEP, learning off, ARP proxy on) enslaved to it.
// Local endpoints are veth pairs into the bridge, as on bridge networks; remote endpoints (other
// hosts', from the cluster store) become static FDB entries (MAC -> VTEP) and permanent neighbour
// entries (IP -> MAC, which the VXLAN device answers ARP from) via sync_remote().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datapath/datapath.h"
#include "datapath/kernel_datapath.h"
#include "kernel/vxlan.h"

namespace bpfnet {

std::string overlay_bridge_name(const std::string& network_id);
std::string overlay_vxlan_name(const std::string& network_id);
// The network option carrying the VNI the cluster store gave the network.
inline constexpr const char* kOverlayVniOption = "bpfnet.vni";
// The network option naming the cluster's overlay a local network joins, when their IDs differ:
// Docker networks are per host, so the Docker network on a second host has its own ID but
// joins the overlay the first one created (same subnet).
inline constexpr const char* kOverlayClusterOption = "bpfnet.overlay";
// The overlay's ID in the cluster store: what its devices are named after and its records are
// keyed by.
std::string overlay_cluster_id(const Network& network);

class BpfDatapath;

class OverlayDatapath : public Datapath {
  public:
    // With `bpf` (null where BPF cannot run), overlay networks are VXLAN in BPF: one collect_md
    // device per host, encapsulation in the endpoint program, decapsulation by the overlay
    // program, remote endpoints in bpfnet_tunnel. Without it, the kernel layout above.
    OverlayDatapath(KernelDatapath& kernel, BpfDatapath* bpf, Ipv4 vtep, uint16_t vxlan_port)
        : kernel_(kernel), bpf_(bpf), vtep_(vtep), port_(vxlan_port) {}

    const char* name() const override { return bpf_ ? "bpf" : "kernel"; }
    std::string published_ports_path() const override { return "not applicable"; }
    Status ensure_network(const NetworkSpec& spec) override;
    Status remove_network(const Network& network) override;
    Status ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                           const Sandbox& sandbox) override;
    Status remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) override;
    Status sync_policy(const std::vector<NetworkSpec>&,
                       const std::vector<PublishedPort>&) override {
        return {};
    }
    Status remove_policy() override { return {}; }
    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>&) override {
        return std::vector<std::string>{};  // the kernel datapath's sweep covers our devices
    }

    // Makes the network's tunnel entries exactly the remote endpoints given.
    Status sync_remote(const Network& network, const std::vector<kernel::RemoteEntry>& remote);

  private:
    KernelDatapath& kernel_;
    BpfDatapath* bpf_;
    Ipv4 vtep_;
    uint16_t port_;
};

}  // namespace bpfnet

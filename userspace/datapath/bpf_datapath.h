// The BPF datapath for bridge networks. It keeps everything the kernel datapath builds (bridge with
// the gateway address, veth pairs, nftables policy for routed traffic) and adds the endpoint
// program at TC ingress of every endpoint's host-side veth: same-network traffic goes veth-to-veth
// with bpf_redirect_peer and never touches the bridge; ARP for the gateway and local endpoints is
// answered in BPF; spoofed, cross-network, icc=false and internal-leaving traffic is dropped and
// counted. The uplink program on the host's uplinks takes connections from outside to published
// ports straight to the endpoint (DNAT + conntrack in BPF), and the endpoint program sends the
// answers straight back out.
//
// State lives in maps pinned under <bpffs-root>/bpfnet/, in clsact filters on the endpoints' veths
// and in tcx links pinned under <bpffs-root>/bpfnet/*-links/ for the host's own devices, so the
// datapath keeps forwarding while the agent is stopped or killed; on start the agent reuses the
// pinned maps and swaps its freshly loaded programs in place (BPF_TC_F_REPLACE on a filter,
// bpf_link_update on a link): there is no moment without a program.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/ports.h"
#include "datapath/datapath.h"
#include "datapath/kernel_datapath.h"
#include "maps/overlay_maps.h"

namespace bpfnet {

struct BpfDatapathOptions {
    // Conntrack entries for published ports reached from outside (two per flow).
    uint32_t ct_max_entries = 262144;
    // Devices whose ingress gets the uplink program (published ports from outside). "auto" stands
    // for every device with a global address and a route (kernel/host_interfaces.h); no entries:
    // published ports are reached from outside through the kernel NAT only.
    std::vector<std::string> uplinks{"auto"};
    // XDP on uplinks, next to the TC program: "auto" where the driver runs XDP natively, except
    // veth (its peer may hand over packets with partial checksums, which XDP cannot see);
    // "always" wherever the driver runs it natively; "never".
    std::string uplink_xdp = "auto";
    // Ports egress flows are source-NATed to (and ICMP echo identifiers), on every uplink.
    PortRange snat_ports = kDefaultSnatPorts;
};

class BpfDatapath : public Datapath {
  public:
    // Loads the endpoint and uplink programs, reusing or creating the pinned maps under
    // <bpffs_root>/bpfnet. `tcx` chooses bpf_link (tcx) attachment for the host's devices
    // (uplinks, the VXLAN device, underlays); without it they get clsact filters. Endpoint veths
    // always get a clsact filter (see open()).
    static Result<std::unique_ptr<BpfDatapath>> open(KernelDatapath& kernel,
                                                     const std::string& bpffs_root, bool tcx,
                                                     const BpfDatapathOptions& options = {});
    ~BpfDatapath() override;

    const char* name() const override { return "bpf"; }
    Status ensure_network(const NetworkSpec& spec) override;
    Status remove_network(const Network& network) override;
    Status ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                           const Sandbox& sandbox) override;
    Status remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) override;
    Status sync_policy(const std::vector<NetworkSpec>& networks,
                       const std::vector<PublishedPort>& ports) override;
    Status remove_policy() override;
    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>& keep) override;
    // Drops every map entry of a network whose datapath ID is not in `live` (deleted while the
    // agent was down, or keyed the old way by a bridge ifindex before an upgrade).
    void forget_networks_except(const std::set<uint32_t>& live);

    // ---- overlay networks in BPF (encap in the endpoint program, decap in bpf/overlay.bpf.c) ----
    // The host's collect_md VXLAN device `bpfnet_vx` with the overlay program on its ingress, and
    // the underlay program on the device holding `vtep` (this host's VTEP address): with it, the
    // endpoint program encapsulates and the underlay program decapsulates, the device taking only
    // what they leave. Without such a device (or where the program cannot go on it) the device
    // does it all; overlay_path() says which.
    Status enable_overlay(Ipv4 vtep, uint16_t vxlan_port, const std::string& alias);
    // How overlay frames are carried on this host, and why, for status.
    std::string overlay_path() const;
    // The network in the endpoint maps (no gateway: the overlay is L2 between containers) and its
    // VNI in bpfnet_vni.
    Status ensure_overlay_network(const Network& network, uint32_t vni);
    Status remove_overlay_network(const Network& network, uint32_t vni);
    // Makes the network's remote endpoints (bpfnet_tunnel) exactly `remote`.
    using Tunnel = RemoteEndpoint;
    Status sync_tunnels(const Network& network, uint32_t vni, const std::vector<Tunnel>& remote);

    // Where maps and links are pinned (for status output and the inspection CLI).
    const std::string& pin_dir() const;
    std::string published_ports_path() const override;
    // Which uplinks egress leaves through in BPF, with their SNAT address and ports, for status.
    std::string egress_path() const override;
    Status publish_ports(const std::vector<PublishedPort>& ports) override;
    Status unpublish_ports(const std::vector<PublishedPort>& ports) override;
    // The host's interfaces changed (links, addresses, routes): uplinks re-attached as "auto"
    // now finds them, other bridges' subnets and the host's addresses re-written in the maps.
    Result<bool> refresh_host() override;

  private:
    struct State;
    explicit BpfDatapath(KernelDatapath& kernel, std::unique_ptr<State> state);
    Status sync_uplinks(const kernel::HostInterfaces& host);
    // bpfnet_subnets' entries for other bridges' subnets (BPFNET_SUBNET_OTHER_BRIDGE), exactly
    // those of `host`.
    Status sync_other_bridges(const kernel::HostInterfaces& host);
    // What the XDP program does on an uplink (attached or not, and why), for status.
    std::string sync_uplink_xdp(const std::string& ifname, int ifindex, const std::string& kind);
    bool xdp_may_run() const;
    void forget_sandbox_hairpin(const Sandbox& sandbox, uint32_t network);
    // The network in bpfnet_net (keyed by its datapath ID, which it returns) and bpfnet_subnets;
    // and out of them again.
    Result<uint32_t> put_network_maps(const Network& network, Ipv4 gateway, uint32_t flags);
    void drop_network_maps(const Network& network);
    // Remembers `ports` as what bpfnet_pub_port holds and ends the flows of ports no longer there.
    Status forget_unpublished_flows(const std::vector<PublishedPort>& ports);
    // Deletes the conntrack entries of flows to a host port that state_->published no longer
    // leads to their endpoint (a scan of the conntrack table: it runs only when ports went away).
    Status forget_flows_outside_published();

    KernelDatapath& kernel_;
    std::unique_ptr<State> state_;
};

}  // namespace bpfnet

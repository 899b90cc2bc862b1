// The agent's datapaths, built once at start and torn down in one place. One kernel layer makes
// bridges, veths and the nftables firewall and kernel NAT that span every network; where BPF can
// run, the BPF layer is composed over it (it asks the kernel layer for the bridge and the veth and
// adds its programs and maps); the other drivers' datapaths (macvlan/ipvlan child links, the
// overlay, host/none) sit beside them. Each network is served by one datapath, which the service
// asks for; what spans networks (the policy, published ports, the host's interfaces) goes through
// the graph, which gives each layer its part, so the service never calls two layers itself.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "datapath/datapath.h"

namespace bpfnet {

class BpfDatapath;
class KernelDatapath;
class OverlayDatapath;
struct BpfDatapathOptions;

// Which layer carries a bridge network's traffic.
enum class DatapathKind { Kernel, Bpf };
const char* to_string(DatapathKind kind);  // "kernel", "bpf": as status and inspect show it

// A network under the policy, with the layer that carries it. Overlay networks are given as
// Kernel: only the firewall (which lets their bridged frames through the host's FORWARD chain)
// sees them.
struct PolicyNetwork {
    NetworkSpec spec;
    DatapathKind kind;
};

class DatapathGraph {
  public:
    // The production graph: the kernel layer, the BPF layer over it unless `bpf_unavailable`
    // already says why not (then, or when loading fails, the reason is kept for status), and
    // the child-link and host/none datapaths.
    static std::unique_ptr<DatapathGraph> build(const std::string& instance,
                                                const std::string& bpffs_root, bool tcx,
                                                const BpfDatapathOptions& bpf_options,
                                                std::string bpf_unavailable);
    // A graph of given layers (tests: fakes in place of the kernel). `bpf` null: BPF unusable
    // for `bpf_unavailable`; `child_links` null: macvlan/ipvlan networks are refused.
    DatapathGraph(std::unique_ptr<Datapath> kernel, std::unique_ptr<Datapath> bpf,
                  std::string bpf_unavailable, std::unique_ptr<Datapath> child_links);
    // Each layer goes before the one it is built on: overlay, child links, BPF, kernel.
    ~DatapathGraph();
    DatapathGraph(const DatapathGraph&) = delete;
    DatapathGraph& operator=(const DatapathGraph&) = delete;

    // Overlay networks: VXLAN from this host's VTEP, in BPF where the BPF layer exists. Only a
    // built graph has the layers an overlay composes with.
    Status enable_overlay(Ipv4 vtep, uint16_t vxlan_port);
    OverlayDatapath* overlay() { return overlay_typed_; }
    bool has_overlay() const { return overlay_typed_ != nullptr; }
    const char* overlay_name() const;

    bool has_bpf() const { return bpf_ != nullptr; }
    const std::string& bpf_unavailable() const { return bpf_unavailable_; }
    // Where the BPF layer sends egress ("out of eth0 (SNAT 192.0.2.1, ports 61000-65535)"), for
    // status; empty without the BPF layer.
    std::string bpf_egress_path() const;
    // How the BPF datapath carries overlay frames (empty before the first overlay network).
    std::string bpf_overlay_path() const;
    bool has_child_links() const { return child_links_ != nullptr; }

    // The datapath serving a bridge network of that kind (Bpf only where has_bpf()).
    Datapath& bridge(DatapathKind kind);
    Datapath& child_links() { return *child_links_; }
    Datapath& none() { return *none_; }
    Datapath& overlay_or_none();

    // The firewall and kernel NAT for every network and port; the BPF layer's maps and uplinks
    // for the Bpf networks and their ports. Replaces what was applied before.
    Status sync_policy(const std::vector<PolicyNetwork>& networks,
                       const std::vector<PublishedPort>& ports);
    // One endpoint's published ports added or removed in the layers that carry its network (the
    // kernel NAT always, BPF's for a Bpf network). A failure means the caller syncs the policy.
    Status change_ports(DatapathKind kind, const std::vector<PublishedPort>& ports, bool publish);
    // The host's interfaces changed: every layer re-surveys; whether the policy must be synced.
    Result<bool> refresh_host();
    // What the store says exists, for collect_garbage.
    struct LiveObjects {
        std::set<std::string> links;         // host links this agent made (bridges, veths, ...)
        std::set<std::string> bpf_attached;  // host veths of endpoints on BPF networks
        std::set<uint32_t> networks;         // datapath IDs
    };
    // Host links this agent owns that are not live, deleted; endpoint programs on other veths of
    // ours detached (with or without a BPF layer now); BPF map entries of other networks
    // dropped. Returns what went, for the log.
    Result<std::vector<std::string>> collect_garbage(const LiveObjects& live);

    // For `bpfnet status`.
    std::map<std::string, std::string> published_ports_paths() const;
    std::string forward_firewall_state() const;
    std::string host_interfaces_state() const;

  private:
    DatapathGraph() = default;
    Result<std::vector<std::string>> detach_stray_endpoint_programs(
        const std::set<std::string>& bpf_endpoints);

    std::unique_ptr<Datapath> kernel_;
    KernelDatapath* kernel_typed_ = nullptr;  // set by build(): what the overlay composes with
    std::unique_ptr<Datapath> bpf_;
    BpfDatapath* bpf_typed_ = nullptr;
    std::string bpf_unavailable_;
    std::unique_ptr<Datapath> child_links_;
    std::unique_ptr<Datapath> none_;
    std::unique_ptr<Datapath> overlay_;
    OverlayDatapath* overlay_typed_ = nullptr;
};

}  // namespace bpfnet

// The overlay driver: networks that span the hosts of a cluster. Each is created once for the
// cluster through the cluster store (its subnet, VNI and every endpoint's address claimed there),
// mirrored on every other host by the store's watch, and carried between hosts by VXLAN (in BPF
// where BPF is usable, else the kernel's bridge + VXLAN device) with tunnel entries to the other
// hosts' endpoints. A Docker network on an overlay's subnet joins that overlay (Docker networks
// are per host) and replaces this host's mirror of it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "agent/drivers/network_driver.h"
#include "cluster/overlay_registry.h"
#include "datapath/overlay_datapath.h"
#include "store/store.h"

namespace bpfnet {

class OverlayDriver final : public NetworkDriver {
  public:
    OverlayDriver(Store& store, DatapathGraph& datapaths) : store_(store), datapaths_(datapaths) {}

    // The cluster store (given before reconcile); without it overlay networks are refused.
    void attach_cluster(OverlayRegistry* cluster) { cluster_ = cluster; }

    const char* name() const override { return driver::kOverlay; }
    Status check_request(const CreateNetworkRequest& request,
                         const BridgeOptions& options) const override;
    Result<NetworkPlan> plan(const CreateNetworkRequest& request, const Snapshot& snap,
                             Network& network) override;
    Status claim(const CreateNetworkRequest& request, Network& network) override;
    Status announce(const Network& network) override;
    void abandon(const Network& network) override;
    Status check_remove(const Network& network) const override;
    Status release(const Network& network) override;
    bool offered_to_docker() const override { return true; }

    DatapathChoice datapath_choice(const Network& network) const override;
    Datapath& datapath(const Network& network) override;
    // Not policed (its traffic stays in the network), but its bridged frames must still pass the
    // host's FORWARD chain (Docker's DROP policy): the firewall marks them as the kernel layer's.
    std::optional<DatapathKind> policed_as(const Network& /*network*/) const override {
        return DatapathKind::Kernel;
    }
    bool passes_through_policy() const override { return true; }
    // Its traffic stays in the network: none of the bridge options' policy applies.
    Result<BridgeOptions> policy_options(const Network& /*network*/) const override {
        return BridgeOptions{};
    }
    std::string firewall_summary(const Network& /*network*/) const override {
        return "overlay: VXLAN between hosts, not policed here";
    }
    std::string egress_summary(const Network& /*network*/) const override {
        return "none: an overlay has no gateway (containers reach the outside through another "
               "network)";
    }
    std::vector<std::string> extra_links(const Network& network) const override;

    // Cluster-wide IPAM: no two hosts hand out one address.
    Result<Ipv4> allocate_address(const Network& network, const std::set<Ipv4>& used,
                                  std::optional<Ipv4> requested,
                                  const std::string& endpoint_id) override;
    void release_address(const Network& network, const Endpoint& endpoint) override;
    // An overlay is pure L2 between containers: the host has no gateway on it (Docker gives the
    // container a second interface on docker_gwbridge for the way out).
    bool routes_outside(const Network& /*network*/) const override { return false; }
    // Nothing on the host forwards a port into an overlay (Docker publishes an overlay
    // container's ports on its docker_gwbridge interface, a bridge network).
    std::optional<Failure> refuses_ports() const override;
    void endpoint_joined(const Network& network, const Endpoint& endpoint) override;
    void endpoint_left(const Network& network, const Endpoint& endpoint) override;

    // A Docker network on an overlay was removed here: the overlay is mirrored again if other
    // hosts still use it, as on every host of the cluster.
    Status removed(const Network& network) override;
    // An overlay a Docker network created is known under Docker's name across the cluster too.
    Status renamed(const Network& network) override;

    // From the cluster store's watch: mirror overlays made on other hosts, drop those removed,
    // and program every overlay's tunnels to the other hosts' endpoints.
    Status sync_cluster();
    // After a restart: claim this host's overlay endpoints' addresses and publish them again.
    Status republish_endpoints();

  private:
    // Docker: the cluster overlay a new Docker network on this host joins (the one with the same
    // subnet; none: the Docker network creates the overlay). Refuses a mismatching VNI or MTU,
    // and a second Docker network on the same overlay.
    Result<std::optional<OverlayNetwork>> overlay_to_join(const CreateNetworkRequest& request,
                                                          const Snapshot& snap) const;
    // Whether `network` joined an overlay made elsewhere (rather than being one).
    static bool joined(const Network& network) { return overlay_cluster_id(network) != network.id; }

    Store& store_;
    DatapathGraph& datapaths_;
    OverlayRegistry* cluster_ = nullptr;
    // Overlay networks created here, by the revision of their cluster record: until the cluster
    // view has caught up with it, their absence from the view is not a removal.
    std::map<std::string, int64_t> created_at_;
};

}  // namespace bpfnet

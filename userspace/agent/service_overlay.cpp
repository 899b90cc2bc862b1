// Overlay networks: created cluster-wide through the cluster store (VNI and addresses claimed in
// etcd), mirrored on every host by the store's watch, and wired with tunnel entries to the other
// hosts' endpoints.
#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/service.h"
#include "agent/snapshot_queries.h"
#include "core/options.h"
#include "kernel/netlink.h"
#include "kernel/vxlan.h"

namespace bpfnet {

namespace {

constexpr const char* kVxlanIdOption = "com.docker.network.driver.overlay.vxlanid_list";

}  // namespace

void NetworkService::attach_cluster(OverlayRegistry* registry,
                                    std::unique_ptr<OverlayDatapath> overlay) {
    std::lock_guard lock(mutex_);
    cluster_ = registry;
    overlay_ = std::move(overlay);
}

Status NetworkService::plan_overlay_network_locked(const CreateNetworkRequest& request,
                                                   const Snapshot& snap, Network& network) {
    for (const auto& o : cluster_->networks()) {
        if (o.network.name == request.name)
            return fail(
                ErrorKind::Conflict,
                fmt::format("network with name {} already exists in the cluster", request.name));
    }
    (void)snap;
    std::optional<uint32_t> requested;
    if (auto it = request.options.find(kVxlanIdOption); it != request.options.end()) {
        // Docker's option is a list (one VNI per subnet); bpfnet networks have one subnet.
        const std::string first = it->second.substr(0, it->second.find(','));
        uint32_t vni = 0;
        auto [ptr, ec] = std::from_chars(first.data(), first.data() + first.size(), vni);
        if (first.empty() || ec != std::errc{} || ptr != first.data() + first.size())
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid value \"{}\" for option {}: expected a VNI",
                                    it->second, kVxlanIdOption));
        requested = vni;
    }
    // Every interface of the overlay gets the underlay's MTU minus the encapsulation (unless
    // the user chose one): a full-size inner frame would not fit into one outer packet.
    if (!network.options.count(opt::kMtu)) {
        BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
        BPFNET_ASSIGN_OR_RETURN(unsigned underlay, kernel::mtu_of_address(sock, cluster_->vtep()));
        network.options[opt::kMtu] = std::to_string((underlay ? underlay : 1500) - 50);
    }
    BPFNET_ASSIGN_OR_RETURN(uint32_t vni, cluster_->claim_vni(network.id, requested));
    network.options[kOverlayVniOption] = std::to_string(vni);
    return {};
}

void NetworkService::on_cluster_change() {
    std::lock_guard lock(mutex_);
    if (auto st = sync_overlay_locked(); !st)
        spdlog::warn("cluster: applying changes: {}", st.error().message);
}

Status NetworkService::sync_overlay_locked() {
    if (!cluster_ || !overlay_) return {};
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    const auto cluster_networks = cluster_->networks();
    // Networks other hosts made: mirror them here.
    for (const auto& o : cluster_networks) {
        if (network_by_id(snap.networks, o.network.id)) continue;
        Network network = o.network;
        network.state = Lifecycle::Ready;
        network.owner = Owner::Bpfnet;
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(network.options));
        BPFNET_TRY(overlay_->ensure_network(NetworkSpec{network, options}));
        BPFNET_TRY(store_->put_network(network));
        spdlog::info("cluster: overlay network {} ({}) VNI {} joined", network.name,
                     network.id.substr(0, 12), o.vni);
    }
    // Networks removed elsewhere go here too, unless something here still uses them.
    for (const auto& n : snap.networks) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        const bool in_cluster =
            std::any_of(cluster_networks.begin(), cluster_networks.end(),
                        [&](const OverlayNetwork& o) { return o.network.id == n.id; });
        if (in_cluster) {
            overlay_created_at_.erase(n.id);
            continue;
        }
        // Created here a moment ago: the watch has not delivered it yet.
        if (auto it = overlay_created_at_.find(n.id);
            it != overlay_created_at_.end() && cluster_->revision() < it->second)
            continue;
        const bool used = std::any_of(snap.endpoints.begin(), snap.endpoints.end(),
                                      [&](const Endpoint& e) { return e.network_id == n.id; });
        if (used) {
            spdlog::warn(
                "cluster: overlay network {} was removed elsewhere but has endpoints "
                "here; keeping it until they leave",
                n.name);
            continue;
        }
        BPFNET_TRY(overlay_->remove_network(n));
        BPFNET_TRY(store_->delete_network(n.id));
        spdlog::info("cluster: overlay network {} removed", n.name);
    }
    // Tunnels to every other host's endpoints.
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    for (const auto& n : networks) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        std::vector<kernel::RemoteEntry> remote;
        for (const auto& e : cluster_->endpoints(n.id)) {
            if (e.host == cluster_->host_id()) continue;
            remote.push_back({e.ip, e.mac, e.vtep});
        }
        BPFNET_TRY(overlay_->sync_remote(n, remote));
    }
    return {};
}

Status NetworkService::republish_overlay_endpoints() {
    std::lock_guard lock(mutex_);
    if (!cluster_) return {};
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    for (const auto& e : snap.endpoints) {
        const Network* network = network_by_id(snap.networks, e.network_id);
        if (!network || network->driver != driver::kOverlay || e.state != Lifecycle::Ready)
            continue;
        if (auto st = cluster_->reclaim_address(network->id, e.ip, e.id); !st) {
            spdlog::error("cluster: endpoint {} on {}: {}", e.id.substr(0, 12), network->name,
                          st.error().message);
            continue;
        }
        BPFNET_TRY(cluster_->publish_endpoint(
            {network->id, e.id, cluster_->host_id(), e.ip, e.mac, cluster_->vtep()}));
    }
    return sync_overlay_locked();
}

void NetworkService::withdraw_overlay_endpoint_locked(const Endpoint& endpoint) {
    if (!cluster_) return;
    if (auto st = cluster_->withdraw_endpoint(endpoint.network_id, endpoint.id); !st)
        spdlog::warn("cluster: withdrawing {}: {}", endpoint.id.substr(0, 12), st.error().message);
    if (auto st = cluster_->release_address(endpoint.network_id, endpoint.ip, endpoint.id); !st)
        spdlog::warn("cluster: releasing {}: {}", endpoint.ip.str(), st.error().message);
}

}  // namespace bpfnet

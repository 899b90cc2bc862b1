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

// The network as the cluster store knows it: under the overlay's cluster-wide ID.
Network cluster_view(const Network& network) {
    Network view = network;
    view.id = overlay_cluster_id(network);
    return view;
}

// A Docker network and a bpfnet one (made by the cluster's watch, or by `bpfnet network
// create`) for the same overlay on this host.
const Network* local_network_of_overlay(const std::vector<Network>& networks,
                                        const std::string& cluster_id) {
    for (const auto& n : networks)
        if (n.driver == driver::kOverlay && overlay_cluster_id(n) == cluster_id) return &n;
    return nullptr;
}

Result<std::optional<uint32_t>> requested_vni(const std::map<std::string, std::string>& options) {
    auto it = options.find(opt::kOverlayVxlanIds);
    if (it == options.end()) return std::optional<uint32_t>{};
    // Docker's option is a list (one VNI per subnet); bpfnet networks have one subnet.
    const std::string first = it->second.substr(0, it->second.find(','));
    uint32_t vni = 0;
    auto [ptr, ec] = std::from_chars(first.data(), first.data() + first.size(), vni);
    if (first.empty() || ec != std::errc{} || ptr != first.data() + first.size())
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid value \"{}\" for option {}: expected a VNI", it->second,
                                opt::kOverlayVxlanIds));
    return std::optional<uint32_t>{vni};
}

}  // namespace

Result<std::optional<OverlayNetwork>> NetworkService::docker_overlay_to_join_locked(
    const CreateNetworkRequest& request, const Snapshot& snap) {
    std::optional<OverlayNetwork> found;
    if (!request.ipam.subnet) return found;  // Docker always gives one
    const Cidr subnet = request.ipam.subnet->masked();
    for (const auto& o : cluster_->networks())
        if (o.network.ipam.subnet.masked() == subnet) found = o;
    if (!found) return found;
    const std::string& name = found->network.name;
    BPFNET_ASSIGN_OR_RETURN(std::optional<uint32_t> vni, requested_vni(request.options));
    if (vni && *vni != found->vni)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("overlay {} on subnet {} has VNI {}, not {}", name, subnet.str(),
                                found->vni, *vni));
    auto mtu = request.options.find(opt::kMtu);
    auto cluster_mtu = found->network.options.find(opt::kMtu);
    if (mtu != request.options.end() && cluster_mtu != found->network.options.end() &&
        mtu->second != cluster_mtu->second)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("overlay {} on subnet {} has MTU {}, not {}", name, subnet.str(),
                                cluster_mtu->second, mtu->second));
    if (const Network* local = local_network_of_overlay(snap.networks, found->network.id)) {
        if (local->owner == Owner::Docker)
            return fail(ErrorKind::Conflict,
                        fmt::format("Docker network {} on this host already joins overlay {} "
                                    "(subnet {})",
                                    local->name, name, subnet.str()));
        const bool used = std::any_of(snap.endpoints.begin(), snap.endpoints.end(),
                                      [&](const Endpoint& e) { return e.network_id == local->id; });
        if (used)
            return fail(ErrorKind::Conflict,
                        fmt::format("overlay {} (subnet {}) has bpfnet sandboxes on this host: "
                                    "disconnect them before Docker takes the network over",
                                    name, subnet.str()));
    }
    spdlog::info("docker: network {} joins overlay {} ({}) on subnet {}", request.id.substr(0, 12),
                 name, found->network.id.substr(0, 12), subnet.str());
    return found;
}

void NetworkService::attach_cluster(OverlayRegistry* registry) {
    std::lock_guard lock(mutex_);
    cluster_ = registry;
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
    BPFNET_ASSIGN_OR_RETURN(std::optional<uint32_t> requested, requested_vni(request.options));
    // Every interface of the overlay gets the underlay's MTU minus the encapsulation (unless
    // the user chose one): a full-size inner frame would not fit into one outer packet.
    if (!network.options.count(opt::kMtu)) {
        BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
        BPFNET_ASSIGN_OR_RETURN(unsigned underlay, kernel::mtu_of_address(sock, cluster_->vtep()));
        network.options[opt::kMtu] = std::to_string((underlay ? underlay : 1500) - 50);
    }
    BPFNET_TRY(cluster_->claim_subnet(network.ipam.subnet, network.id));
    auto vni = cluster_->claim_vni(network.id, requested);
    if (!vni) {
        (void)cluster_->release_subnet(network.ipam.subnet, network.id);
        return fail(vni.error());
    }
    network.options[kOverlayVniOption] = std::to_string(*vni);
    return {};
}

void NetworkService::on_cluster_change() {
    std::lock_guard lock(mutex_);
    if (auto st = sync_overlay_locked(); !st)
        spdlog::warn("cluster: applying changes: {}", st.error().message);
}

Status NetworkService::sync_overlay_locked() {
    if (!cluster_ || !datapaths_->has_overlay()) return {};
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    const auto cluster_networks = cluster_->networks();
    // Networks other hosts made: mirror them here.
    for (const auto& o : cluster_networks) {
        if (const Network* local = local_network_of_overlay(snap.networks, o.network.id)) {
            // A mirror follows the overlay's name (Docker names it after creating it).
            if (local->owner == Owner::Bpfnet && local->name != o.network.name &&
                !network_by_name(snap.networks, o.network.name)) {
                Network renamed = *local;
                renamed.name = o.network.name;
                BPFNET_TRY(store_->put_network(renamed));
            }
            continue;
        }
        Network network = o.network;
        network.state = Lifecycle::Ready;
        network.owner = Owner::Bpfnet;
        // A Docker network's definition names no overlay: it is the overlay.
        network.options.erase(kOverlayClusterOption);
        network.bridge_name = overlay_bridge_name(network.id);
        // The record carries the creating host's ID, which means nothing here.
        BPFNET_ASSIGN_OR_RETURN(network.datapath_id, store_->allocate_datapath_id());
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(network.options));
        BPFNET_TRY(datapaths_->overlay()->ensure_network(NetworkSpec{network, options}));
        BPFNET_TRY(store_->put_network(network));
        spdlog::info("cluster: overlay network {} ({}) VNI {} joined", network.name,
                     network.id.substr(0, 12), o.vni);
    }
    // Networks removed elsewhere go here too, unless something here still uses them.
    for (const auto& n : snap.networks) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        const std::string cluster_id = overlay_cluster_id(n);
        const bool in_cluster =
            std::any_of(cluster_networks.begin(), cluster_networks.end(),
                        [&](const OverlayNetwork& o) { return o.network.id == cluster_id; });
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
        if (used || n.owner == Owner::Docker) {
            spdlog::warn(
                "cluster: overlay network {} was removed elsewhere but {} here; keeping it", n.name,
                used ? "has endpoints" : "Docker has it");
            continue;
        }
        BPFNET_TRY(datapaths_->overlay()->remove_network(n));
        BPFNET_TRY(store_->delete_network(n.id));
        spdlog::info("cluster: overlay network {} removed", n.name);
    }
    // Tunnels to every other host's endpoints.
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    for (const auto& n : networks) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        std::vector<kernel::RemoteEntry> remote;
        for (const auto& e : cluster_->endpoints(overlay_cluster_id(n))) {
            if (e.host == cluster_->host_id()) continue;
            remote.push_back({e.ip, e.mac, e.vtep});
        }
        BPFNET_TRY(datapaths_->overlay()->sync_remote(n, remote));
    }
    return {};
}

Status NetworkService::leave_overlay_locked(const Network& network) {
    const std::string cluster_id = overlay_cluster_id(network);
    if (network.owner == Owner::Docker) {
        BPFNET_TRY(cluster_->detach(cluster_id));
        // Docker networks are per host: the overlay stays while another host's Docker network
        // or any endpoint still uses it.
        const auto attached = cluster_->attached_hosts(cluster_id);
        const auto remote = cluster_->endpoints(cluster_id);
        const bool in_use =
            !attached.empty() ||
            std::any_of(remote.begin(), remote.end(),
                        [&](const OverlayEndpoint& e) { return e.host != cluster_->host_id(); });
        if (in_use) {
            spdlog::info("cluster: overlay {} stays: other hosts still use it", network.name);
            return {};
        }
    }
    BPFNET_TRY(cluster_->delete_network(cluster_id));
    BPFNET_TRY(cluster_->release_subnet(network.ipam.subnet, cluster_id));
    auto vni = network.options.find(kOverlayVniOption);
    if (vni != network.options.end())
        BPFNET_TRY(
            cluster_->release_vni(static_cast<uint32_t>(std::stoul(vni->second)), cluster_id));
    return {};
}

Result<Ipv4> NetworkService::claim_overlay_address_locked(const Network& network,
                                                          std::optional<Ipv4> requested,
                                                          const std::string& endpoint_id) {
    auto ip = cluster_->claim_address(cluster_view(network), requested, endpoint_id);
    if (!ip && ip.error().kind == ErrorKind::Conflict && network.owner == Owner::Docker)
        return fail(ErrorKind::Conflict,
                    fmt::format("{} (addresses are unique across the cluster, but Docker's IPAM "
                                "hands them out per host: give each host its own --ip-range "
                                "within the subnet, or --ip)",
                                ip.error().message));
    return ip;
}

void NetworkService::publish_overlay_endpoint_locked(const Network& network,
                                                     const Endpoint& endpoint) {
    OverlayEndpoint published{overlay_cluster_id(network),
                              endpoint.id,
                              cluster_->host_id(),
                              endpoint.ip,
                              endpoint.mac,
                              cluster_->vtep()};
    if (auto st = cluster_->publish_endpoint(published); !st)
        spdlog::warn("cluster: publishing endpoint {} on {}: {} (retried at restart)",
                     endpoint.id.substr(0, 12), network.name, st.error().message);
}

Status NetworkService::republish_overlay_endpoints() {
    std::lock_guard lock(mutex_);
    if (!cluster_) return {};
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    for (const auto& n : snap.networks) {
        if (n.driver == driver::kOverlay && n.owner == Owner::Docker && n.state == Lifecycle::Ready)
            BPFNET_TRY(cluster_->attach(overlay_cluster_id(n)));
    }
    for (const auto& e : snap.endpoints) {
        const Network* network = network_by_id(snap.networks, e.network_id);
        if (!network || network->driver != driver::kOverlay || e.state != Lifecycle::Ready)
            continue;
        if (auto st = cluster_->reclaim_address(overlay_cluster_id(*network), e.ip, e.id); !st) {
            spdlog::error("cluster: endpoint {} on {}: {}", e.id.substr(0, 12), network->name,
                          st.error().message);
            continue;
        }
        // A Docker endpoint that is created but not joined holds its address but carries no
        // traffic yet.
        if (!e.sandbox_id.empty()) publish_overlay_endpoint_locked(*network, e);
    }
    return sync_overlay_locked();
}

void NetworkService::withdraw_overlay_endpoint_locked(const Network& network,
                                                      const Endpoint& endpoint) {
    if (!cluster_) return;
    if (auto st = cluster_->withdraw_endpoint(overlay_cluster_id(network), endpoint.id); !st)
        spdlog::warn("cluster: withdrawing {}: {}", endpoint.id.substr(0, 12), st.error().message);
}

void NetworkService::release_overlay_address_locked(const Network& network,
                                                    const Endpoint& endpoint) {
    if (!cluster_) return;
    if (auto st = cluster_->release_address(overlay_cluster_id(network), endpoint.ip, endpoint.id);
        !st)
        spdlog::warn("cluster: releasing {}: {}", endpoint.ip.str(), st.error().message);
}

}  // namespace bpfnet

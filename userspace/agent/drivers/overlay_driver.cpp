#include "agent/drivers/overlay_driver.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/snapshot_queries.h"
#include "datapath/overlay_datapath.h"
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

// The VNI a network recorded (its kOverlayVniOption); none if it has none or it is malformed.
std::optional<uint32_t> recorded_vni(const Network& network) {
    auto it = network.options.find(kOverlayVniOption);
    if (it == network.options.end()) return std::nullopt;
    uint32_t vni = 0;
    auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), vni);
    if (ec != std::errc{} || ptr != it->second.data() + it->second.size()) return std::nullopt;
    return vni;
}

}  // namespace

// ---- networks --------------------------------------------------------------------------------

Status OverlayDriver::check_request(const CreateNetworkRequest& request,
                                    const BridgeOptions& options) const {
    if (!cluster_) {
        return fail(ErrorKind::Unsupported,
                    "overlay networks need the cluster store: start bpfnetd with --store etcd "
                    "--etcd-endpoints URL --vtep-ip ADDRESS");
    }
    if (options.gateway_mode != GatewayMode::Nat)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{} applies to bridge networks only", opt::kGatewayModeIpv4));
    if (request.owner == Owner::Docker && !request.pool_id.empty())
        return fail(ErrorKind::InvalidArgument,
                    "an overlay takes its addresses from the cluster store: create it with "
                    "Docker's default IPAM, not --ipam-driver bpfnet");
    return check_bpf_requested(options, datapaths_);
}

Result<std::optional<OverlayNetwork>> OverlayDriver::overlay_to_join(
    const CreateNetworkRequest& request, const Snapshot& snap) const {
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

Result<NetworkPlan> OverlayDriver::plan(const CreateNetworkRequest& request, const Snapshot& snap,
                                        Network& network) {
    NetworkPlan plan;
    // The host does not route an overlay's subnet at all (but it must not clash with other
    // overlays').
    plan.subnet_avoids_host_routes = false;
    std::optional<OverlayNetwork> to_join;
    if (request.owner == Owner::Docker) {
        BPFNET_ASSIGN_OR_RETURN(to_join, overlay_to_join(request, snap));
    }
    if (to_join) {
        // This host's mirror of that overlay makes way for the Docker network.
        if (network_by_id(snap.networks, to_join->network.id)) plan.replaces = to_join->network.id;
        network.options[kOverlayClusterOption] = to_join->network.id;
        network.options[kOverlayVniOption] = std::to_string(to_join->vni);
        if (auto mtu = to_join->network.options.find(opt::kMtu);
            mtu != to_join->network.options.end())
            network.options[opt::kMtu] = mtu->second;
        network.bridge_name = overlay_bridge_name(to_join->network.id);
        return plan;
    }
    for (const auto& o : cluster_->networks()) {
        if (o.network.name == request.name)
            return fail(
                ErrorKind::Conflict,
                fmt::format("network with name {} already exists in the cluster", request.name));
        plan.reserved_subnets.push_back(o.network.ipam.subnet);
    }
    network.bridge_name = overlay_bridge_name(network.id);
    return plan;
}

Status OverlayDriver::claim(const CreateNetworkRequest& request, Network& network) {
    if (joined(network)) return {};  // the overlay's claims are its creator's
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

Status OverlayDriver::announce(const Network& network) {
    // Before the definition: the overlay must never look unused to the other hosts.
    if (network.owner == Owner::Docker) BPFNET_TRY(cluster_->attach(overlay_cluster_id(network)));
    if (joined(network)) return {};
    // Cluster-wide from here: the other hosts' watches mirror it.
    OverlayNetwork record{network, recorded_vni(network).value_or(0)};
    BPFNET_ASSIGN_OR_RETURN(int64_t revision, cluster_->put_network(record));
    created_at_[network.id] = revision;
    return {};
}

void OverlayDriver::abandon(const Network& network) {
    if (!cluster_) return;
    if (network.owner == Owner::Docker) (void)cluster_->detach(overlay_cluster_id(network));
    if (joined(network)) {
        // The mirror this network replaced comes back.
        if (auto st = sync_cluster(); !st) spdlog::error("rollback: {}", st.error().message);
        return;
    }
    (void)cluster_->delete_network(network.id);
    created_at_.erase(network.id);
    if (auto vni = recorded_vni(network)) (void)cluster_->release_vni(*vni, network.id);
    (void)cluster_->release_subnet(network.ipam.subnet, network.id);
}

Status OverlayDriver::check_remove(const Network& network) const {
    if (!cluster_) return {};
    for (const auto& e : cluster_->endpoints(network.id)) {
        if (e.host == cluster_->host_id()) continue;  // the service reports local ones
        return fail(ErrorKind::Conflict,
                    fmt::format("error while removing network: network {} id {} has active "
                                "endpoints (on host {})",
                                network.name, network.id, e.host));
    }
    for (const auto& host : cluster_->attached_hosts(network.id)) {
        return fail(ErrorKind::Conflict,
                    fmt::format("error while removing network: network {} is used by Docker on "
                                "host {}: remove it there with `docker network rm`",
                                network.name, host));
    }
    return {};
}

// Removing an overlay network here: the cluster's overlay goes too unless other hosts still use
// it (a Docker network joined to it, or endpoints).
Status OverlayDriver::release(const Network& network) {
    if (!cluster_) return {};
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
    if (auto vni = recorded_vni(network)) BPFNET_TRY(cluster_->release_vni(*vni, cluster_id));
    return {};
}

Status OverlayDriver::renamed(const Network& network) {
    if (!cluster_ || joined(network)) return {};
    auto record = cluster_->network(network.id);
    if (!record || record->network.name == network.name) return {};
    record->network.name = network.name;
    record->network.labels = network.labels;
    BPFNET_TRY(cluster_->put_network(*record));
    return {};
}

Status OverlayDriver::removed(const Network& network) {
    if (network.owner != Owner::Docker) return {};
    return sync_cluster();
}

// ---- datapath --------------------------------------------------------------------------------

DatapathChoice OverlayDriver::datapath_choice(const Network& /*network*/) const {
    if (!datapaths_.has_overlay())
        return {"none", "no cluster store: start bpfnetd with --store etcd"};
    if (datapaths_.has_bpf()) {
        const std::string path = datapaths_.bpf_overlay_path();
        return {
            "bpf",
            "overlay: forwarding in BPF, tunnel map from the cluster store; " +
                (path.empty() ? std::string("VXLAN set up with the first overlay network") : path),
            DatapathKind::Bpf};
    }
    return {
        "kernel",
        "overlay: bridge + VXLAN with tunnel entries from the cluster store (BPF unavailable: " +
            datapaths_.bpf_unavailable() + ")"};
}

Datapath& OverlayDriver::datapath(const Network& /*network*/) {
    return datapaths_.overlay_or_none();
}

std::vector<std::string> OverlayDriver::extra_links(const Network& network) const {
    return {overlay_vxlan_name(overlay_cluster_id(network))};
}

// ---- endpoints -------------------------------------------------------------------------------

Result<Ipv4> OverlayDriver::allocate_address(const Network& network, const std::set<Ipv4>& used,
                                             std::optional<Ipv4> requested,
                                             const std::string& endpoint_id) {
    if (!cluster_) return NetworkDriver::allocate_address(network, used, requested, endpoint_id);
    auto ip = cluster_->claim_address(cluster_view(network), requested, endpoint_id);
    if (!ip && ip.error().kind == ErrorKind::Conflict && network.owner == Owner::Docker)
        return fail(ErrorKind::Conflict,
                    fmt::format("{} (addresses are unique across the cluster, but Docker's IPAM "
                                "hands them out per host: give each host its own --ip-range "
                                "within the subnet, or --ip)",
                                ip.error().message));
    return ip;
}

void OverlayDriver::release_address(const Network& network, const Endpoint& endpoint) {
    if (!cluster_) return;
    if (auto st = cluster_->release_address(overlay_cluster_id(network), endpoint.ip, endpoint.id);
        !st)
        spdlog::warn("cluster: releasing {}: {}", endpoint.ip.str(), st.error().message);
}

std::optional<Failure> OverlayDriver::refuses_ports() const {
    return fail(ErrorKind::InvalidArgument,
                "port publishing is not supported on overlay networks: the host has no address "
                "on them; publish the port on a bridge network the sandbox is also on");
}

void OverlayDriver::endpoint_joined(const Network& network, const Endpoint& endpoint) {
    if (!cluster_) return;
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

void OverlayDriver::endpoint_left(const Network& network, const Endpoint& endpoint) {
    if (!cluster_) return;
    // The other hosts stop sending to it.
    if (auto st = cluster_->withdraw_endpoint(overlay_cluster_id(network), endpoint.id); !st)
        spdlog::warn("cluster: withdrawing {}: {}", endpoint.id.substr(0, 12), st.error().message);
}

// ---- the cluster's view ----------------------------------------------------------------------

Status OverlayDriver::republish_endpoints() {
    if (!cluster_) return {};
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_.networks());
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_.endpoints());
    for (const auto& n : networks) {
        if (n.driver == driver::kOverlay && n.owner == Owner::Docker && n.state == Lifecycle::Ready)
            BPFNET_TRY(cluster_->attach(overlay_cluster_id(n)));
    }
    for (const auto& e : endpoints) {
        const Network* network = network_by_id(networks, e.network_id);
        if (!network || network->driver != driver::kOverlay || e.state != Lifecycle::Ready)
            continue;
        if (auto st = cluster_->reclaim_address(overlay_cluster_id(*network), e.ip, e.id); !st) {
            spdlog::error("cluster: endpoint {} on {}: {}", e.id.substr(0, 12), network->name,
                          st.error().message);
            continue;
        }
        // A Docker endpoint that is created but not joined holds its address but carries no
        // traffic yet.
        if (!e.sandbox_id.empty()) endpoint_joined(*network, e);
    }
    return sync_cluster();
}

Status OverlayDriver::sync_cluster() {
    if (!cluster_ || !datapaths_.has_overlay()) return {};
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_.networks());
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_.endpoints());
    const auto cluster_networks = cluster_->networks();
    // Networks other hosts made: mirror them here.
    for (const auto& o : cluster_networks) {
        if (const Network* local = local_network_of_overlay(networks, o.network.id)) {
            // A mirror follows the overlay's name (Docker names it after creating it).
            if (local->owner == Owner::Bpfnet && local->name != o.network.name &&
                !network_by_name(networks, o.network.name)) {
                Network renamed = *local;
                renamed.name = o.network.name;
                BPFNET_TRY(store_.put_network(renamed));
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
        BPFNET_ASSIGN_OR_RETURN(network.datapath_id, store_.allocate_datapath_id());
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(network.options));
        BPFNET_TRY(datapaths_.overlay()->ensure_network(NetworkSpec{network, options}));
        BPFNET_TRY(store_.put_network(network));
        spdlog::info("cluster: overlay network {} ({}) VNI {} joined", network.name,
                     network.id.substr(0, 12), o.vni);
    }
    // Networks removed elsewhere go here too, unless something here still uses them.
    for (const auto& n : networks) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        const std::string cluster_id = overlay_cluster_id(n);
        const bool in_cluster =
            std::any_of(cluster_networks.begin(), cluster_networks.end(),
                        [&](const OverlayNetwork& o) { return o.network.id == cluster_id; });
        if (in_cluster) {
            created_at_.erase(n.id);
            continue;
        }
        // Created here a moment ago: the watch has not delivered it yet.
        if (auto it = created_at_.find(n.id);
            it != created_at_.end() && cluster_->revision() < it->second)
            continue;
        const bool used = std::any_of(endpoints.begin(), endpoints.end(),
                                      [&](const Endpoint& e) { return e.network_id == n.id; });
        if (used || n.owner == Owner::Docker) {
            spdlog::warn(
                "cluster: overlay network {} was removed elsewhere but {} here; keeping it", n.name,
                used ? "has endpoints" : "Docker has it");
            continue;
        }
        BPFNET_TRY(datapaths_.overlay()->remove_network(n));
        BPFNET_TRY(store_.delete_network(n.id));
        spdlog::info("cluster: overlay network {} removed", n.name);
    }
    // Tunnels to every other host's endpoints.
    BPFNET_ASSIGN_OR_RETURN(auto now, store_.networks());
    for (const auto& n : now) {
        if (n.driver != driver::kOverlay || n.state != Lifecycle::Ready) continue;
        std::vector<kernel::RemoteEntry> remote;
        for (const auto& e : cluster_->endpoints(overlay_cluster_id(n))) {
            if (e.host == cluster_->host_id()) continue;
            remote.push_back({e.ip, e.mac, e.vtep});
        }
        BPFNET_TRY(datapaths_.overlay()->sync_remote(n, remote));
    }
    return {};
}

}  // namespace bpfnet

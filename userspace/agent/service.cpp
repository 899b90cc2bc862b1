#include "agent/service.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/failpoint.h"
#include "agent/snapshot_queries.h"
#include "core/ids.h"
#include "datapath/kernel_datapath.h"
#include "datapath/null_datapath.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"
#include "kernel/port_probe.h"
#include "kernel/sysctl.h"

namespace bpfnet {

namespace {

// The sandbox end of an endpoint is <prefix><N> (eth0, eth1, ... by default) with the lowest N
// the sandbox does not use yet.
std::string next_ifname(const std::vector<Endpoint>& sandbox_endpoints, const std::string& prefix) {
    for (int n = 0;; ++n) {
        auto name = fmt::format("{}{}", prefix, n);
        bool used = std::any_of(sandbox_endpoints.begin(), sandbox_endpoints.end(),
                                [&](const Endpoint& e) { return e.ifname == name; });
        if (!used) return name;
    }
}

}  // namespace

NetworkService::NetworkService(ServiceConfig config, std::string instance,
                               std::unique_ptr<Store> store,
                               std::unique_ptr<DatapathGraph> datapaths, ProbeResult probe)
    : config_(std::move(config)),
      instance_(std::move(instance)),
      store_(std::move(store)),
      datapaths_(std::move(datapaths)),
      probe_(std::move(probe)) {}

NetworkService::~NetworkService() = default;

Result<NetworkService::Snapshot> NetworkService::load() {
    Snapshot snap;
    BPFNET_ASSIGN_OR_RETURN(snap.networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(snap.endpoints, store_->endpoints());
    BPFNET_ASSIGN_OR_RETURN(snap.sandboxes, store_->sandboxes());
    auto by_created = [](const auto& a, const auto& b) { return a.created < b.created; };
    std::sort(snap.networks.begin(), snap.networks.end(), by_created);
    std::sort(snap.endpoints.begin(), snap.endpoints.end(), by_created);
    std::sort(snap.sandboxes.begin(), snap.sandboxes.end(), by_created);
    return snap;
}

Result<NetworkService::Snapshot> NetworkService::load_scope(const Sandbox& sandbox) {
    Snapshot snap;
    BPFNET_ASSIGN_OR_RETURN(snap.networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(snap.endpoints, store_->endpoints_of_sandbox(sandbox.id));
    snap.sandboxes.push_back(sandbox);
    auto by_created = [](const auto& a, const auto& b) { return a.created < b.created; };
    std::sort(snap.networks.begin(), snap.networks.end(), by_created);
    std::sort(snap.endpoints.begin(), snap.endpoints.end(), by_created);
    return snap;
}

Result<Sandbox> NetworkService::resolve_sandbox_locked(const std::string& ref) {
    BPFNET_ASSIGN_OR_RETURN(auto candidates, store_->sandboxes_matching(ref));
    return resolve_ref(candidates, ref, "sandbox");
}

Result<NetworkService::Snapshot> NetworkService::snapshot() {
    std::lock_guard lock(mutex_);
    return load();
}

Result<BridgeOptions> NetworkService::options_of(const Network& network) const {
    return parse_bridge_options(network.options);
}

DatapathChoice NetworkService::datapath_choice(const Network& network) const {
    if (is_child_link_driver(network.driver)) {
        return {network.driver, fmt::format("the kernel's {} driver on parent {} (no BPF datapath "
                                            "for this driver)",
                                            network.driver, network.parent)};
    }
    if (network.driver == driver::kOverlay) {
        if (!datapaths_->has_overlay())
            return {"none", "no cluster store: start bpfnetd with --store etcd"};
        if (datapaths_->has_bpf())
            return {"bpf",
                    "overlay: VXLAN in BPF (collect_md device, tunnel map from the cluster "
                    "store)",
                    DatapathKind::Bpf};
        return {"kernel",
                "overlay: bridge + VXLAN with tunnel entries from the cluster store "
                "(BPF unavailable: " +
                    datapaths_->bpf_unavailable() + ")"};
    }
    if (network.driver == driver::kHost) return {"host", "the host's own network namespace"};
    if (network.driver == driver::kNull) return {"none", "loopback only"};
    auto options = parse_bridge_options(network.options);
    DatapathMode mode = options ? options->datapath : DatapathMode::Auto;
    if (mode == DatapathMode::Kernel) return {"kernel", "requested with bpfnet.datapath=kernel"};
    if (!datapaths_->has_bpf())
        return {"kernel", "BPF unavailable: " + datapaths_->bpf_unavailable()};
    if (mode == DatapathMode::Bpf)
        return {"bpf", "requested with bpfnet.datapath=bpf", DatapathKind::Bpf};
    return {"bpf", "probe passed (bpfnet.datapath=auto)", DatapathKind::Bpf};
}

std::map<std::string, std::string> NetworkService::published_ports_paths() const {
    return datapaths_->published_ports_paths();
}

std::string NetworkService::forward_firewall_state() const {
    return datapaths_->forward_firewall_state();
}

std::string NetworkService::host_interfaces_state() const {
    return datapaths_->host_interfaces_state();
}

std::string NetworkService::firewall_summary(const Network& network) const {
    if (network.driver == driver::kOverlay) return "overlay: VXLAN between hosts, not policed here";
    if (network.driver != driver::kBridge) return "";
    auto options = options_of(network);
    if (!options) return options.error().message;
    const GatewayMode mode = options->gateway_mode;
    std::vector<std::string> parts{fmt::format("gateway_mode_ipv4 {}", to_string(mode))};
    if (network.internal) {
        parts.emplace_back("internal: nothing in or out");
    } else {
        const bool masquerade = options->enable_ip_masquerade && mode != GatewayMode::Routed;
        parts.emplace_back(masquerade ? "outbound masqueraded" : "outbound not translated");
        switch (mode) {
            case GatewayMode::NatUnprotected:
                parts.emplace_back("every container port routable from outside");
                break;
            case GatewayMode::Routed:
                parts.emplace_back("published container ports and ICMP routable, nothing else");
                break;
            default:
                parts.emplace_back(
                    options->trusted_host_interfaces.empty()
                        ? std::string("direct routing to containers dropped")
                        : fmt::format("direct routing to containers dropped but from {}",
                                      fmt::join(options->trusted_host_interfaces, ", ")));
        }
        parts.emplace_back("isolated from other networks and bridges");
    }
    if (mode == GatewayMode::Isolated) parts.emplace_back("bridge without an address");
    return fmt::format("{}", fmt::join(parts, "; "));
}

Datapath& NetworkService::datapath_for(const Network& network) {
    if (network.driver == driver::kOverlay) return datapaths_->overlay_or_none();
    if (is_child_link_driver(network.driver) && datapaths_->has_child_links())
        return datapaths_->child_links();
    if (is_builtin_only_driver(network.driver) || is_child_link_driver(network.driver))
        return datapaths_->none();  // a child-link network without its datapath can only go
    return datapaths_->bridge(datapath_choice(network).kind);
}

Status NetworkService::sync_policy_locked(const std::vector<Network>& networks) {
    std::vector<BridgeOptions> options;
    options.reserve(networks.size());
    std::vector<const Network*> live;
    std::vector<const Network*> overlays;
    for (const auto& n : networks) {
        if (n.state == Lifecycle::Deleting) continue;
        // Bridge networks have a bridge for the firewall and the NAT to act on. An overlay's
        // bridge is not policed here (its traffic stays in the network), but its bridged frames
        // must still pass the host's FORWARD chain (Docker's DROP policy): the firewall marks them.
        if (n.driver == driver::kOverlay) overlays.push_back(&n);
        if (n.driver != driver::kBridge) continue;
        auto parsed = options_of(n);
        if (!parsed) return fail(parsed.error());
        options.push_back(*parsed);
        live.push_back(&n);
    }
    std::vector<NetworkSpec> specs;
    for (size_t i = 0; i < live.size(); ++i) specs.push_back(NetworkSpec{*live[i], options[i]});
    const BridgeOptions overlay_options{};
    // Ports of ready endpoints only: an endpoint being created gets its NAT once it is ready, one
    // being removed loses it before its interface goes.
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_->endpoints());
    std::vector<PublishedPort> ports;
    for (const auto& e : endpoints) {
        if (e.state != Lifecycle::Ready || e.ports.empty()) continue;
        auto network = std::find_if(live.begin(), live.end(),
                                    [&](const Network* n) { return n->id == e.network_id; });
        if (network == live.end()) continue;
        const bool routed = options[network - live.begin()].gateway_mode == GatewayMode::Routed;
        for (const auto& binding : e.ports) {
            ports.push_back(PublishedPort{binding, e.ip, (*network)->bridge_name,
                                          (*network)->ipam.subnet, routed,
                                          (*network)->datapath_id});
        }
    }
    std::vector<PolicyNetwork> policed;
    for (const auto& spec : specs) policed.push_back({spec, datapath_choice(spec.network).kind});
    for (const Network* n : overlays)
        policed.push_back({NetworkSpec{*n, overlay_options}, DatapathKind::Kernel});
    return datapaths_->sync_policy(policed, ports);
}

Status NetworkService::change_published_ports_locked(const Network& network,
                                                     const Endpoint& endpoint, bool publish) {
    if (endpoint.ports.empty() || network.driver != driver::kBridge) return {};
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(network));
    std::vector<PublishedPort> ports;
    for (const auto& binding : endpoint.ports) {
        ports.push_back(
            PublishedPort{binding, endpoint.ip, network.bridge_name, network.ipam.subnet,
                          options.gateway_mode == GatewayMode::Routed, network.datapath_id});
    }
    Status changed = datapaths_->change_ports(datapath_choice(network).kind, ports, publish);
    if (changed) return {};
    spdlog::info("{} {} ports of {}: {}; syncing the whole policy",
                 publish ? "publishing" : "unpublishing", ports.size(), endpoint.id.substr(0, 12),
                 changed.error().message);
    return sync_policy_locked();
}

void NetworkService::on_host_change() {
    std::lock_guard lock(mutex_);
    auto resync = datapaths_->refresh_host();
    if (!resync || !*resync) return;
    spdlog::info("host interfaces changed: the uplinks moved, syncing the policy");
    if (auto st = sync_policy_locked(); !st)
        spdlog::warn("host interfaces changed: {}", st.error().message);
}

Status NetworkService::sync_policy_locked() {
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    std::vector<Network> ready;
    for (auto& n : networks)
        if (n.state == Lifecycle::Ready) ready.push_back(std::move(n));
    return sync_policy_locked(ready);
}

Result<std::vector<PortBinding>> NetworkService::allocate_host_ports_locked(
    const std::vector<PortRequest>& requests, const Network& network,
    const std::string& except_endpoint) {
    if (requests.empty()) return std::vector<PortBinding>{};
    if (network.internal) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("network {} is internal: its endpoints cannot publish ports",
                                network.name));
    }
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(network));
    // A binding without a host address takes the network's host_binding_ipv4, as with Docker.
    std::vector<PortRequest> bound = requests;
    if (options.host_binding_ipv4) {
        for (auto& r : bound)
            if (!r.host_ip_given) r.host_ip = *options.host_binding_ipv4;
    }
    PortRange ephemeral;  // Docker's fallback when the sysctl cannot be read
    if (auto text = kernel::read_sysctl("net.ipv4.ip_local_port_range"); text) {
        if (auto range = parse_port_range(*text); range) ephemeral = *range;
    }
    // Only the bindings that can clash: those on the host ports the requests may take.
    std::vector<PortBinding> taken;
    std::set<std::pair<uint16_t, uint16_t>> spans;
    for (const auto& r : bound) {
        spans.insert(r.host_first == 0 ? std::pair{ephemeral.first, ephemeral.last}
                                       : std::pair{r.host_first, r.host_last});
    }
    for (const auto& [first, last] : spans) {
        BPFNET_ASSIGN_OR_RETURN(auto published, store_->published_ports_in(first, last));
        for (auto& [endpoint_id, binding] : published)
            if (endpoint_id != except_endpoint) taken.push_back(binding);
    }
    return allocate_ports(bound, taken, kernel::host_port_in_use, ephemeral);
}

// ---------------------------------------------------------------------------------------------
// Networks

Result<Network> NetworkService::create_network(const CreateNetworkRequest& request) {
    std::lock_guard lock(mutex_);
    if (!is_valid_name(request.name)) {
        return fail(
            ErrorKind::InvalidArgument,
            fmt::format("invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        request.name));
    }
    if (is_builtin_only_driver(request.driver) || request.driver == "none") {
        return fail(ErrorKind::Conflict,
                    fmt::format("only one instance of \"{}\" network is allowed",
                                request.driver == driver::kHost ? "host" : "null"));
    }
    if (request.driver == driver::kOverlay && !cluster_) {
        return fail(ErrorKind::Unsupported,
                    "overlay networks need the cluster store: start bpfnetd with --store etcd "
                    "--etcd-endpoints URL --vtep-ip ADDRESS");
    }
    if (request.driver != driver::kBridge && request.driver != driver::kOverlay &&
        !is_child_link_driver(request.driver)) {
        return fail(ErrorKind::Unsupported,
                    fmt::format("network driver \"{}\" is not supported by this agent "
                                "(available: bridge, macvlan, ipvlan, overlay)",
                                request.driver));
    }
    const bool child_link = is_child_link_driver(request.driver);
    const bool overlay = request.driver == driver::kOverlay;
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(request.options));
    // Docker's rule: a bridge without an address only makes sense for a network that reaches
    // nothing beyond itself.
    if (options.gateway_mode == GatewayMode::Isolated && !request.internal) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{}=isolated is only allowed on an internal network (--internal)",
                                opt::kGatewayModeIpv4));
    }
    if (options.gateway_mode != GatewayMode::Nat && (child_link || overlay)) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{} applies to bridge networks only", opt::kGatewayModeIpv4));
    }
    if (options.datapath == DatapathMode::Bpf && !datapaths_->has_bpf()) {
        return fail(
            ErrorKind::Unsupported,
            fmt::format(
                "bpfnet.datapath=bpf: the BPF datapath cannot be used on this host ({}); use "
                "bpfnet.datapath=auto or kernel",
                datapaths_->bpf_unavailable()));
    }
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    // Docker: the cluster's overlay this network joins (a second host's Docker network on the
    // same subnet). This host's mirror of that overlay makes way for it.
    std::optional<OverlayNetwork> joined;
    std::optional<Network> mirror;
    if (overlay && request.owner == Owner::Docker) {
        if (!request.pool_id.empty())
            return fail(ErrorKind::InvalidArgument,
                        "an overlay takes its addresses from the cluster store: create it with "
                        "Docker's default IPAM, not --ipam-driver bpfnet");
        BPFNET_ASSIGN_OR_RETURN(joined, docker_overlay_to_join_locked(request, snap));
        if (joined) {
            auto it = std::find_if(snap.networks.begin(), snap.networks.end(),
                                   [&](const Network& n) { return n.id == joined->network.id; });
            if (it != snap.networks.end()) {
                mirror = *it;
                snap.networks.erase(it);
            }
        }
    }
    for (const auto& n : snap.networks) {
        if (n.name == request.name) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network with name {} already exists", request.name));
        }
    }

    Network network;
    network.id = request.id.empty() ? generate_id() : request.id;
    for (const auto& n : snap.networks) {
        if (n.id == network.id) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network with id {} already exists ({})", network.id, n.name));
        }
    }
    network.owner = request.owner;
    network.name = request.name;
    network.driver = request.driver;
    network.options = request.options;
    network.labels = request.labels;
    network.internal = request.internal;
    network.created = now_rfc3339();
    network.state = Lifecycle::Creating;
    if (child_link) {
        BPFNET_TRY(plan_child_link_network_locked(request, snap, network));
    } else if (overlay) {
        network.bridge_name = overlay_bridge_name(joined ? joined->network.id : network.id);
    } else {
        network.bridge_name = options.bridge_name.value_or(default_bridge_name(network.id));
    }
    for (const auto& n : snap.networks) {
        if (!network.bridge_name.empty() && n.bridge_name == network.bridge_name) {
            return fail(ErrorKind::Conflict,
                        fmt::format("bridge name {} is already used by network {}",
                                    network.bridge_name, n.name));
        }
    }

    BPFNET_ASSIGN_OR_RETURN(std::vector<Cidr> existing,
                            subnets_in_use_locked(snap, request.pool_id));
    BPFNET_ASSIGN_OR_RETURN(auto host_sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host_routes, kernel::list_ipv4_route_destinations(host_sock));
    // A macvlan/ipvlan subnet is the parent's LAN, which the host may well route already; an
    // overlay's is not routed by the host at all (but must not clash with other overlays').
    if (child_link || overlay) host_routes.clear();
    if (overlay && !joined)
        for (const auto& o : cluster_->networks()) existing.push_back(o.network.ipam.subnet);
    BPFNET_ASSIGN_OR_RETURN(network.ipam, plan_network_ipam(request.ipam, host_routes, existing));
    if (joined) {
        network.options[kOverlayClusterOption] = joined->network.id;
        network.options[kOverlayVniOption] = std::to_string(joined->vni);
        if (auto mtu = joined->network.options.find(opt::kMtu);
            mtu != joined->network.options.end())
            network.options[opt::kMtu] = mtu->second;
        BPFNET_ASSIGN_OR_RETURN(options, parse_bridge_options(network.options));
    } else if (overlay) {
        BPFNET_TRY(plan_overlay_network_locked(request, snap, network));
    }
    if (request.owner == Owner::Docker)
        network.ipam.driver = request.pool_id.empty() ? "docker" : "bpfnet";

    // A crash between these two leaves neither: the next change in the cluster mirrors the
    // overlay again.
    BPFNET_ASSIGN_OR_RETURN(network.datapath_id, store_->allocate_datapath_id());
    if (mirror) BPFNET_TRY(store_->delete_network(mirror->id));
    BPFNET_TRY(store_->put_network(network));
    failpoint("network.create.recorded");

    auto undo = [&](const Error& cause) -> Failure {
        spdlog::warn("create network {}: {}; rolling back", network.name, cause.message);
        if (overlay && !joined) {
            auto vni = network.options.find(kOverlayVniOption);
            if (vni != network.options.end())
                (void)cluster_->release_vni(static_cast<uint32_t>(std::stoul(vni->second)),
                                            network.id);
            (void)cluster_->release_subnet(network.ipam.subnet, network.id);
        }
        if (overlay && request.owner == Owner::Docker)
            (void)cluster_->detach(overlay_cluster_id(network));
        if (auto st = datapath_for(network).remove_network(network); !st)
            spdlog::error("rollback: {}", st.error().message);
        if (auto st = store_->delete_network(network.id); !st)
            spdlog::error("rollback: {}", st.error().message);
        std::vector<Network> rest;
        for (const auto& n : snap.networks)
            if (n.state == Lifecycle::Ready) rest.push_back(n);
        if (auto st = sync_policy_locked(rest); !st)
            spdlog::error("rollback: {}", st.error().message);
        if (mirror) {
            if (auto st = sync_overlay_locked(); !st)
                spdlog::error("rollback: {}", st.error().message);
        }
        return fail(cause);
    };

    if (auto st = datapath_for(network).ensure_network(NetworkSpec{network, options}); !st)
        return undo(st.error());
    failpoint("network.create.datapath");
    std::vector<Network> all;
    for (const auto& n : snap.networks)
        if (n.state == Lifecycle::Ready) all.push_back(n);
    all.push_back(network);
    if (auto st = sync_policy_locked(all); !st) return undo(st.error());

    network.state = Lifecycle::Ready;
    if (overlay && request.owner == Owner::Docker) {
        // Before the definition: the overlay must never look unused to the other hosts.
        if (auto st = cluster_->attach(overlay_cluster_id(network)); !st) return undo(st.error());
    }
    if (overlay && !joined) {
        // Cluster-wide from here: the other hosts' watches mirror it.
        OverlayNetwork record{network, 0};
        record.vni = static_cast<uint32_t>(std::stoul(network.options.at(kOverlayVniOption)));
        auto revision = cluster_->put_network(record);
        if (!revision) return undo(revision.error());
        overlay_created_at_[network.id] = *revision;
    }
    if (auto st = store_->put_network(network); !st) return undo(st.error());
    spdlog::info("created network {} ({}) driver {} subnet {} {} {}", network.name,
                 network.id.substr(0, 12), network.driver, network.ipam.subnet.str(),
                 child_link ? "parent" : "bridge",
                 child_link ? network.parent : network.bridge_name);
    return network;
}

Result<std::vector<Network>> NetworkService::list_networks() {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    return snap.networks;
}

Result<Network> NetworkService::find_network(const std::string& ref) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    return resolve_ref(networks, ref, "network");
}

Status NetworkService::remove_network(const std::string& ref) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    BPFNET_ASSIGN_OR_RETURN(Network network, resolve_ref(snap.networks, ref, "network"));
    if (network.owner == Owner::Docker) {
        return fail(ErrorKind::Conflict,
                    fmt::format("network {} is managed by Docker: remove it with `docker network "
                                "rm {}`",
                                network.name, network.id.substr(0, 12)));
    }
    if (is_predefined(network)) {
        return fail(ErrorKind::Conflict,
                    fmt::format("{} is a pre-defined network and cannot be removed", network.name));
    }
    if (network.driver == driver::kOverlay && cluster_) {
        for (const auto& e : cluster_->endpoints(network.id)) {
            if (e.host == cluster_->host_id()) continue;  // local ones are reported below
            return fail(ErrorKind::Conflict,
                        fmt::format("error while removing network: network {} id {} has active "
                                    "endpoints (on host {})",
                                    network.name, network.id, e.host));
        }
        for (const auto& host : cluster_->attached_hosts(network.id)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("error while removing network: network {} is used by Docker "
                                    "on host {}: remove it there with `docker network rm`",
                                    network.name, host));
        }
    }
    auto attached = endpoints_where(snap.endpoints,
                                    [&](const Endpoint& e) { return e.network_id == network.id; });
    if (!attached.empty()) {
        std::vector<std::string> names;
        for (const auto& e : attached) {
            const Sandbox* s = sandbox_by_id(snap.sandboxes, e.sandbox_id);
            names.push_back(s ? s->name : e.sandbox_id.substr(0, 12));
        }
        return fail(
            ErrorKind::Conflict,
            fmt::format("error while removing network: network {} id {} has active endpoints ({})",
                        network.name, network.id, fmt::join(names, ", ")));
    }
    return remove_network_locked(std::move(network), snap);
}

Status NetworkService::remove_network_locked(Network network, const Snapshot& snap) {
    network.state = Lifecycle::Deleting;
    BPFNET_TRY(store_->put_network(network));
    failpoint("network.remove.marked");

    std::vector<Network> rest;
    for (const auto& n : snap.networks)
        if (n.id != network.id && n.state == Lifecycle::Ready) rest.push_back(n);
    BPFNET_TRY(sync_policy_locked(rest));
    BPFNET_TRY(datapath_for(network).remove_network(network));
    failpoint("network.remove.datapath");
    if (network.driver == driver::kOverlay && cluster_) BPFNET_TRY(leave_overlay_locked(network));
    BPFNET_TRY(store_->delete_network(network.id));
    spdlog::info("removed network {} ({})", network.name, network.id.substr(0, 12));
    return {};
}

Result<std::vector<std::string>> NetworkService::prune_networks() {
    std::vector<std::string> candidates;
    {
        std::lock_guard lock(mutex_);
        BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
        for (const auto& n : snap.networks) {
            if (n.owner == Owner::Docker) continue;  // `docker network prune` decides about those
            if (is_predefined(n)) continue;
            bool used = std::any_of(snap.endpoints.begin(), snap.endpoints.end(),
                                    [&](const Endpoint& e) { return e.network_id == n.id; });
            if (!used) candidates.push_back(n.id);
        }
    }
    std::vector<std::string> removed;
    for (const auto& id : candidates) {
        auto network = find_network(id);
        if (!network) continue;
        // A network that gained an endpoint since the scan is simply skipped, like docker does.
        if (auto st = remove_network(id); st)
            removed.push_back(network->name);
        else if (st.error().kind != ErrorKind::Conflict)
            return fail(st.error());
    }
    return removed;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

Result<Endpoint> NetworkService::connect(const ConnectRequest& request) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(Network network, resolve_ref(networks, request.network, "network"));
    BPFNET_ASSIGN_OR_RETURN(Sandbox sandbox, resolve_sandbox_locked(request.sandbox));
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_scope(sandbox));
    if (network.state != Lifecycle::Ready) {
        return fail(ErrorKind::Conflict,
                    fmt::format("network {} is being {}", network.name,
                                network.state == Lifecycle::Creating ? "created" : "removed"));
    }
    if (sandbox.state != Lifecycle::Ready) {
        return fail(ErrorKind::Conflict, fmt::format("sandbox {} is not ready", sandbox.name));
    }
    if (network.owner == Owner::Docker || sandbox.owner == Owner::Docker) {
        return fail(ErrorKind::Conflict,
                    fmt::format("{} {} is managed by Docker: connect containers with `docker "
                                "network connect`",
                                network.owner == Owner::Docker ? "network" : "sandbox",
                                network.owner == Owner::Docker ? network.name : sandbox.name));
    }
    BPFNET_TRY(check_connect_rules_locked(network, sandbox, snap, request));
    if (is_builtin_only_driver(network.driver))
        return attach_builtin_locked(network.driver, sandbox);
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(network));
    auto in_sandbox = endpoints_where(
        snap.endpoints, [&](const Endpoint& e) { return e.sandbox_id == sandbox.id; });
    for (const auto& e : in_sandbox) {
        if (e.network_id == network.id) {
            return fail(ErrorKind::Conflict,
                        fmt::format("endpoint with name {} already exists in network {}",
                                    sandbox.name, network.name));
        }
    }
    for (const auto& alias : request.aliases) {
        if (!is_valid_name(alias)) {
            return fail(ErrorKind::InvalidArgument, fmt::format("invalid alias \"{}\"", alias));
        }
    }
    BPFNET_ASSIGN_OR_RETURN(auto addresses, store_->addresses_in_network(network.id));
    const std::set<Ipv4> used(addresses.begin(), addresses.end());

    Endpoint endpoint;
    endpoint.id = generate_id();
    endpoint.network_id = network.id;
    endpoint.sandbox_id = sandbox.id;
    const bool overlay = network.driver == driver::kOverlay;
    if (overlay) {
        // Cluster-wide IPAM: no two hosts hand out one address.
        BPFNET_ASSIGN_OR_RETURN(endpoint.ip,
                                claim_overlay_address_locked(network, request.ip, endpoint.id));
    } else {
        BPFNET_ASSIGN_OR_RETURN(endpoint.ip,
                                allocate_address(network.ipam, used, request.ip, network.name));
    }
    endpoint.mac = MacAddr::from_ipv4(endpoint.ip);
    BPFNET_ASSIGN_OR_RETURN(auto asked_ifname, parse_endpoint_ifname(request.driver_opts));
    if (asked_ifname) {
        // The sandbox's own loopback and the other endpoints' names are taken.
        const bool taken =
            *asked_ifname == "lo" ||
            std::any_of(in_sandbox.begin(), in_sandbox.end(),
                        [&](const Endpoint& e) { return e.ifname == *asked_ifname; });
        if (taken) {
            return fail(ErrorKind::Conflict,
                        fmt::format("{}: sandbox {} already has an interface named {}",
                                    opt::kEndpointIfname, sandbox.name, *asked_ifname));
        }
    }
    endpoint.ifname =
        asked_ifname.value_or(next_ifname(in_sandbox, options.container_iface_prefix));
    // macvlan/ipvlan children live only in the sandbox; there is no host end.
    endpoint.host_ifname = is_child_link_driver(network.driver) ? "" : host_veth_name(endpoint.id);
    endpoint.aliases = request.aliases;
    BPFNET_ASSIGN_OR_RETURN(endpoint.ports,
                            allocate_host_ports_locked(request.publish, network, endpoint.id));
    // Like docker: the first network a sandbox joins that can reach outside gives the default
    // route.
    // (An overlay is pure L2 between containers: the host has no gateway on it.)
    endpoint.default_route = !network.internal && !overlay &&
                             std::none_of(in_sandbox.begin(), in_sandbox.end(),
                                          [](const Endpoint& e) { return e.default_route; });
    endpoint.created = now_rfc3339();
    endpoint.state = Lifecycle::Creating;

    BPFNET_TRY(store_->put_endpoint(endpoint));
    failpoint("endpoint.create.recorded");
    if (auto st =
            datapath_for(network).ensure_endpoint(NetworkSpec{network, options}, endpoint, sandbox);
        !st) {
        spdlog::warn("connect {} to {}: {}; rolling back", sandbox.name, network.name,
                     st.error().message);
        if (auto undo = datapath_for(network).remove_endpoint(endpoint, sandbox); !undo) {
            spdlog::error("rollback: {}", undo.error().message);
        }
        if (auto undo = store_->delete_endpoint(endpoint.id); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        if (overlay) release_overlay_address_locked(network, endpoint);
        return fail(st.error());
    }
    failpoint("endpoint.create.datapath");
    endpoint.state = Lifecycle::Ready;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    if (overlay) publish_overlay_endpoint_locked(network, endpoint);
    if (!endpoint.ports.empty()) {
        if (auto st = change_published_ports_locked(network, endpoint, true); !st) {
            spdlog::warn("connect {} to {}: publishing ports: {}; rolling back", sandbox.name,
                         network.name, st.error().message);
            if (auto undo = store_->delete_endpoint(endpoint.id); !undo)
                spdlog::error("rollback: {}", undo.error().message);
            if (auto undo = datapath_for(network).remove_endpoint(endpoint, sandbox); !undo)
                spdlog::error("rollback: {}", undo.error().message);
            // Whatever part of the NAT went in goes again.
            if (auto undo = sync_policy_locked(); !undo)
                spdlog::error("rollback: {}", undo.error().message);
            return fail(st.error());
        }
        for (const auto& p : endpoint.ports)
            spdlog::info("published {} for {}", p.str(), sandbox.name);
    }
    spdlog::info("connected sandbox {} to network {}: {} {} {}", sandbox.name, network.name,
                 endpoint.ifname, endpoint.ip.str(), endpoint.mac.str());
    return endpoint;
}

Status NetworkService::teardown_endpoint_locked(Endpoint endpoint, const Snapshot& snap,
                                                bool force) {
    const Sandbox* sandbox = sandbox_by_id(snap.sandboxes, endpoint.sandbox_id);
    const Network* network = network_by_id(snap.networks, endpoint.network_id);
    endpoint.state = Lifecycle::Deleting;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    failpoint("endpoint.remove.marked");
    if (sandbox && network) {
        if (auto st = datapath_for(*network).remove_endpoint(endpoint, *sandbox); !st) {
            if (!force) return st;
            spdlog::warn("forced disconnect: ignoring {}", st.error().message);
        }
    }
    BPFNET_TRY(store_->delete_endpoint(endpoint.id));
    if (network && network->driver == driver::kOverlay) {
        withdraw_overlay_endpoint_locked(*network, endpoint);
        release_overlay_address_locked(*network, endpoint);
    }
    if (network)
        BPFNET_TRY(change_published_ports_locked(*network, endpoint, false));
    else if (!endpoint.ports.empty())
        BPFNET_TRY(sync_policy_locked());  // frees the host ports
    if (endpoint.default_route && sandbox) BPFNET_TRY(ensure_default_route_locked(*sandbox));
    return {};
}

// After the endpoint carrying the default route leaves, the oldest remaining endpoint on a network
// that can reach outside takes it over (docker moves the gateway the same way).
Status NetworkService::ensure_default_route_locked(const Sandbox& sandbox) {
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_->endpoints_of_sandbox(sandbox.id));
    std::sort(endpoints.begin(), endpoints.end(),
              [](const Endpoint& a, const Endpoint& b) { return a.created < b.created; });
    auto in_sandbox =
        endpoints_where(endpoints, [&](const Endpoint& e) { return e.state == Lifecycle::Ready; });
    if (std::any_of(in_sandbox.begin(), in_sandbox.end(),
                    [](const Endpoint& e) { return e.default_route; })) {
        return {};
    }
    for (auto& e : in_sandbox) {
        const Network* network = network_by_id(networks, e.network_id);
        if (!network || network->internal) continue;
        e.default_route = true;
        BPFNET_TRY(store_->put_endpoint(e));
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(*network));
        return datapath_for(*network).ensure_endpoint(NetworkSpec{*network, options}, e, sandbox);
    }
    return {};
}

Status NetworkService::disconnect(const std::string& network_ref, const std::string& sandbox_ref,
                                  bool force) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(Network network, resolve_ref(networks, network_ref, "network"));
    BPFNET_ASSIGN_OR_RETURN(Sandbox sandbox, resolve_sandbox_locked(sandbox_ref));
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_scope(sandbox));
    auto matches = endpoints_where(snap.endpoints, [&](const Endpoint& e) {
        return e.network_id == network.id && e.sandbox_id == sandbox.id;
    });
    if (matches.empty()) {
        return fail(ErrorKind::NotFound, fmt::format("sandbox {} is not connected to network {}",
                                                     sandbox.name, network.name));
    }
    if (matches.front().owner == Owner::Docker) {
        return fail(ErrorKind::Conflict,
                    fmt::format("the endpoint of {} on network {} is managed by Docker: use "
                                "`docker network disconnect`",
                                sandbox.name, network.name));
    }
    if (network.driver == driver::kHost) {
        return fail(ErrorKind::Conflict,
                    "container cannot be disconnected from host network or connected to host "
                    "network");
    }
    BPFNET_TRY(teardown_endpoint_locked(matches.front(), snap, force));
    spdlog::info("disconnected sandbox {} from network {}", sandbox.name, network.name);
    return {};
}

// ---------------------------------------------------------------------------------------------
// Sandboxes

Result<Sandbox> NetworkService::create_sandbox(const std::string& name, SandboxMode mode) {
    std::lock_guard lock(mutex_);
    if (!is_valid_name(name)) {
        return fail(
            ErrorKind::InvalidArgument,
            fmt::format("invalid sandbox name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        name));
    }
    BPFNET_ASSIGN_OR_RETURN(auto same_name, store_->sandboxes_matching(name));
    for (const auto& s : same_name) {
        if (s.name == name)
            return fail(ErrorKind::Conflict, fmt::format("sandbox {} already exists", name));
    }
    Sandbox sandbox;
    sandbox.id = generate_id();
    sandbox.name = name;
    sandbox.mode = mode;
    sandbox.netns_path = (std::filesystem::path(config_.netns_dir) / name).string();
    sandbox.created = now_rfc3339();
    sandbox.state = Lifecycle::Creating;
    std::error_code ec;
    if (std::filesystem::exists(sandbox.netns_path, ec)) {
        return fail(ErrorKind::Conflict,
                    fmt::format("network namespace {} already exists and is not a bpfnet sandbox",
                                sandbox.netns_path));
    }
    BPFNET_TRY(store_->put_sandbox(sandbox));
    failpoint("sandbox.create.recorded");
    auto made = mode == SandboxMode::Host ? kernel::bind_host_netns(name, config_.netns_dir)
                                          : kernel::create_named_netns(name, config_.netns_dir);
    Status attached;
    if (!made) {
        attached = fail(made.error());
    } else if (mode != SandboxMode::Own) {
        auto endpoint = attach_builtin_locked(
            mode == SandboxMode::Host ? driver::kHost : driver::kNull, sandbox);
        if (!endpoint) attached = fail(endpoint.error());
    }
    if (!attached) {
        if (made) (void)kernel::delete_named_netns(sandbox.netns_path);
        if (auto undo = store_->delete_sandbox(sandbox.id); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        return fail(attached.error());
    }
    sandbox.state = Lifecycle::Ready;
    BPFNET_TRY(store_->put_sandbox(sandbox));
    spdlog::info("created sandbox {} ({}) at {}", sandbox.name, sandbox.id.substr(0, 12),
                 sandbox.netns_path);
    return sandbox;
}

Result<std::vector<Sandbox>> NetworkService::list_sandboxes() {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    return snap.sandboxes;
}

Result<Sandbox> NetworkService::find_sandbox(const std::string& ref) {
    std::lock_guard lock(mutex_);
    return resolve_sandbox_locked(ref);
}

Status NetworkService::remove_sandbox(const std::string& ref) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Sandbox sandbox, resolve_sandbox_locked(ref));
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_scope(sandbox));
    if (sandbox.owner == Owner::Docker) {
        return fail(ErrorKind::Conflict,
                    fmt::format("sandbox {} is a Docker container's namespace: remove the "
                                "container with docker",
                                sandbox.name));
    }
    sandbox.state = Lifecycle::Deleting;
    BPFNET_TRY(store_->put_sandbox(sandbox));
    failpoint("sandbox.remove.marked");
    // Like `docker rm`: removing the sandbox disconnects it from every network first.
    for (auto& e : snap.endpoints) {
        if (e.sandbox_id != sandbox.id) continue;
        e.default_route = false;  // the sandbox goes away; nothing inherits its route
        BPFNET_TRY(teardown_endpoint_locked(e, snap, /*force=*/true));
    }
    BPFNET_TRY(kernel::delete_named_netns(sandbox.netns_path));
    BPFNET_TRY(store_->delete_sandbox(sandbox.id));
    spdlog::info("removed sandbox {} ({})", sandbox.name, sandbox.id.substr(0, 12));
    return {};
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

Status NetworkService::reconcile() {
    std::lock_guard lock(mutex_);
    return reconcile_locked();
}

Status NetworkService::reconcile_locked() {
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    spdlog::info("reconciling {} networks, {} sandboxes, {} endpoints from the store",
                 snap.networks.size(), snap.sandboxes.size(), snap.endpoints.size());

    // 1. Sandboxes: a Creating one never reached its caller, so undo it; a Deleting one is
    // finished.
    //    Ready ones get their namespace back if it vanished (e.g. /run is a tmpfs and the host
    //    rebooted).
    std::set<std::string> dead_sandboxes;
    for (auto& s : snap.sandboxes) {
        if (s.owner == Owner::Docker) continue;  // Docker's namespaces are Docker's business
        if (s.state == Lifecycle::Ready) {
            if (!kernel::netns_exists(s.netns_path)) {
                spdlog::warn("sandbox {}: namespace {} is missing; re-creating it", s.name,
                             s.netns_path);
                auto path = std::filesystem::path(s.netns_path);
                BPFNET_TRY(kernel::delete_named_netns(s.netns_path));  // a stale plain file
                auto made = s.mode == SandboxMode::Host
                                ? kernel::bind_host_netns(path.filename().string(),
                                                          path.parent_path().string())
                                : kernel::create_named_netns(path.filename().string(),
                                                             path.parent_path().string());
                if (!made) return fail(made.error());
            }
            continue;
        }
        dead_sandboxes.insert(s.id);
    }

    // 2. Endpoints: undo Creating/Deleting ones and those whose network or sandbox is going away.
    for (auto& e : snap.endpoints) {
        if (e.owner == Owner::Docker) {
            BPFNET_TRY(reconcile_docker_endpoint_locked(e, snap));
            continue;
        }
        const Network* network = network_by_id(snap.networks, e.network_id);
        const Sandbox* sandbox = sandbox_by_id(snap.sandboxes, e.sandbox_id);
        bool orphan = !network || !sandbox || network->state != Lifecycle::Ready ||
                      dead_sandboxes.count(e.sandbox_id);
        if (e.state == Lifecycle::Ready && !orphan) continue;
        spdlog::info("reconcile: removing {} endpoint {} ({})", to_string(e.state),
                     e.id.substr(0, 12), e.host_ifname);
        if (network && sandbox) {
            if (auto st = datapath_for(*network).remove_endpoint(e, *sandbox); !st) {
                spdlog::warn("reconcile: {}", st.error().message);
            }
        }
        BPFNET_TRY(store_->delete_endpoint(e.id));
    }
    // Docker sandboxes nothing is joined to any more are forgotten (their namespace is Docker's).
    BPFNET_ASSIGN_OR_RETURN(auto endpoints_left, store_->endpoints());
    for (auto& s : snap.sandboxes) {
        if (s.owner != Owner::Docker) continue;
        if (std::none_of(endpoints_left.begin(), endpoints_left.end(),
                         [&](const Endpoint& e) { return e.sandbox_id == s.id; })) {
            BPFNET_TRY(store_->delete_sandbox(s.id));
        }
    }
    for (auto& s : snap.sandboxes) {
        if (!dead_sandboxes.count(s.id)) continue;
        spdlog::info("reconcile: removing {} sandbox {}", to_string(s.state), s.name);
        BPFNET_TRY(kernel::delete_named_netns(s.netns_path));
        BPFNET_TRY(store_->delete_sandbox(s.id));
    }
    // 3. Networks: same rule; Ready ones are re-created or adopted.
    std::vector<Network> live;
    for (auto& n : snap.networks) {
        if (n.state == Lifecycle::Ready) {
            BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(n));
            BPFNET_TRY(datapath_for(n).ensure_network(NetworkSpec{n, options}));
            live.push_back(n);
            continue;
        }
        spdlog::info("reconcile: removing {} network {}", to_string(n.state), n.name);
        BPFNET_TRY(datapath_for(n).remove_network(n));
        BPFNET_TRY(store_->delete_network(n.id));
    }
    BPFNET_TRY(sync_policy_locked(live));

    // 4. Ready endpoints: repair what is missing.
    BPFNET_ASSIGN_OR_RETURN(Snapshot now, load());
    for (const auto& e : now.endpoints) {
        const Network* network = network_by_id(now.networks, e.network_id);
        const Sandbox* sandbox = sandbox_by_id(now.sandboxes, e.sandbox_id);
        if (!sandbox) continue;  // a Docker endpoint that is created but not joined
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(*network));
        auto st =
            datapath_for(*network).ensure_endpoint(NetworkSpec{*network, options}, e, *sandbox);
        if (!st && e.owner == Owner::Docker) {
            // Docker holds the other half; keep serving everything else and say what to do.
            spdlog::error("reconcile: {}", st.error().message);
            continue;
        }
        BPFNET_TRY(st);
    }

    // 5. Anything this agent marked as its own that the store no longer names is stale.
    DatapathGraph::LiveObjects live_objects;
    for (const auto& n : now.networks) {
        live_objects.links.insert(n.bridge_name);
        live_objects.networks.insert(n.datapath_id);
        if (n.driver == driver::kOverlay)
            live_objects.links.insert(overlay_vxlan_name(overlay_cluster_id(n)));
    }
    for (const auto& e : now.endpoints) {
        if (e.sandbox_id.empty()) continue;
        live_objects.links.insert(e.host_ifname);
        const Network* network = network_by_id(now.networks, e.network_id);
        if (network && datapath_choice(*network).kind == DatapathKind::Bpf)
            live_objects.bpf_attached.insert(e.host_ifname);
    }
    BPFNET_ASSIGN_OR_RETURN(auto removed, datapaths_->collect_garbage(live_objects));
    for (const auto& name : removed) spdlog::info("reconcile: removed stale {}", name);
    spdlog::info("reconcile done: {} networks, {} sandboxes, {} endpoints", now.networks.size(),
                 now.sandboxes.size(), now.endpoints.size());
    return {};
}

}  // namespace bpfnet

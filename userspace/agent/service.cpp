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
      drivers_(std::make_unique<DriverRegistry>(*store_, *datapaths_)),
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

std::map<std::string, std::string> NetworkService::published_ports_paths() const {
    return datapaths_->published_ports_paths();
}

std::string NetworkService::forward_firewall_state() const {
    return datapaths_->forward_firewall_state();
}

std::string NetworkService::host_interfaces_state() const {
    return datapaths_->host_interfaces_state();
}

Status NetworkService::sync_policy_locked(const std::vector<Network>& networks) {
    // The networks the policy covers, each with its parsed options and the layer that carries it.
    std::vector<const Network*> live;
    std::vector<BridgeOptions> options;
    std::vector<DatapathKind> kinds;
    for (const auto& n : networks) {
        if (n.state == Lifecycle::Deleting) continue;
        const NetworkDriver& driver = drivers_->of(n);
        auto kind = driver.policed_as(n);
        if (!kind) continue;
        BPFNET_ASSIGN_OR_RETURN(BridgeOptions parsed, driver.policy_options(n));
        live.push_back(&n);
        options.push_back(std::move(parsed));
        kinds.push_back(*kind);
    }
    // Ports of ready endpoints only: an endpoint being created gets its NAT once it is ready, one
    // being removed loses it before its interface goes.
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_->endpoints());
    std::vector<PublishedPort> ports;
    for (const auto& e : endpoints) {
        if (e.state != Lifecycle::Ready || e.ports.empty()) continue;
        auto network = std::find_if(live.begin(), live.end(),
                                    [&](const Network* n) { return n->id == e.network_id; });
        if (network == live.end() || !drivers_->of(**network).publishes_ports()) continue;
        const bool routed = options[network - live.begin()].gateway_mode == GatewayMode::Routed;
        for (const auto& binding : e.ports) {
            ports.push_back(PublishedPort{binding, e.ip, (*network)->bridge_name,
                                          (*network)->ipam.subnet, routed,
                                          (*network)->datapath_id});
        }
    }
    std::vector<PolicyNetwork> policed;
    for (size_t i = 0; i < live.size(); ++i) {
        const bool pass_through = drivers_->of(*live[i]).passes_through_policy();
        policed.push_back({NetworkSpec{*live[i], options[i], pass_through}, kinds[i]});
    }
    return datapaths_->sync_policy(policed, ports);
}

Status NetworkService::change_published_ports_locked(const Network& network,
                                                     const Endpoint& endpoint, bool publish) {
    const NetworkDriver& driver = drivers_->of(network);
    if (endpoint.ports.empty() || !driver.publishes_ports()) return {};
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(network));
    std::vector<PublishedPort> ports;
    for (const auto& binding : endpoint.ports) {
        ports.push_back(
            PublishedPort{binding, endpoint.ip, network.bridge_name, network.ipam.subnet,
                          options.gateway_mode == GatewayMode::Routed, network.datapath_id});
    }
    Status changed = datapaths_->change_ports(*driver.policed_as(network), ports, publish);
    if (changed) return {};
    spdlog::info("{} {} ports of {}: {}; syncing the whole policy",
                 publish ? "publishing" : "unpublishing", ports.size(), endpoint.id.substr(0, 12),
                 changed.error().message);
    return sync_policy_locked();
}

void NetworkService::attach_cluster(OverlayRegistry* registry) {
    std::lock_guard lock(mutex_);
    drivers_->overlay().attach_cluster(registry);
}

void NetworkService::on_cluster_change() {
    std::lock_guard lock(mutex_);
    if (auto st = drivers_->overlay().sync_cluster(); !st)
        spdlog::warn("cluster: applying changes: {}", st.error().message);
}

Status NetworkService::republish_overlay_endpoints() {
    std::lock_guard lock(mutex_);
    return drivers_->overlay().republish_endpoints();
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
    BPFNET_ASSIGN_OR_RETURN(NetworkDriver * driver_ptr, drivers_->named(request.driver));
    NetworkDriver& driver = *driver_ptr;
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(request.options));
    BPFNET_TRY(driver.check_request(request, options));
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());

    Network network;
    network.id = request.id.empty() ? generate_id() : request.id;
    network.owner = request.owner;
    network.name = request.name;
    network.driver = driver.name();
    network.options = request.options;
    network.labels = request.labels;
    network.internal = request.internal;
    network.created = now_rfc3339();
    network.state = Lifecycle::Creating;
    BPFNET_ASSIGN_OR_RETURN(NetworkPlan plan, driver.plan(request, snap, network));
    // The network the new one replaces is in none of the checks below.
    std::optional<Network> replaced;
    if (!plan.replaces.empty()) {
        auto it = std::find_if(snap.networks.begin(), snap.networks.end(),
                               [&](const Network& n) { return n.id == plan.replaces; });
        if (it != snap.networks.end()) {
            replaced = *it;
            snap.networks.erase(it);
        }
    }
    for (const auto& n : snap.networks) {
        if (n.name == request.name) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network with name {} already exists", request.name));
        }
        if (n.id == network.id) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network with id {} already exists ({})", network.id, n.name));
        }
        if (!network.bridge_name.empty() && n.bridge_name == network.bridge_name) {
            return fail(ErrorKind::Conflict,
                        fmt::format("bridge name {} is already used by network {}",
                                    network.bridge_name, n.name));
        }
    }

    BPFNET_ASSIGN_OR_RETURN(std::vector<Cidr> existing,
                            subnets_in_use_locked(snap, request.pool_id));
    existing.insert(existing.end(), plan.reserved_subnets.begin(), plan.reserved_subnets.end());
    std::vector<Cidr> host_routes;
    if (plan.subnet_avoids_host_routes) {
        BPFNET_ASSIGN_OR_RETURN(auto host_sock, kernel::NlSocket::open());
        BPFNET_ASSIGN_OR_RETURN(host_routes, kernel::list_ipv4_route_destinations(host_sock));
    }
    BPFNET_ASSIGN_OR_RETURN(network.ipam, plan_network_ipam(request.ipam, host_routes, existing));
    if (request.owner == Owner::Docker)
        network.ipam.driver = request.pool_id.empty() ? "docker" : "bpfnet";
    BPFNET_TRY(driver.claim(request, network));
    // What the driver decided (an overlay's MTU, ...) is part of the options the datapath uses.
    auto parsed = parse_bridge_options(network.options);
    if (!parsed) {
        driver.abandon(network);
        return fail(parsed.error());
    }
    options = *parsed;

    // Once recorded: the kernel's objects, the record and the policy go again too.
    auto undo = [&](const Error& cause) -> Failure {
        spdlog::warn("create network {}: {}; rolling back", network.name, cause.message);
        if (auto st = driver.datapath(network).remove_network(network); !st)
            spdlog::error("rollback: {}", st.error().message);
        if (auto st = store_->delete_network(network.id); !st)
            spdlog::error("rollback: {}", st.error().message);
        std::vector<Network> rest;
        for (const auto& n : snap.networks)
            if (n.state == Lifecycle::Ready) rest.push_back(n);
        if (auto st = sync_policy_locked(rest); !st)
            spdlog::error("rollback: {}", st.error().message);
        driver.abandon(network);
        return fail(cause);
    };

    // Until the network is recorded nothing of it is in the kernel or the store: only the
    // driver's claims are to be given back.
    auto give_up = [&](const Error& cause) -> Failure {
        driver.abandon(network);
        return fail(cause);
    };
    auto datapath_id = store_->allocate_datapath_id();
    if (!datapath_id) return give_up(datapath_id.error());
    network.datapath_id = *datapath_id;
    // A crash between these two leaves neither the replaced network nor the new one: the next
    // change in the cluster mirrors the overlay again.
    if (replaced) {
        if (auto st = store_->delete_network(replaced->id); !st) return give_up(st.error());
    }
    if (auto st = store_->put_network(network); !st) return give_up(st.error());
    failpoint("network.create.recorded");

    if (auto st = driver.datapath(network).ensure_network(NetworkSpec{network, options}); !st)
        return undo(st.error());
    failpoint("network.create.datapath");
    std::vector<Network> all;
    for (const auto& n : snap.networks)
        if (n.state == Lifecycle::Ready) all.push_back(n);
    all.push_back(network);
    if (auto st = sync_policy_locked(all); !st) return undo(st.error());

    network.state = Lifecycle::Ready;
    if (auto st = driver.announce(network); !st) return undo(st.error());
    if (auto st = store_->put_network(network); !st) return undo(st.error());
    spdlog::info("created network {} ({}) driver {} subnet {} {} {}", network.name,
                 network.id.substr(0, 12), network.driver, network.ipam.subnet.str(),
                 network.parent.empty() ? "bridge" : "parent",
                 network.parent.empty() ? network.bridge_name : network.parent);
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
    BPFNET_TRY(drivers_->of(network).check_remove(network));
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
    NetworkDriver& driver = drivers_->of(network);
    BPFNET_TRY(driver.datapath(network).remove_network(network));
    failpoint("network.remove.datapath");
    BPFNET_TRY(driver.release(network));
    BPFNET_TRY(store_->delete_network(network.id));
    BPFNET_TRY(driver.removed(network));
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
    NetworkDriver& driver = drivers_->of(network);
    if (driver.endpoints_are_records()) return record_membership_locked(network, sandbox);
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
    BPFNET_ASSIGN_OR_RETURN(endpoint.ip,
                            driver.allocate_address(network, used, request.ip, endpoint.id));
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
    endpoint.host_ifname = driver.has_host_end() ? host_veth_name(endpoint.id) : "";
    endpoint.aliases = request.aliases;
    BPFNET_ASSIGN_OR_RETURN(endpoint.ports,
                            allocate_host_ports_locked(request.publish, network, endpoint.id));
    // Like docker: the first network a sandbox joins that can reach outside gives the default
    // route.
    endpoint.default_route = driver.routes_outside(network) &&
                             std::none_of(in_sandbox.begin(), in_sandbox.end(),
                                          [](const Endpoint& e) { return e.default_route; });
    endpoint.created = now_rfc3339();
    endpoint.state = Lifecycle::Creating;

    BPFNET_TRY(store_->put_endpoint(endpoint));
    failpoint("endpoint.create.recorded");
    Datapath& datapath = driver.datapath(network);
    if (auto st = datapath.ensure_endpoint(NetworkSpec{network, options}, endpoint, sandbox); !st) {
        spdlog::warn("connect {} to {}: {}; rolling back", sandbox.name, network.name,
                     st.error().message);
        if (auto undo = datapath.remove_endpoint(endpoint, sandbox); !undo) {
            spdlog::error("rollback: {}", undo.error().message);
        }
        if (auto undo = store_->delete_endpoint(endpoint.id); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        driver.release_address(network, endpoint);
        return fail(st.error());
    }
    failpoint("endpoint.create.datapath");
    endpoint.state = Lifecycle::Ready;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    driver.endpoint_joined(network, endpoint);
    if (!endpoint.ports.empty()) {
        if (auto st = change_published_ports_locked(network, endpoint, true); !st) {
            spdlog::warn("connect {} to {}: publishing ports: {}; rolling back", sandbox.name,
                         network.name, st.error().message);
            if (auto undo = store_->delete_endpoint(endpoint.id); !undo)
                spdlog::error("rollback: {}", undo.error().message);
            if (auto undo = datapath.remove_endpoint(endpoint, sandbox); !undo)
                spdlog::error("rollback: {}", undo.error().message);
            driver.endpoint_left(network, endpoint);
            driver.release_address(network, endpoint);
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
    if (network) {
        NetworkDriver& driver = drivers_->of(*network);
        driver.endpoint_left(*network, endpoint);
        driver.release_address(*network, endpoint);
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
        if (!network || !drivers_->of(*network).routes_outside(*network)) continue;
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
    if (auto refused = drivers_->of(network).fixed_membership()) return *refused;
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
        auto endpoint = attach_builtin_locked(drivers_->builtin_for(mode), sandbox);
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
        for (auto& link : drivers_->of(n).extra_links(n)) live_objects.links.insert(link);
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

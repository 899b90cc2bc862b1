// The Docker-driven half of the network service: Docker's split endpoint lifecycle (CreateEndpoint,
// Join, Leave, DeleteEndpoint), its network deletion, and the address pools of its IpamDriver
// protocol. Same crash-safe order as the rest of the service: record the intent, act on the
// kernel, record the outcome; reconcile_docker_endpoint_locked() finishes what a crash interrupted.
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/failpoint.h"
#include "agent/service.h"
#include "agent/snapshot_queries.h"
#include "core/ids.h"
#include "datapath/kernel_datapath.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"

namespace bpfnet {

namespace {

Result<Endpoint> docker_endpoint_in(const std::vector<Endpoint>& endpoints,
                                    const std::string& network_id, const std::string& endpoint_id) {
    for (const auto& e : endpoints) {
        if (e.id != endpoint_id) continue;
        if (e.network_id != network_id) {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format("endpoint {} belongs to network {}, not {}", endpoint_id.substr(0, 12),
                            e.network_id.substr(0, 12), network_id.substr(0, 12)));
        }
        return e;
    }
    return fail(ErrorKind::NotFound,
                fmt::format("endpoint {} not found on network {}", endpoint_id.substr(0, 12),
                            network_id.substr(0, 12)));
}

Result<Network> ready_network(const std::vector<Network>& networks, const std::string& id) {
    const Network* network = network_by_id(networks, id);
    if (!network) {
        return fail(
            ErrorKind::NotFound,
            fmt::format("network {} not found (not created through bpfnet)", id.substr(0, 12)));
    }
    if (network->state != Lifecycle::Ready) {
        return fail(ErrorKind::Conflict,
                    fmt::format("network {} is being {}", network->name,
                                network->state == Lifecycle::Creating ? "created" : "removed"));
    }
    return *network;
}

// Stands in for a sandbox record that is already gone: removing a Docker endpoint's kernel
// objects never needs the sandbox (Docker owns it).
Sandbox placeholder_sandbox(const Endpoint& endpoint) {
    Sandbox sandbox;
    sandbox.id = endpoint.sandbox_id;
    sandbox.owner = Owner::Docker;
    return sandbox;
}

}  // namespace

Result<std::vector<Cidr>> NetworkService::subnets_in_use_locked(const Snapshot& snap,
                                                                const std::string& except_pool) {
    std::vector<Cidr> used;
    for (const auto& n : snap.networks) used.push_back(n.ipam.subnet);
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    for (const auto& pool : pools)
        if (pool.id != except_pool) used.push_back(pool.subnet);
    return used;
}

Result<Endpoint> NetworkService::find_endpoint(const std::string& network_id,
                                               const std::string& endpoint_id) {
    std::lock_guard lock(mutex_);
    return docker_endpoint_locked(network_id, endpoint_id);
}

Result<NetworkService::Snapshot> NetworkService::load_docker_scope(const std::string& endpoint_id) {
    Snapshot snap;
    BPFNET_ASSIGN_OR_RETURN(snap.networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(auto endpoint, store_->endpoint(endpoint_id));
    if (!endpoint) return snap;
    if (!endpoint->sandbox_id.empty()) {
        BPFNET_ASSIGN_OR_RETURN(auto sandbox, store_->sandbox(endpoint->sandbox_id));
        if (sandbox) snap.sandboxes.push_back(std::move(*sandbox));
    }
    snap.endpoints.push_back(std::move(*endpoint));
    return snap;
}

Result<Endpoint> NetworkService::docker_endpoint_locked(const std::string& network_id,
                                                        const std::string& endpoint_id) {
    BPFNET_ASSIGN_OR_RETURN(auto found, store_->endpoint(endpoint_id));
    std::vector<Endpoint> endpoints;
    if (found) endpoints.push_back(std::move(*found));
    return docker_endpoint_in(endpoints, network_id, endpoint_id);
}

Result<Endpoint> NetworkService::create_docker_endpoint(const std::string& network_id,
                                                        const std::string& endpoint_id,
                                                        std::optional<Ipv4> ip,
                                                        std::optional<MacAddr> mac) {
    std::lock_guard lock(mutex_);
    if (!is_valid_id(endpoint_id)) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid endpoint ID \"{}\": expected 64 hex digits", endpoint_id));
    }
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(Network network, ready_network(networks, network_id));
    BPFNET_ASSIGN_OR_RETURN(auto existing, store_->endpoint(endpoint_id));
    if (existing) {
        return fail(ErrorKind::Conflict,
                    fmt::format("endpoint {} already exists", endpoint_id.substr(0, 12)));
    }
    BPFNET_ASSIGN_OR_RETURN(auto addresses, store_->addresses_in_network(network.id));
    const std::set<Ipv4> used(addresses.begin(), addresses.end());
    if (mac && (mac->is_multicast() || mac->is_zero())) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("MAC address {} is not a unicast address", mac->str()));
    }
    Endpoint endpoint;
    endpoint.id = endpoint_id;
    endpoint.network_id = network.id;
    endpoint.owner = Owner::Docker;
    NetworkDriver& driver = drivers_->of(network);
    // Docker chose the address from its IPAM; the driver must agree it is free (an overlay's
    // cluster, whose addresses are unique across hosts).
    BPFNET_ASSIGN_OR_RETURN(endpoint.ip, driver.allocate_address(network, used, ip, endpoint.id));
    endpoint.mac = mac.value_or(MacAddr::from_ipv4(endpoint.ip));
    endpoint.ifname = handover_veth_name(endpoint.id);
    endpoint.host_ifname = host_veth_name(endpoint.id);
    endpoint.created = now_rfc3339();
    // Nothing exists in the kernel until Join, so there is nothing for a crash to interrupt.
    endpoint.state = Lifecycle::Ready;
    if (auto st = store_->put_endpoint(endpoint); !st) {
        driver.release_address(network, endpoint);
        return fail(st.error());
    }
    spdlog::info("docker: created endpoint {} on network {}: {} {}", endpoint.id.substr(0, 12),
                 network.name, endpoint.ip.str(), endpoint.mac.str());
    return endpoint;
}

Result<JoinResult> NetworkService::join_docker_endpoint(const std::string& network_id,
                                                        const std::string& endpoint_id,
                                                        const std::string& sandbox_key) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_docker_scope(endpoint_id));
    BPFNET_ASSIGN_OR_RETURN(Network network, ready_network(snap.networks, network_id));
    BPFNET_ASSIGN_OR_RETURN(Endpoint endpoint,
                            docker_endpoint_in(snap.endpoints, network_id, endpoint_id));
    if (!endpoint.sandbox_id.empty()) {
        const Sandbox* joined = sandbox_by_id(snap.sandboxes, endpoint.sandbox_id);
        if (joined && joined->netns_path == sandbox_key && endpoint.state == Lifecycle::Ready) {
            return JoinResult{endpoint, network};  // a retried Join
        }
        return fail(ErrorKind::Conflict,
                    fmt::format("endpoint {} is already joined to {}", endpoint.id.substr(0, 12),
                                joined ? joined->netns_path : "a sandbox"));
    }
    // Docker joins before the container's namespace exists (runc's prestart hook mounts it at the
    // key later), so only the form of the key can be checked here.
    if (sandbox_key.empty() || sandbox_key[0] != '/') {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("sandbox key \"{}\" is not an absolute path", sandbox_key));
    }
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, options_of(network));

    // One sandbox record per Docker namespace, shared by the container's endpoints.
    std::optional<Sandbox> sandbox;
    BPFNET_ASSIGN_OR_RETURN(auto in_netns, store_->sandboxes_in_netns(sandbox_key));
    for (const auto& s : in_netns)
        if (s.owner == Owner::Docker) sandbox = s;
    bool new_sandbox = !sandbox;
    if (new_sandbox) {
        sandbox.emplace();
        sandbox->id = generate_id();
        sandbox->name = "docker-" + std::filesystem::path(sandbox_key).filename().string();
        sandbox->netns_path = sandbox_key;
        sandbox->created = now_rfc3339();
        sandbox->state = Lifecycle::Ready;
        sandbox->owner = Owner::Docker;
        BPFNET_TRY(store_->put_sandbox(*sandbox));
    }

    endpoint.sandbox_id = sandbox->id;
    endpoint.state = Lifecycle::Creating;  // a crash from here on is undone by reconcile
    BPFNET_TRY(store_->put_endpoint(endpoint));
    failpoint("docker.join.recorded");
    NetworkDriver& driver = drivers_->of(network);
    if (auto st = driver.datapath(network).ensure_endpoint(NetworkSpec{network, options}, endpoint,
                                                           *sandbox);
        !st) {
        spdlog::warn("docker: join {} to {}: {}; rolling back", endpoint.id.substr(0, 12),
                     network.name, st.error().message);
        if (auto undo = driver.datapath(network).remove_endpoint(endpoint, *sandbox); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        endpoint.sandbox_id.clear();
        endpoint.state = Lifecycle::Ready;
        if (auto undo = store_->put_endpoint(endpoint); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        if (new_sandbox) {
            if (auto undo = store_->delete_sandbox(sandbox->id); !undo)
                spdlog::error("rollback: {}", undo.error().message);
        }
        return fail(st.error());
    }
    failpoint("docker.join.datapath");
    endpoint.state = Lifecycle::Ready;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    driver.endpoint_joined(network, endpoint);
    spdlog::info("docker: joined endpoint {} ({} {}) to {} on network {}",
                 endpoint.id.substr(0, 12), endpoint.ip.str(), endpoint.host_ifname, sandbox_key,
                 network.name);
    return JoinResult{endpoint, network};
}

Status NetworkService::unjoin_docker_endpoint_locked(Endpoint endpoint, const Snapshot& snap) {
    const Network* network = network_by_id(snap.networks, endpoint.network_id);
    const Sandbox* found = sandbox_by_id(snap.sandboxes, endpoint.sandbox_id);
    Sandbox sandbox = found ? *found : placeholder_sandbox(endpoint);
    endpoint.state = Lifecycle::Deleting;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    failpoint("docker.leave.marked");
    // The other hosts stop sending to it first.
    if (network) drivers_->of(*network).endpoint_left(*network, endpoint);
    if (network) {
        BPFNET_TRY(datapath_for(*network).remove_endpoint(endpoint, sandbox));
    } else {
        BPFNET_TRY(datapaths_->bridge(DatapathKind::Kernel).remove_endpoint(endpoint, sandbox));
    }
    std::string sandbox_id = std::move(endpoint.sandbox_id);
    endpoint.sandbox_id.clear();
    endpoint.state = Lifecycle::Ready;
    BPFNET_TRY(store_->put_endpoint(endpoint));
    BPFNET_ASSIGN_OR_RETURN(auto endpoints, store_->endpoints_of_sandbox(sandbox_id));
    const bool still_used = !endpoints.empty();
    if (!still_used && sandbox.owner == Owner::Docker)
        BPFNET_TRY(store_->delete_sandbox(sandbox_id));
    return {};
}

Status NetworkService::leave_docker_endpoint(const std::string& network_id,
                                             const std::string& endpoint_id) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_docker_scope(endpoint_id));
    BPFNET_ASSIGN_OR_RETURN(Endpoint endpoint,
                            docker_endpoint_in(snap.endpoints, network_id, endpoint_id));
    if (endpoint.sandbox_id.empty()) return {};  // never joined, or a repeated Leave
    BPFNET_TRY(unjoin_docker_endpoint_locked(endpoint, snap));
    spdlog::info("docker: endpoint {} left its sandbox", endpoint.id.substr(0, 12));
    return {};
}

Result<Endpoint> NetworkService::publish_docker_ports(const std::string& network_id,
                                                      const std::string& endpoint_id,
                                                      const std::vector<PortRequest>& requests) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    BPFNET_ASSIGN_OR_RETURN(Network network, ready_network(networks, network_id));
    BPFNET_ASSIGN_OR_RETURN(Endpoint endpoint, docker_endpoint_locked(network_id, endpoint_id));
    Endpoint previous = endpoint;
    BPFNET_ASSIGN_OR_RETURN(endpoint.ports,
                            allocate_host_ports_locked(requests, network, endpoint.id));
    BPFNET_TRY(store_->put_endpoint(endpoint));
    Status st = change_published_ports_locked(network, previous, false);
    if (st) st = change_published_ports_locked(network, endpoint, true);
    if (!st) {
        if (auto undo = store_->put_endpoint(previous); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        if (auto undo = sync_policy_locked(); !undo)
            spdlog::error("rollback: {}", undo.error().message);
        return fail(st.error());
    }
    for (const auto& p : endpoint.ports)
        spdlog::info("docker: published {} for endpoint {}", p.str(), endpoint.id.substr(0, 12));
    return endpoint;
}

Status NetworkService::unpublish_docker_ports(const std::string& network_id,
                                              const std::string& endpoint_id) {
    std::lock_guard lock(mutex_);
    auto endpoint = docker_endpoint_locked(network_id, endpoint_id);
    if (!endpoint) {
        // Docker revokes on every leave, also for endpoints it never programmed or already removed.
        if (endpoint.error().kind == ErrorKind::NotFound) return {};
        return fail(endpoint.error());
    }
    if (endpoint->ports.empty()) return {};
    Endpoint published = *endpoint;
    endpoint->ports.clear();
    BPFNET_TRY(store_->put_endpoint(*endpoint));
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    const Network* network = network_by_id(networks, network_id);
    if (!network) return sync_policy_locked();
    return change_published_ports_locked(*network, published, false);
}

Status NetworkService::delete_docker_endpoint(const std::string& network_id,
                                              const std::string& endpoint_id) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load_docker_scope(endpoint_id));
    BPFNET_ASSIGN_OR_RETURN(Endpoint endpoint,
                            docker_endpoint_in(snap.endpoints, network_id, endpoint_id));
    if (!endpoint.sandbox_id.empty()) BPFNET_TRY(unjoin_docker_endpoint_locked(endpoint, snap));
    BPFNET_TRY(store_->delete_endpoint(endpoint.id));
    const Network* network = network_by_id(snap.networks, network_id);
    if (network) drivers_->of(*network).release_address(*network, endpoint);
    // Frees its host ports.
    if (network)
        BPFNET_TRY(change_published_ports_locked(*network, endpoint, false));
    else if (!endpoint.ports.empty())
        BPFNET_TRY(sync_policy_locked());
    spdlog::info("docker: deleted endpoint {}", endpoint.id.substr(0, 12));
    return {};
}

Status NetworkService::remove_docker_network(const std::string& network_id) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    const Network* found = network_by_id(snap.networks, network_id);
    if (!found) {
        return fail(ErrorKind::NotFound,
                    fmt::format("network {} not found", network_id.substr(0, 12)));
    }
    if (found->owner != Owner::Docker) {
        return fail(ErrorKind::Conflict,
                    fmt::format("network {} was created with bpfnet, not Docker", found->name));
    }
    // Docker only deletes a network without endpoints; anything left is from an interrupted
    // container teardown and goes with the network.
    for (const auto& e : snap.endpoints) {
        if (e.network_id != network_id) continue;
        spdlog::warn("docker: removing leftover endpoint {} with network {}", e.id.substr(0, 12),
                     found->name);
        if (!e.sandbox_id.empty()) BPFNET_TRY(unjoin_docker_endpoint_locked(e, snap));
        BPFNET_TRY(store_->delete_endpoint(e.id));
        drivers_->of(*found).release_address(*found, e);
    }
    BPFNET_ASSIGN_OR_RETURN(Snapshot now, load());
    return remove_network_locked(*network_by_id(now.networks, network_id), now);
}

Status NetworkService::adopt_docker_identity(const std::string& network_id, const std::string& name,
                                             const std::map<std::string, std::string>& labels) {
    std::lock_guard lock(mutex_);
    if (!is_valid_name(name)) {
        return fail(ErrorKind::InvalidArgument, fmt::format("invalid network name \"{}\"", name));
    }
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    const Network* found = network_by_id(snap.networks, network_id);
    if (!found) {
        return fail(ErrorKind::NotFound,
                    fmt::format("network {} not found", network_id.substr(0, 12)));
    }
    for (const auto& n : snap.networks) {
        if (n.name == name && n.id != network_id) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network with name {} already exists", name));
        }
    }
    Network network = *found;
    network.name = name;
    network.labels = labels;
    BPFNET_TRY(store_->put_network(network));
    return drivers_->of(network).renamed(network);
}

Status NetworkService::reconcile_docker_endpoint_locked(const Endpoint& endpoint,
                                                        const Snapshot& snap) {
    const Network* network = network_by_id(snap.networks, endpoint.network_id);
    if (!network || network->state != Lifecycle::Ready) {
        spdlog::info("reconcile: removing Docker endpoint {} of a removed network",
                     endpoint.id.substr(0, 12));
        if (!endpoint.sandbox_id.empty()) BPFNET_TRY(unjoin_docker_endpoint_locked(endpoint, snap));
        return store_->delete_endpoint(endpoint.id);
    }
    if (endpoint.sandbox_id.empty()) return {};  // created, not joined: nothing in the kernel
    // A veth pair lives exactly as long as both ends: if the host end is gone, the container's
    // namespace (holding the other end) is gone, i.e. the container went away meanwhile. The
    // namespace itself is no evidence: Docker mounts it only when the container starts.
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host_end, kernel::find_link(sock, endpoint.host_ifname));
    bool interrupted = endpoint.state != Lifecycle::Ready;
    if (!interrupted && host_end && sandbox_by_id(snap.sandboxes, endpoint.sandbox_id)) return {};
    // An interrupted Join failed from Docker's point of view and an interrupted Leave must finish;
    // either way the endpoint goes back to "created" and waits for Docker's next call.
    spdlog::info("reconcile: detaching Docker endpoint {} ({})", endpoint.id.substr(0, 12),
                 interrupted ? "interrupted join or leave" : "its container is gone");
    return unjoin_docker_endpoint_locked(endpoint, snap);
}

// ---------------------------------------------------------------------------------------------
// IpamDriver pools

Result<AddressPool> NetworkService::request_pool(std::optional<Cidr> subnet,
                                                 std::optional<Cidr> ip_range) {
    std::lock_guard lock(mutex_);
    if (ip_range && !subnet) {
        return fail(ErrorKind::InvalidArgument,
                    "an ip range (SubPool) can only be requested together with its pool");
    }
    BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    if (subnet) {
        std::string id = pool_id_for(*subnet, ip_range);
        for (auto pool : pools) {
            if (pool.id != id) continue;
            // Docker asks again for a pool it already holds (e.g. another network on the same
            // subnet): same answer, one more reference.
            ++pool.references;
            BPFNET_TRY(store_->put_pool(pool));
            return pool;
        }
    }
    BPFNET_ASSIGN_OR_RETURN(std::vector<Cidr> existing, subnets_in_use_locked(snap, ""));
    BPFNET_ASSIGN_OR_RETURN(auto host_sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host_routes, kernel::list_ipv4_route_destinations(host_sock));
    IpamRequest request;
    request.subnet = subnet;
    request.ip_range = ip_range;
    BPFNET_ASSIGN_OR_RETURN(IpamConfig planned, plan_network_ipam(request, host_routes, existing));
    AddressPool pool;
    pool.subnet = planned.subnet;
    pool.ip_range = planned.ip_range;
    pool.id = pool_id_for(pool.subnet, pool.ip_range);
    pool.created = now_rfc3339();
    BPFNET_TRY(store_->put_pool(pool));
    spdlog::info("ipam: pool {} created", pool.id);
    return pool;
}

Status NetworkService::release_pool(const std::string& pool_id) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    for (auto pool : pools) {
        if (pool.id != pool_id) continue;
        if (--pool.references > 0) return store_->put_pool(pool);
        spdlog::info("ipam: pool {} released", pool.id);
        return store_->delete_pool(pool.id);
    }
    return fail(ErrorKind::NotFound, fmt::format("address pool {} not found", pool_id));
}

Result<std::pair<AddressPool, Ipv4>> NetworkService::request_address(const std::string& pool_id,
                                                                     std::optional<Ipv4> address) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    for (auto pool : pools) {
        if (pool.id != pool_id) continue;
        BPFNET_ASSIGN_OR_RETURN(Ipv4 ip, allocate_pool_address(pool, address));
        pool.allocated.insert(ip);
        BPFNET_TRY(store_->put_pool(pool));
        return std::pair{pool, ip};
    }
    return fail(ErrorKind::NotFound, fmt::format("address pool {} not found", pool_id));
}

Status NetworkService::release_address(const std::string& pool_id, Ipv4 address) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    for (auto pool : pools) {
        if (pool.id != pool_id) continue;
        if (!pool.allocated.erase(address)) {
            return fail(ErrorKind::NotFound, fmt::format("address {} is not allocated in pool {}",
                                                         address.str(), pool_id));
        }
        return store_->put_pool(pool);
    }
    return fail(ErrorKind::NotFound, fmt::format("address pool {} not found", pool_id));
}

Result<std::string> NetworkService::find_pool_id(const Cidr& subnet) {
    std::lock_guard lock(mutex_);
    BPFNET_ASSIGN_OR_RETURN(auto pools, store_->pools());
    for (const auto& pool : pools)
        if (pool.subnet == subnet.masked()) return pool.id;
    return std::string();
}

}  // namespace bpfnet

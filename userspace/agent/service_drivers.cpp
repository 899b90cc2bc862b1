// The predefined networks (host, none and the default bridge) and Docker's rules about which
// sandbox may connect to what, in terms of the networks' drivers.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/service.h"
#include "agent/snapshot_queries.h"
#include "core/ids.h"
#include "core/options.h"

namespace bpfnet {

namespace {

const Network* network_with_driver(const std::vector<Network>& networks, const char* name) {
    auto it = std::find_if(networks.begin(), networks.end(),
                           [&](const Network& n) { return n.driver == name; });
    return it == networks.end() ? nullptr : &*it;
}

}  // namespace

bool NetworkService::is_predefined(const Network& network) const {
    if (network.owner != Owner::Bpfnet) return false;
    if (drivers_->of(network).predefined_only()) return true;
    auto it = network.options.find(opt::kDefaultBridge);
    return it != network.options.end() && it->second == "true";
}

Status NetworkService::check_connect_rules_locked(const Network& network, const Sandbox& sandbox,
                                                  const Snapshot& snap,
                                                  const ConnectRequest& request) {
    NetworkDriver& driver = drivers_->of(network);
    if (auto refused = driver.fixed_membership()) return *refused;
    auto in_sandbox = endpoints_where(
        snap.endpoints, [&](const Endpoint& e) { return e.sandbox_id == sandbox.id; });
    // The sandbox is the host's namespace, or already on a network that admits no other.
    if (sandbox.mode == SandboxMode::Host)
        return *drivers_->builtin_for(SandboxMode::Host).excludes_other_networks();
    for (const auto& e : in_sandbox) {
        const Network* on = network_by_id(snap.networks, e.network_id);
        if (!on) continue;
        if (auto refused = drivers_->of(*on).excludes_other_networks()) return *refused;
    }
    BPFNET_TRY(driver.check_connect(network, sandbox, in_sandbox, request));
    if (!request.publish.empty()) {
        if (auto refused = driver.refuses_ports()) return *refused;
    }
    return {};
}

Result<Endpoint> NetworkService::attach_builtin_locked(const BuiltinDriver& driver,
                                                       const Sandbox& sandbox) {
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    const Network* network = network_with_driver(networks, driver.name());
    if (!network) {
        return fail(ErrorKind::NotFound,
                    fmt::format("the predefined {} network does not exist", driver.network_name()));
    }
    return record_membership_locked(*network, sandbox);
}

Result<Endpoint> NetworkService::record_membership_locked(const Network& network,
                                                          const Sandbox& sandbox) {
    Endpoint endpoint;
    endpoint.id = generate_id();
    endpoint.network_id = network.id;
    endpoint.sandbox_id = sandbox.id;
    endpoint.created = now_rfc3339();
    endpoint.state = Lifecycle::Ready;  // nothing to create in the kernel
    BPFNET_TRY(store_->put_endpoint(endpoint));
    spdlog::info("sandbox {} is on the {} network", sandbox.name, network.name);
    return endpoint;
}

Status NetworkService::ensure_predefined_networks() {
    {
        std::lock_guard lock(mutex_);
        BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
        for (const BuiltinDriver* builtin : drivers_->builtins()) {
            if (network_with_driver(snap.networks, builtin->name())) continue;
            const std::string name = builtin->network_name();
            if (std::any_of(snap.networks.begin(), snap.networks.end(),
                            [&](const Network& n) { return n.name == name; })) {
                spdlog::warn("a network named {} exists: the predefined {} network is not created",
                             name, name);
                continue;
            }
            Network network;
            network.id = generate_id();
            network.name = name;
            network.driver = builtin->name();
            network.created = now_rfc3339();
            network.state = Lifecycle::Ready;
            BPFNET_ASSIGN_OR_RETURN(network.datapath_id, store_->allocate_datapath_id());
            BPFNET_TRY(store_->put_network(network));
            spdlog::info("created the predefined {} network ({})", name, network.id.substr(0, 12));
        }
        if (config_.default_bridge == "none") return {};
        for (const auto& n : snap.networks) {
            if (is_predefined(n) && !drivers_->of(n).predefined_only()) return {};
            if (n.name == "bridge") {
                spdlog::warn("a network named bridge exists: the default bridge is not created");
                return {};
            }
        }
    }
    CreateNetworkRequest request;
    request.name = "bridge";
    request.driver = driver::kBridge;
    request.options = {{opt::kBridgeName, config_.default_bridge}, {opt::kDefaultBridge, "true"}};
    if (!config_.default_bridge_subnet.empty()) {
        BPFNET_ASSIGN_OR_RETURN(request.ipam.subnet, Cidr::parse(config_.default_bridge_subnet));
    }
    auto made = create_network(request);
    if (!made) {
        // The agent still serves everything else; say why `bridge` is missing.
        spdlog::error("the default bridge network could not be created: {}", made.error().message);
    }
    return {};
}

}  // namespace bpfnet

// The drivers besides bridge: macvlan/ipvlan networks (planning their parent), the predefined
// host and none networks, and Docker's rules about who may connect to what.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/service.h"
#include "agent/snapshot_queries.h"
#include "core/child_link_options.h"
#include "core/ids.h"
#include "core/options.h"
#include "datapath/child_link_datapath.h"
#include "kernel/child_links.h"
#include "kernel/netlink.h"

namespace bpfnet {

namespace {

const Network* network_with_driver(const std::vector<Network>& networks, const char* name) {
    auto it = std::find_if(networks.begin(), networks.end(),
                           [&](const Network& n) { return n.driver == name; });
    return it == networks.end() ? nullptr : &*it;
}

}  // namespace

bool NetworkService::is_predefined(const Network& network) {
    if (network.owner != Owner::Bpfnet) return false;
    if (is_builtin_only_driver(network.driver)) return true;
    auto it = network.options.find(opt::kDefaultBridge);
    return network.driver == driver::kBridge && it != network.options.end() && it->second == "true";
}

Status NetworkService::plan_child_link_network_locked(const CreateNetworkRequest& request,
                                                      const Snapshot& snap, Network& network) {
    if (!datapaths_->has_child_links()) {
        return fail(ErrorKind::Unsupported,
                    fmt::format("{} networks are not available in this agent", request.driver));
    }
    BPFNET_ASSIGN_OR_RETURN(ChildLinkOptions options,
                            parse_child_link_options(request.driver, request.options));
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions common, parse_bridge_options(request.options));
    if (common.datapath == DatapathMode::Bpf) {
        return fail(ErrorKind::Unsupported,
                    fmt::format("bpfnet.datapath=bpf: {} networks have no BPF datapath (the "
                                "kernel's {} driver switches their traffic); use auto or kernel",
                                request.driver, request.driver));
    }
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    if (request.driver == driver::kIpvlan) {
        BPFNET_ASSIGN_OR_RETURN(bool supported, kernel::link_kind_supported(sock, "ipvlan"));
        if (!supported) {
            return fail(ErrorKind::Unsupported,
                        "ipvlan networks need the kernel's ipvlan driver (CONFIG_IPVLAN), which "
                        "this kernel does not have; use -d macvlan");
        }
    }
    if (options.parent.empty() || request.internal) {
        // Docker's rule: no parent (or --internal) means a network of its own containers only,
        // hung off a device bpfnet makes for it.
        network.parent = internal_parent_name(network.id);
        network.bridge_name = network.parent;
        network.internal = true;
    } else {
        network.parent = options.parent;
        BPFNET_ASSIGN_OR_RETURN(auto parent, kernel::find_link(sock, options.parent));
        if (!parent && options.vlan_id) {
            BPFNET_ASSIGN_OR_RETURN(auto base, kernel::find_link(sock, options.vlan_base));
            if (!base) {
                return fail(ErrorKind::NotFound,
                            fmt::format("-o parent interface was not found on the host: {}",
                                        options.vlan_base));
            }
            BPFNET_ASSIGN_OR_RETURN(bool vlans, kernel::link_kind_supported(sock, "vlan"));
            if (!vlans) {
                return fail(ErrorKind::Unsupported,
                            fmt::format("parent {} is 802.1Q VLAN {} of {}, and this kernel has no "
                                        "802.1Q VLAN devices (CONFIG_VLAN_8021Q); create the VLAN "
                                        "interface another way and pass it as parent",
                                        options.parent, *options.vlan_id, options.vlan_base));
            }
            network.bridge_name = options.parent;  // made on demand, removed with the network
        } else if (!parent) {
            return fail(
                ErrorKind::NotFound,
                fmt::format("-o parent interface was not found on the host: {}", options.parent));
        }
    }
    for (const auto& n : snap.networks) {
        if (is_child_link_driver(n.driver) && n.parent == network.parent) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network {} is already using parent interface {}", n.name,
                                    network.parent));
        }
    }
    return {};
}

Status NetworkService::check_connect_rules_locked(const Network& network, const Sandbox& sandbox,
                                                  const Snapshot& snap,
                                                  const ConnectRequest& request) {
    if (network.driver == driver::kHost) {
        return fail(ErrorKind::Conflict,
                    "container cannot be disconnected from host network or connected to host "
                    "network");
    }
    auto in_sandbox = endpoints_where(
        snap.endpoints, [&](const Endpoint& e) { return e.sandbox_id == sandbox.id; });
    auto on = [&](const char* driver_name) {
        return std::any_of(in_sandbox.begin(), in_sandbox.end(), [&](const Endpoint& e) {
            const Network* n = network_by_id(snap.networks, e.network_id);
            return n && n->driver == driver_name;
        });
    };
    if (sandbox.mode == SandboxMode::Host || on(driver::kHost)) {
        return fail(ErrorKind::Conflict,
                    "container sharing network namespace with another container or host cannot "
                    "be connected to any other network");
    }
    if (on(driver::kNull) || (network.driver == driver::kNull && !in_sandbox.empty())) {
        return fail(ErrorKind::Conflict,
                    "container cannot be connected to multiple networks with one of the networks "
                    "in private (none) mode");
    }
    if (is_child_link_driver(network.driver)) {
        if (!request.publish.empty()) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("port publishing is not supported on {} networks: the "
                                    "sandbox is reached on its own address",
                                    network.driver));
        }
        auto options = parse_child_link_options(network.driver, network.options);
        if (options && options->mode == "passthru") {
            BPFNET_ASSIGN_OR_RETURN(auto on_parent, store_->endpoints_of_network(network.id));
            for (const auto& e : on_parent) {
                BPFNET_ASSIGN_OR_RETURN(auto holder, store_->sandbox(e.sandbox_id));
                return fail(ErrorKind::Conflict,
                            fmt::format("parent {} is in passthru mode and already carries the "
                                        "endpoint of {}: passthru gives the parent to one "
                                        "endpoint only",
                                        network.parent, holder ? holder->name : e.sandbox_id));
            }
        }
    }
    return {};
}

Result<Endpoint> NetworkService::attach_builtin_locked(const std::string& driver_name,
                                                       const Sandbox& sandbox) {
    BPFNET_ASSIGN_OR_RETURN(auto networks, store_->networks());
    const Network* network = network_with_driver(networks, driver_name.c_str());
    if (!network) {
        return fail(ErrorKind::NotFound,
                    fmt::format("the predefined {} network does not exist",
                                driver_name == driver::kHost ? "host" : "none"));
    }
    Endpoint endpoint;
    endpoint.id = generate_id();
    endpoint.network_id = network->id;
    endpoint.sandbox_id = sandbox.id;
    endpoint.created = now_rfc3339();
    endpoint.state = Lifecycle::Ready;  // nothing to create in the kernel
    BPFNET_TRY(store_->put_endpoint(endpoint));
    spdlog::info("sandbox {} is on the {} network", sandbox.name, network->name);
    return endpoint;
}

Status NetworkService::ensure_predefined_networks() {
    {
        std::lock_guard lock(mutex_);
        BPFNET_ASSIGN_OR_RETURN(Snapshot snap, load());
        for (const auto& [driver_name, predefined] :
             {std::pair{driver::kHost, "host"}, std::pair{driver::kNull, "none"}}) {
            if (network_with_driver(snap.networks, driver_name)) continue;
            // A copy: lambdas may not capture structured bindings before C++20 (clang 14).
            const std::string name = predefined;
            if (std::any_of(snap.networks.begin(), snap.networks.end(),
                            [&](const Network& n) { return n.name == name; })) {
                spdlog::warn("a network named {} exists: the predefined {} network is not created",
                             name, name);
                continue;
            }
            Network network;
            network.id = generate_id();
            network.name = name;
            network.driver = driver_name;
            network.created = now_rfc3339();
            network.state = Lifecycle::Ready;
            BPFNET_ASSIGN_OR_RETURN(network.datapath_id, store_->allocate_datapath_id());
            BPFNET_TRY(store_->put_network(network));
            spdlog::info("created the predefined {} network ({})", name, network.id.substr(0, 12));
        }
        if (config_.default_bridge == "none") return {};
        for (const auto& n : snap.networks) {
            if (is_predefined(n) && n.driver == driver::kBridge) return {};
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

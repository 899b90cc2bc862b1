#include "agent/drivers/child_link_driver.h"

#include <fmt/format.h>

#include "core/child_link_options.h"
#include "datapath/child_link_datapath.h"
#include "kernel/child_links.h"
#include "kernel/netlink.h"

namespace bpfnet {

Status ChildLinkDriver::check_request(const CreateNetworkRequest& /*request*/,
                                      const BridgeOptions& options) const {
    if (!datapaths_.has_child_links())
        return fail(ErrorKind::Unsupported,
                    fmt::format("{} networks are not available in this agent", kind_));
    if (options.gateway_mode != GatewayMode::Nat)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{} applies to bridge networks only", opt::kGatewayModeIpv4));
    if (options.datapath == DatapathMode::Bpf) {
        return fail(ErrorKind::Unsupported,
                    fmt::format("bpfnet.datapath=bpf: {} networks have no BPF datapath (the "
                                "kernel's {} driver switches their traffic); use auto or kernel",
                                kind_, kind_));
    }
    return {};
}

Result<NetworkPlan> ChildLinkDriver::plan(const CreateNetworkRequest& request, const Snapshot& snap,
                                          Network& network) {
    BPFNET_ASSIGN_OR_RETURN(ChildLinkOptions options,
                            parse_child_link_options(kind_, request.options));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    if (std::string_view(kind_) == driver::kIpvlan) {
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
        const bool child_link = n.driver == driver::kMacvlan || n.driver == driver::kIpvlan;
        if (child_link && n.parent == network.parent) {
            return fail(ErrorKind::Conflict,
                        fmt::format("network {} is already using parent interface {}", n.name,
                                    network.parent));
        }
    }
    // The subnet is the parent's LAN, which the host may well route already.
    NetworkPlan plan;
    plan.subnet_avoids_host_routes = false;
    return plan;
}

DatapathChoice ChildLinkDriver::datapath_choice(const Network& network) const {
    return {kind_, fmt::format("the kernel's {} driver on parent {} (no BPF datapath for this "
                               "driver)",
                               kind_, network.parent)};
}

Datapath& ChildLinkDriver::datapath(const Network& /*network*/) {
    // Without the child-link datapath no such network is created; one in the store from an agent
    // that had it can only be removed.
    return datapaths_.has_child_links() ? datapaths_.child_links() : datapaths_.none();
}

std::optional<Failure> ChildLinkDriver::refuses_ports() const {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("port publishing is not supported on {} networks: the sandbox is "
                            "reached on its own address",
                            kind_));
}

Status ChildLinkDriver::check_connect(const Network& network, const Sandbox& /*sandbox*/,
                                      const std::vector<Endpoint>& /*in_sandbox*/,
                                      const ConnectRequest& /*request*/) {
    auto options = parse_child_link_options(kind_, network.options);
    if (!options || options->mode != "passthru") return {};
    BPFNET_ASSIGN_OR_RETURN(auto on_parent, store_.endpoints_of_network(network.id));
    for (const auto& e : on_parent) {
        BPFNET_ASSIGN_OR_RETURN(auto holder, store_.sandbox(e.sandbox_id));
        return fail(ErrorKind::Conflict,
                    fmt::format("parent {} is in passthru mode and already carries the endpoint "
                                "of {}: passthru gives the parent to one endpoint only",
                                network.parent, holder ? holder->name : e.sandbox_id));
    }
    return {};
}

}  // namespace bpfnet

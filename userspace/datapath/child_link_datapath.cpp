#include "datapath/child_link_datapath.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/child_link_options.h"
#include "core/options.h"
#include "kernel/child_links.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"
#include "kernel/sysctl.h"

namespace bpfnet {

namespace {

std::string internal_parent_peer(const std::string& network_id) {
    return "bmq-" + network_id.substr(0, 11);
}

// The MTU the user asked for, or 0 for the parent's (a child cannot exceed its parent anyway).
unsigned requested_mtu(const Network& network) {
    return network.options.count(opt::kMtu)
               ? static_cast<unsigned>(parse_bridge_options(network.options)->mtu)
               : 0;
}

}  // namespace

std::string internal_parent_name(const std::string& network_id) {
    return "bmp-" + network_id.substr(0, 11);
}

Status ChildLinkDatapath::ensure_network(const NetworkSpec& spec) {
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(ChildLinkOptions options,
                            parse_child_link_options(network.driver, network.options));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    if (!network.bridge_name.empty()) {
        BPFNET_ASSIGN_OR_RETURN(auto made, kernel::find_link(sock, network.bridge_name));
        if (made && !kernel_.owned_by_us(made->alias)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("interface {} already exists and is not managed by this "
                                    "bpfnet agent",
                                    network.bridge_name));
        }
        const std::string alias = kernel_.owner_alias("net", network.id);
        if (!made && options.vlan_id) {
            BPFNET_ASSIGN_OR_RETURN(bool vlans, kernel::link_kind_supported(sock, "vlan"));
            if (!vlans) {
                return fail(ErrorKind::Unsupported,
                            fmt::format("parent {} is 802.1Q VLAN {} of {}, and this kernel has no "
                                        "802.1Q VLAN devices (CONFIG_VLAN_8021Q); create the VLAN "
                                        "interface some other way and pass it as parent",
                                        network.parent, *options.vlan_id, options.vlan_base));
            }
            BPFNET_TRY(kernel::create_vlan(sock, network.bridge_name, options.vlan_base,
                                           *options.vlan_id, alias));
        } else if (!made) {
            kernel::VethSpec veth{
                .host_name = network.bridge_name,
                .host_alias = alias,
                .bridge_name = "",
                .peer_name = internal_parent_peer(network.id),
                .peer_netns_path = "",
                .peer_mac = {},
                .mtu = requested_mtu(network),
            };
            BPFNET_TRY(kernel::create_veth(sock, veth));
            BPFNET_TRY(kernel::set_link_up(sock, veth.peer_name));
        }
        BPFNET_TRY(kernel::set_link_up(sock, network.bridge_name));
    }
    BPFNET_ASSIGN_OR_RETURN(auto parent, kernel::find_link(sock, network.parent));
    if (!parent) {
        return fail(
            ErrorKind::NotFound,
            fmt::format("-o parent interface was not found on the host: {}", network.parent));
    }
    return {};
}

Status ChildLinkDatapath::remove_network(const Network& network) {
    if (network.bridge_name.empty()) return {};  // the parent is the user's
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto made, kernel::find_link(sock, network.bridge_name));
    if (!made) return {};
    if (!kernel_.owned_by_us(made->alias) && !made->alias.empty()) {
        spdlog::warn("not deleting {}: it is not marked as created by this agent",
                     network.bridge_name);
        return {};
    }
    // Deleting one end of the internal pair deletes both; a VLAN goes with its children.
    return kernel::delete_link(sock, network.bridge_name);
}

Status ChildLinkDatapath::ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                          const Sandbox& sandbox) {
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(ChildLinkOptions options,
                            parse_child_link_options(network.driver, network.options));
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto inner, kernel::NlSocket::open_in_netns(sandbox.netns_path));
    BPFNET_ASSIGN_OR_RETURN(auto existing, kernel::find_link(inner, endpoint.ifname));
    const bool macvlan = network.driver == "macvlan";
    const bool usable =
        existing && existing->kind == network.driver && (!macvlan || existing->mac == endpoint.mac);
    if (!usable) {
        if (existing) BPFNET_TRY(kernel::delete_link(inner, endpoint.ifname));
        kernel::ChildLinkSpec child{
            .kind = network.driver,
            .parent = network.parent,
            .name = endpoint.ifname,
            .netns_path = sandbox.netns_path,
            .mode = options.mode,
            .mac = macvlan ? endpoint.mac : MacAddr{},
            .mtu = requested_mtu(network),
        };
        BPFNET_TRY(kernel::create_child_link(host, child));
    }
    BPFNET_TRY(kernel::add_address(inner, endpoint.ifname,
                                   Cidr{endpoint.ip, network.ipam.subnet.prefix_len}));
    // Networks are IPv4-only, and as Docker does for those, the container's link gets no IPv6
    // (it would take addresses from the parent's LAN's router advertisements).
    BPFNET_TRY(kernel::disable_link_ipv6_in(sandbox.netns_path, endpoint.ifname));
    BPFNET_TRY(kernel::set_link_up(inner, endpoint.ifname));
    if (endpoint.default_route)
        BPFNET_TRY(kernel::replace_default_route(inner, endpoint.ifname, network.ipam.gateway));
    return {};
}

Status ChildLinkDatapath::remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) {
    if (!kernel::netns_exists(sandbox.netns_path)) return {};
    BPFNET_ASSIGN_OR_RETURN(auto inner, kernel::NlSocket::open_in_netns(sandbox.netns_path));
    BPFNET_ASSIGN_OR_RETURN(auto existing, kernel::find_link(inner, endpoint.ifname));
    if (existing && (existing->kind == "macvlan" || existing->kind == "ipvlan"))
        return kernel::delete_link(inner, endpoint.ifname);
    return {};
}

}  // namespace bpfnet

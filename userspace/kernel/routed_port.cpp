#include "kernel/routed_port.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "kernel/neighbours.h"
#include "kernel/nl_objects.h"
#include "kernel/nl_util.h"
#include "kernel/sysctl.h"

namespace bpfnet::kernel {
namespace {

// `ip route replace ENDPOINT/32 dev IFNAME scope link src GATEWAY`: more specific than the
// bridge's subnet route, so the host's traffic to the endpoint leaves through its own veth.
Status replace_host_route(NlSocket& sock, int ifindex, const RoutedPortSpec& spec,
                          std::string_view what) {
    nl::RoutePtr route(rtnl_route_alloc());
    nl::NlAddrPtr dst = make_ipv4_addr(spec.endpoint_ip, 32);
    nl::NlAddrPtr src = make_ipv4_addr(spec.gateway, 32);
    nl::NexthopPtr nexthop(rtnl_route_nh_alloc());
    if (!route || !dst || !src || !nexthop) return out_of_memory(what);
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    rtnl_route_set_scope(route.get(), RT_SCOPE_LINK);
    if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) return nl_failure(err, what);
    if (int err = rtnl_route_set_pref_src(route.get(), src.get()); err < 0)
        return nl_failure(err, what);
    rtnl_route_nh_set_ifindex(nexthop.get(), ifindex);
    rtnl_route_add_nexthop(route.get(), nexthop.release());  // the route owns it from here on
    int err = nl_call([&] { return rtnl_route_add(sock.get(), route.get(), NLM_F_REPLACE); });
    if (err < 0) return nl_failure(err, what);
    return {};
}

// Proxy ARP answers for addresses routed through another interface, at once (proxy_delay would
// hold broadcast requests back for up to 0.8 s).
Status enable_proxy_arp(const std::string& ifname) {
    BPFNET_TRY(write_sysctl("net/ipv4/conf/" + ifname + "/proxy_arp", "1"));
    return write_sysctl("net/ipv4/neigh/" + ifname + "/proxy_delay", "0");
}

}  // namespace

bool is_routed_port(const LinkInfo& link, uint32_t group) {
    return link.master_ifindex == 0 && link.group == group;
}

Status make_routed_port(NlSocket& host, const RoutedPortSpec& spec) {
    std::string what = fmt::format("make {} a routed port of bridge {}", spec.ifname, spec.bridge);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr bridge, require_link(host, spec.bridge, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(host, spec.ifname, what));
    const LinkInfo bridge_info = to_link_info(bridge.get());
    const LinkInfo info = to_link_info(link.get());
    if (info.master_ifindex != 0) BPFNET_TRY(set_master(host, link.get(), 0, what));
    if (info.mac != bridge_info.mac || info.group != spec.group) {
        // veths take a new MAC while up.
        BPFNET_TRY(change_link(host, link.get(), what, [&](rtnl_link* changes) {
            nl::NlAddrPtr mac(
                nl_addr_build(AF_LLC, bridge_info.mac.bytes.data(), bridge_info.mac.bytes.size()));
            if (mac) rtnl_link_set_addr(changes, mac.get());
            rtnl_link_set_group(changes, spec.group);
        }));
    }
    BPFNET_TRY(enable_proxy_arp(spec.ifname));
    // The kernel NAT's loopback connections to published ports (curl 127.0.0.1:8080) leave through
    // the endpoint's port with their 127/8 source; the firewall's loopback guard drops 127/8
    // destinations arriving from routed ports, so the endpoint gains nothing.
    BPFNET_TRY(write_sysctl("net/ipv4/conf/" + spec.ifname + "/route_localnet", "1"));
    BPFNET_TRY(enable_proxy_arp(spec.bridge));
    BPFNET_TRY(bring_up(host, link.get(), what));
    BPFNET_TRY(
        replace_permanent_neighbour(host, info.ifindex, spec.endpoint_ip, spec.endpoint_mac));
    return replace_host_route(host, info.ifindex, spec, what);
}

}  // namespace bpfnet::kernel

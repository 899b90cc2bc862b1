#include "kernel/netlink.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/netlink.h>
#include <netlink/route/link/veth.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kernel/netns.h"
#include "kernel/nl_objects.h"
#include "kernel/nl_util.h"
#include "kernel/sysctl.h"

namespace bpfnet::kernel {

// -------------------------------------------------------------------------------------------------
// NlSocket
// -------------------------------------------------------------------------------------------------

void NlSocket::Deleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}  // also closes the fd

NlSocket::~NlSocket() = default;

Result<NlSocket> NlSocket::open() {
    constexpr std::string_view what = "open netlink socket";
    nl_sock* raw = nl_socket_alloc();
    if (!raw) return out_of_memory(what);
    NlSocket sock(raw);
    if (int err = nl_connect(raw, NETLINK_ROUTE); err < 0) {
        return fail(ErrorKind::Internal, fmt::format("{}: {}", what, nl_geterror(err)));
    }
    if (int err = nl_socket_modify_err_cb(raw, NL_CB_CUSTOM, record_kernel_error, nullptr);
        err < 0) {
        return fail(ErrorKind::Internal, fmt::format("{}: {}", what, nl_geterror(err)));
    }
    // Best effort, both options exist since Linux 4.12/4.3: EXT_ACK makes the kernel explain its
    // EINVALs; CAP_ACK stops it from echoing each failed request back inside the error.
    int one = 1;
    setsockopt(nl_socket_get_fd(raw), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    setsockopt(nl_socket_get_fd(raw), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    return sock;
}

Result<NlSocket> NlSocket::open_in_netns(const std::string& netns_path) {
    // A netlink socket stays bound to the namespace it was created in, so only its creation needs
    // to happen inside; all later requests can be made from any thread.
    std::optional<NlSocket> opened;
    Status entered = run_in_netns(netns_path, [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(NlSocket sock, open());
        opened.emplace(std::move(sock));
        return {};
    });
    if (!entered) return fail(entered.error());
    return std::move(*opened);
}

// -------------------------------------------------------------------------------------------------
// Links
// -------------------------------------------------------------------------------------------------

Result<std::vector<LinkInfo>> list_links(NlSocket& sock) {
    nl_cache* raw = nullptr;
    int err = nl_call([&] { return rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, "list links");
    std::vector<LinkInfo> links;
    for_each<rtnl_link>(cache.get(), [&](rtnl_link* link) { links.push_back(to_link_info(link)); });
    return links;
}

Result<std::optional<LinkInfo>> find_link(NlSocket& sock, const std::string& name) {
    std::string what = fmt::format("find link {}", name);
    BPFNET_TRY(check_ifname(name, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, lookup_link(sock, 0, name, what));
    if (!link) return std::optional<LinkInfo>{};
    return std::optional<LinkInfo>{to_link_info(link.get())};
}

namespace {

// IFLA_BR_FORWARD_DELAY = 0. Without STP the delay delays nothing, but the kernel still arms a
// timer for each port that joins the bridge and, when it fires forward_delay (15 s by default)
// later, announces the port with an RTM_NEWLINK: endpoints made in a burst came back 15 s later
// as a burst of notifications that overran the agent's host watch (each overrun a survey of every
// link on the host), while later operations ran. libnl 3.7 has no setter for the bridge's own
// attributes, so the request is built with its message API.
Status zero_forward_delay(NlSocket& sock, rtnl_link* bridge, std::string_view what) {
    std::unique_ptr<nl_msg, decltype(&nlmsg_free)> msg(
        nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK), &nlmsg_free);
    if (!msg) return out_of_memory(what);
    ifinfomsg header{};
    header.ifi_family = AF_UNSPEC;
    header.ifi_index = rtnl_link_get_ifindex(bridge);
    nlattr* linkinfo = nullptr;
    nlattr* data = nullptr;
    if (nlmsg_append(msg.get(), &header, sizeof(header), NLMSG_ALIGNTO) < 0 ||
        !(linkinfo = nla_nest_start(msg.get(), IFLA_LINKINFO)) ||
        nla_put_string(msg.get(), IFLA_INFO_KIND, "bridge") < 0 ||
        !(data = nla_nest_start(msg.get(), IFLA_INFO_DATA)) ||
        nla_put_u32(msg.get(), IFLA_BR_FORWARD_DELAY, 0) < 0 || nla_nest_end(msg.get(), data) < 0 ||
        nla_nest_end(msg.get(), linkinfo) < 0)
        return out_of_memory(what);
    // nl_send_sync frees the message.
    int err = nl_call([&] { return nl_send_sync(sock.get(), msg.release()); });
    if (err < 0) return nl_failure(err, what);
    return {};
}

}  // namespace

Status create_bridge(NlSocket& sock, const std::string& name, unsigned mtu,
                     const std::string& alias) {
    std::string what = fmt::format("create bridge {}", name);
    BPFNET_TRY(check_ifname(name, what));

    nl::LinkPtr bridge(rtnl_link_alloc());
    if (!bridge) return out_of_memory(what);
    if (int err = rtnl_link_set_type(bridge.get(), "bridge"); err < 0) return nl_failure(err, what);
    rtnl_link_set_name(bridge.get(), name.c_str());
    if (mtu != 0) rtnl_link_set_mtu(bridge.get(), mtu);
    // An explicit MAC (as Docker sets one): left alone, a bridge takes the lowest MAC among its
    // ports and changes it whenever a port with a lower one joins or the owner leaves, so every
    // container's ARP entry for the gateway would go stale. The kernel keeps a MAC given on
    // creation (addr_assign_type NET_ADDR_SET) regardless of ports.
    MacAddr mac = random_local_mac();
    nl::NlAddrPtr lladdr(nl_addr_build(AF_LLC, mac.bytes.data(), mac.bytes.size()));
    if (!lladdr) return out_of_memory(what);
    rtnl_link_set_addr(bridge.get(), lladdr.get());
    int err =
        nl_call([&] { return rtnl_link_add(sock.get(), bridge.get(), NLM_F_CREATE | NLM_F_EXCL); });
    if (err < 0)
        return nl_failure(err, what, is_exists(err) ? ErrorKind::Conflict : ErrorKind::Internal);

    // The kernel ignores IFLA_IFALIAS on creation, so the alias is a second request. Until it
    // lands the bridge carries no ownership marker; if it cannot be set, remove the bridge rather
    // than leave an unmarked one that cleanup would never recognise.
    auto configure = [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr created, require_link(sock, name, what));
        if (!alias.empty()) {
            BPFNET_TRY(
                set_alias(sock, created.get(), alias, fmt::format("set alias of bridge {}", name)));
        }
        BPFNET_TRY(zero_forward_delay(sock, created.get(),
                                      fmt::format("set forward delay of bridge {}", name)));
        return bring_up(sock, created.get(), fmt::format("set bridge {} up", name));
    };
    Status configured = configure();
    if (!configured) roll_back(sock, name);
    return configured;
}

namespace {

// Enslaves the link to a bridge; a bridge without room (EXFULL: it numbers its ports in 10 bits)
// is a full network, said so.
Status attach_to_bridge(NlSocket& sock, rtnl_link* link, int bridge_ifindex,
                        const std::string& bridge_name, std::string_view what) {
    Status attached = set_master(sock, link, bridge_ifindex, what);
    if (!attached && attached.error().message.find(std::strerror(EXFULL)) != std::string::npos)
        return fail(ErrorKind::Exhausted,
                    fmt::format("the network is full: its bridge {} already has {} ports, the "
                                "most a Linux bridge can hold",
                                bridge_name, kMaxBridgePorts));
    return attached;
}

}  // namespace

Status create_veth(NlSocket& host, const VethSpec& spec) {
    std::string what = fmt::format(
        "create veth {} (peer {} in {})", spec.host_name, spec.peer_name,
        spec.peer_netns_path.empty() ? std::string("the host namespace") : spec.peer_netns_path);
    BPFNET_TRY(check_ifname(spec.host_name, what));
    BPFNET_TRY(check_ifname(spec.peer_name, what));
    if (spec.peer_mac.is_multicast()) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{}: peer MAC {} is multicast", what, spec.peer_mac.str()));
    }

    // Resolve the bridge before creating anything, so a missing bridge costs no rollback.
    int bridge_ifindex = 0;
    if (!spec.bridge_name.empty()) {
        BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr bridge, require_link(host, spec.bridge_name, what));
        bridge_ifindex = rtnl_link_get_ifindex(bridge.get());
    }

    // The fd only has to stay open until the kernel has processed the request.
    std::optional<NetnsFd> netns;
    if (!spec.peer_netns_path.empty()) {
        auto opened = NetnsFd::open(spec.peer_netns_path);
        if (!opened)
            return fail(opened.error().kind, fmt::format("{}: {}", what, opened.error().message));
        netns.emplace(std::move(*opened));
    }

    nl::LinkPtr veth(rtnl_link_veth_alloc());
    if (!veth) return out_of_memory(what);
    nl::LinkPtr peer(rtnl_link_veth_get_peer(veth.get()));
    rtnl_link_set_name(veth.get(), spec.host_name.c_str());
    rtnl_link_set_name(peer.get(), spec.peer_name.c_str());
    if (spec.mtu != 0) {
        rtnl_link_set_mtu(veth.get(), spec.mtu);
        rtnl_link_set_mtu(peer.get(), spec.mtu);
    }
    if (!spec.peer_mac.is_zero()) {
        nl::NlAddrPtr mac(
            nl_addr_build(AF_LLC, spec.peer_mac.bytes.data(), spec.peer_mac.bytes.size()));
        if (!mac) return out_of_memory(what);
        rtnl_link_set_addr(peer.get(), mac.get());
    }
    // IFLA_NET_NS_FD inside the peer's info: the kernel creates the peer directly in the sandbox,
    // so it never shows up on the host (no name clash with host devices, no window where host
    // tooling sees it) and can already carry its final name.
    if (netns) rtnl_link_set_ns_fd(peer.get(), netns->get());

    int err =
        nl_call([&] { return rtnl_link_add(host.get(), veth.get(), NLM_F_CREATE | NLM_F_EXCL); });
    if (err < 0)
        return nl_failure(err, what, is_exists(err) ? ErrorKind::Conflict : ErrorKind::Internal);

    auto configure = [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr created, require_link(host, spec.host_name, what));
        if (!spec.host_alias.empty()) {
            // IFLA_IFALIAS is ignored on creation, hence a separate change.
            BPFNET_TRY(set_alias(host, created.get(), spec.host_alias,
                                 fmt::format("set alias of veth {}", spec.host_name)));
        }
        if (bridge_ifindex != 0) {
            BPFNET_TRY(attach_to_bridge(
                host, created.get(), bridge_ifindex, spec.bridge_name,
                fmt::format("attach veth {} to bridge {}", spec.host_name, spec.bridge_name)));
        }
        // Before it goes up, when the kernel would give it a link-local address: an endpoint's
        // host end without IPv6 puts no prefix, local or multicast route into the host's one
        // IPv6 FIB, which the kernel walks whole whenever any link goes down or away (so each
        // connect and disconnect would cost more the more endpoints the host has). Bridged IPv6
        // frames do not need the port's own IPv6 stack.
        if (!spec.host_ipv6) BPFNET_TRY(disable_link_ipv6(spec.host_name));
        // Up last: the port starts forwarding only once it is fully configured.
        return bring_up(host, created.get(), fmt::format("set veth {} up", spec.host_name));
    };
    Status configured = configure();
    // Deleting the host end deletes the pair, including the peer inside the sandbox.
    if (!configured) roll_back(host, spec.host_name);
    return configured;
}

Status delete_link(NlSocket& sock, const std::string& name) {
    std::string what = fmt::format("delete link {}", name);
    BPFNET_TRY(check_ifname(name, what));
    nl::LinkPtr link(rtnl_link_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), name.c_str());
    int err = nl_call([&] { return rtnl_link_delete(sock.get(), link.get()); });
    if (err < 0 && !is_missing_link(err)) return nl_failure(err, what);
    return {};
}

Status set_link_up(NlSocket& sock, const std::string& name) {
    std::string what = fmt::format("set link {} up", name);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, name, what));
    return bring_up(sock, link.get(), what);
}

Status set_bridge_port_hairpin(NlSocket& sock, const std::string& name) {
    std::string what = fmt::format("set hairpin mode on bridge port {}", name);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, name, what));
    // RTM_SETLINK for AF_BRIDGE reaches the bridge's port settings (IFLA_PROTINFO); libnl's link
    // change API cannot switch a link object's family, so the request is built with its message
    // API.
    std::unique_ptr<nl_msg, decltype(&nlmsg_free)> msg(
        nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK), &nlmsg_free);
    if (!msg) return out_of_memory(what);
    ifinfomsg header{};
    header.ifi_family = AF_BRIDGE;
    header.ifi_index = rtnl_link_get_ifindex(link.get());
    nlattr* protinfo = nullptr;
    if (nlmsg_append(msg.get(), &header, sizeof(header), NLMSG_ALIGNTO) < 0 ||
        !(protinfo = nla_nest_start(msg.get(), IFLA_PROTINFO | NLA_F_NESTED)) ||
        nla_put_u8(msg.get(), IFLA_BRPORT_MODE, 1) < 0 || nla_nest_end(msg.get(), protinfo) < 0)
        return out_of_memory(what);
    // nl_send_sync frees the message.
    int err = nl_call([&] { return nl_send_sync(sock.get(), msg.release()); });
    if (err < 0) return nl_failure(err, what);
    return {};
}

Status zero_bridge_forward_delay(NlSocket& sock, const std::string& name) {
    std::string what = fmt::format("set forward delay of bridge {}", name);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, name, what));
    return zero_forward_delay(sock, link.get(), what);
}

Status set_link_alias(NlSocket& sock, const std::string& name, const std::string& alias) {
    std::string what = fmt::format("set alias of link {}", name);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, name, what));
    return set_alias(sock, link.get(), alias, what);
}

Status set_link_master(NlSocket& sock, const std::string& name, const std::string& master) {
    std::string what = master.empty() ? fmt::format("detach link {} from its master", name)
                                      : fmt::format("set master of link {} to {}", name, master);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, name, what));
    if (master.empty()) return set_master(sock, link.get(), 0, what);  // 0 releases the link
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr master_link, require_link(sock, master, what));
    // Already there: no request (the kernel would answer a full bridge's EXFULL even then).
    if (rtnl_link_get_master(link.get()) == rtnl_link_get_ifindex(master_link.get())) return {};
    return attach_to_bridge(sock, link.get(), rtnl_link_get_ifindex(master_link.get()), master,
                            what);
}

// -------------------------------------------------------------------------------------------------
// Addresses
// -------------------------------------------------------------------------------------------------

Status add_address(NlSocket& sock, const std::string& ifname, const Cidr& addr) {
    std::string what = fmt::format("add address {} to {}", addr.str(), ifname);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, ifname, what));

    nl::AddrPtr request(rtnl_addr_alloc());
    nl::NlAddrPtr local = make_ipv4_addr(addr.addr, addr.prefix_len);
    if (!request || !local) return out_of_memory(what);
    rtnl_addr_set_family(request.get(), AF_INET);
    rtnl_addr_set_ifindex(request.get(), rtnl_link_get_ifindex(link.get()));
    if (int err = rtnl_addr_set_local(request.get(), local.get()); err < 0) {
        return nl_failure(err, what);
    }
    rtnl_addr_set_prefixlen(request.get(), addr.prefix_len);
    // Like `ip addr add ... brd +` and Docker: without an explicit broadcast address the kernel
    // uses 0.0.0.0, and subnet broadcasts would not be recognised as such.
    if (addr.prefix_len < 31) {
        nl::NlAddrPtr broadcast = make_ipv4_addr(addr.broadcast(), 32);
        if (!broadcast) return out_of_memory(what);
        if (int err = rtnl_addr_set_broadcast(request.get(), broadcast.get()); err < 0) {
            return nl_failure(err, what);
        }
    }
    int err = nl_call([&] { return rtnl_addr_add(sock.get(), request.get(), 0); });
    // The kernel answers EEXIST only when the same address with the same prefix is present.
    if (err < 0 && !is_exists(err)) return nl_failure(err, what);
    return {};
}

Result<std::vector<InterfaceAddress>> list_all_ipv4_addresses(NlSocket& sock) {
    constexpr std::string_view what = "list IPv4 addresses";
    nl_cache* raw = nullptr;
    int err = nl_call([&] { return rtnl_addr_alloc_cache(sock.get(), &raw); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, what);
    std::vector<InterfaceAddress> out;
    for_each<rtnl_addr>(cache.get(), [&](rtnl_addr* a) {
        if (rtnl_addr_get_family(a) != AF_INET) return;
        if (auto ip = to_ipv4(rtnl_addr_get_local(a))) {
            out.push_back(InterfaceAddress{
                .ifindex = rtnl_addr_get_ifindex(a),
                .address = Cidr{*ip, static_cast<uint8_t>(rtnl_addr_get_prefixlen(a))},
                .global = rtnl_addr_get_scope(a) == RT_SCOPE_UNIVERSE});
        }
    });
    return out;
}

Result<std::vector<Cidr>> list_addresses(NlSocket& sock, const std::string& ifname) {
    std::string what = fmt::format("list addresses of {}", ifname);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, ifname, what));
    int ifindex = rtnl_link_get_ifindex(link.get());

    nl_cache* raw = nullptr;
    int err = nl_call([&] { return rtnl_addr_alloc_cache(sock.get(), &raw); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, what);
    std::vector<Cidr> out;
    for_each<rtnl_addr>(cache.get(), [&](rtnl_addr* a) {
        if (rtnl_addr_get_family(a) != AF_INET || rtnl_addr_get_ifindex(a) != ifindex) return;
        if (auto ip = to_ipv4(rtnl_addr_get_local(a))) {
            out.push_back(Cidr{*ip, static_cast<uint8_t>(rtnl_addr_get_prefixlen(a))});
        }
    });
    return out;
}

// -------------------------------------------------------------------------------------------------
// Routes
// -------------------------------------------------------------------------------------------------

Status replace_default_route(NlSocket& sock, const std::string& ifname, Ipv4 gateway) {
    std::string what = fmt::format("replace default route via {} dev {}", gateway.str(), ifname);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, ifname, what));

    nl::RoutePtr route(rtnl_route_alloc());
    nl::NlAddrPtr dst = make_ipv4_addr(Ipv4{}, 0);
    nl::NlAddrPtr gw = make_ipv4_addr(gateway, 32);
    nl::NexthopPtr nexthop(rtnl_route_nh_alloc());
    if (!route || !dst || !gw || !nexthop) return out_of_memory(what);
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) return nl_failure(err, what);
    rtnl_route_nh_set_ifindex(nexthop.get(), rtnl_link_get_ifindex(link.get()));
    rtnl_route_nh_set_gateway(nexthop.get(), gw.get());
    rtnl_route_add_nexthop(route.get(), nexthop.release());  // the route owns it from here on

    // NLM_F_REPLACE (with NLM_F_CREATE, added by libnl): swap an existing default route of the
    // same metric atomically instead of failing with EEXIST or leaving a gap without one.
    int err = nl_call([&] { return rtnl_route_add(sock.get(), route.get(), NLM_F_REPLACE); });
    if (err < 0) return nl_failure(err, what);
    return {};
}

Status delete_default_route(NlSocket& sock) {
    constexpr std::string_view what = "delete default route";
    BPFNET_ASSIGN_OR_RETURN(nl::CachePtr cache, route_cache(sock, what));
    // Delete with the dumped objects themselves: they carry the exact protocol, scope, metric and
    // nexthops, all of which the kernel matches on (a hand-made request with libnl's default
    // protocol "static" would not match a route added by `ip route` or DHCP).
    std::vector<rtnl_route*> defaults;
    for_each<rtnl_route>(cache.get(), [&](rtnl_route* r) {
        if (is_main_ipv4_default(r)) defaults.push_back(r);
    });
    for (rtnl_route* route : defaults) {
        int err = nl_call([&] { return rtnl_route_delete(sock.get(), route, 0); });
        // ESRCH: someone else removed it meanwhile, which is the outcome we want.
        if (err < 0 && err != -NLE_OBJ_NOTFOUND) return nl_failure(err, what);
    }
    return {};
}

Result<std::optional<std::string>> default_route_ifname(NlSocket& sock) {
    constexpr std::string_view what = "find default route";
    BPFNET_ASSIGN_OR_RETURN(nl::CachePtr cache, route_cache(sock, what));
    // With several default routes the kernel uses the one with the lowest metric; for multipath
    // routes the first nexthop stands for the route.
    int best_ifindex = 0;
    uint32_t best_priority = 0;
    for_each<rtnl_route>(cache.get(), [&](rtnl_route* r) {
        if (!is_main_ipv4_default(r) || rtnl_route_get_type(r) != RTN_UNICAST) return;
        if (rtnl_route_get_nnexthops(r) < 1) return;
        int ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
        uint32_t priority = rtnl_route_get_priority(r);
        if (ifindex > 0 && (best_ifindex == 0 || priority < best_priority)) {
            best_ifindex = ifindex;
            best_priority = priority;
        }
    });
    if (best_ifindex == 0) return std::optional<std::string>{};
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, lookup_link(sock, best_ifindex, "", what));
    if (!link) {
        return fail(ErrorKind::NotFound,
                    fmt::format("{}: interface {} vanished", what, best_ifindex));
    }
    return std::optional<std::string>{rtnl_link_get_name(link.get())};
}

Result<std::vector<int>> ipv4_route_ifindexes(NlSocket& sock) {
    BPFNET_ASSIGN_OR_RETURN(nl::CachePtr cache, route_cache(sock, "list routes"));
    std::vector<int> out;
    for_each<rtnl_route>(cache.get(), [&](rtnl_route* r) {
        if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST)
            return;
        for (int i = 0; i < rtnl_route_get_nnexthops(r); ++i) {
            const int ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, i));
            if (ifindex > 0) out.push_back(ifindex);
        }
    });
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

Result<std::vector<Cidr>> list_ipv4_route_destinations(NlSocket& sock) {
    BPFNET_ASSIGN_OR_RETURN(nl::CachePtr cache, route_cache(sock, "list routes"));
    std::vector<Cidr> out;
    for_each<rtnl_route>(cache.get(), [&](rtnl_route* r) {
        if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) {
            return;
        }
        nl_addr* dst = rtnl_route_get_dst(r);
        if (!dst || nl_addr_get_prefixlen(dst) == 0) return;
        if (auto ip = to_ipv4(dst)) {
            out.push_back(Cidr{*ip, static_cast<uint8_t>(nl_addr_get_prefixlen(dst))});
        }
    });
    // Routes to one prefix with different metrics or TOS would otherwise repeat it.
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace bpfnet::kernel

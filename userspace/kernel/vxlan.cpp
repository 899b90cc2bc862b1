#include "kernel/vxlan.h"

#include <linux/neighbour.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>

#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "kernel/nl_util.h"

namespace bpfnet::kernel {

namespace {

nl::NlAddrPtr mac_addr(const MacAddr& mac) {
    return nl::NlAddrPtr(nl_addr_build(AF_LLC, mac.bytes.data(), mac.bytes.size()));
}

std::optional<MacAddr> to_mac(nl_addr* addr) {
    if (!addr || nl_addr_get_len(addr) != 6) return std::nullopt;
    MacAddr mac;
    std::memcpy(mac.bytes.data(), nl_addr_get_binary_addr(addr), 6);
    return mac;
}

// One entry as the kernel has it: FDB (AF_BRIDGE, mac -> vtep) or neighbour (AF_INET, ip -> mac).
struct Entry {
    int family;
    MacAddr mac;
    Ipv4 addr;  // FDB: the VTEP; neighbour: the endpoint's IP
};

Status send_neigh(NlSocket& sock, int ifindex, const Entry& e, bool add, std::string_view what) {
    nl::NeighPtr neigh(rtnl_neigh_alloc());
    if (!neigh) return out_of_memory(what);
    rtnl_neigh_set_ifindex(neigh.get(), ifindex);
    nl::NlAddrPtr lladdr = mac_addr(e.mac);
    nl::NlAddrPtr dst = make_ipv4_addr(e.addr, 32);
    if (!lladdr || !dst) return out_of_memory(what);
    rtnl_neigh_set_lladdr(neigh.get(), lladdr.get());
    // The destination first: libnl refuses an IPv4 address for a neighbour already marked
    // AF_BRIDGE (and would send the FDB entry without its VTEP); the family is set after it.
    if (int err = rtnl_neigh_set_dst(neigh.get(), dst.get()); err < 0) return nl_failure(err, what);
    rtnl_neigh_set_family(neigh.get(), e.family);
    rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
    if (e.family == AF_BRIDGE) rtnl_neigh_set_flags(neigh.get(), NTF_SELF);
    int err = nl_call([&] {
        return add ? rtnl_neigh_add(sock.get(), neigh.get(), NLM_F_CREATE | NLM_F_REPLACE)
                   : rtnl_neigh_delete(sock.get(), neigh.get(), 0);
    });
    if (err < 0 && !(!add && (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOADDR)))
        return nl_failure(err, what);
    return {};
}

}  // namespace

Status create_vxlan(NlSocket& sock, const VxlanSpec& spec) {
    const std::string what =
        fmt::format("create VXLAN {} (VNI {}, VTEP {})", spec.name, spec.vni, spec.local.str());
    BPFNET_TRY(check_ifname(spec.name, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr master, require_link(sock, spec.master, what));
    nl::LinkPtr link(rtnl_link_vxlan_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), spec.name.c_str());
    rtnl_link_vxlan_set_id(link.get(), spec.vni);
    nl::NlAddrPtr local = make_ipv4_addr(spec.local, 32);
    if (!local) return out_of_memory(what);
    rtnl_link_vxlan_set_local(link.get(), local.get());
    rtnl_link_vxlan_set_port(link.get(), spec.port);
    rtnl_link_vxlan_set_learning(link.get(), 0);
    rtnl_link_vxlan_set_proxy(link.get(), 1);
    if (spec.mtu != 0) rtnl_link_set_mtu(link.get(), spec.mtu);
    return add_link_with_alias(sock, link.get(), spec.name, spec.alias, what,
                               rtnl_link_get_ifindex(master.get()));
}

Status create_vxlan_external(NlSocket& sock, const std::string& name, uint16_t port,
                             const std::string& alias) {
    const std::string what = fmt::format("create external VXLAN device {} (UDP {})", name, port);
    BPFNET_TRY(check_ifname(name, what));
    nl::LinkPtr link(rtnl_link_vxlan_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), name.c_str());
    rtnl_link_vxlan_set_collect_metadata(link.get(), 1);
    rtnl_link_vxlan_set_port(link.get(), port);
    rtnl_link_vxlan_set_learning(link.get(), 0);
    return add_link_with_alias(sock, link.get(), name, alias, what);
}

Status sync_vxlan_entries(NlSocket& sock, const std::string& device,
                          const std::vector<RemoteEntry>& wanted) {
    const std::string what = fmt::format("sync forwarding entries of {}", device);
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, require_link(sock, device, what));
    const int ifindex = rtnl_link_get_ifindex(link.get());

    // What the kernel has now: static FDB entries with a remote, permanent neighbours.
    nl_cache* raw = nullptr;
    int err =
        nl_call([&] { return rtnl_neigh_alloc_cache_flags(sock.get(), &raw, NL_CACHE_AF_ITER); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, what);
    using Key = std::tuple<int, std::array<uint8_t, 6>, uint32_t>;
    std::set<Key> have;
    for_each<rtnl_neigh>(cache.get(), [&](rtnl_neigh* n) {
        if (rtnl_neigh_get_ifindex(n) != ifindex) return;
        if (!(rtnl_neigh_get_state(n) & NUD_PERMANENT)) return;
        const int family = rtnl_neigh_get_family(n);
        auto mac = to_mac(rtnl_neigh_get_lladdr(n));
        auto addr = to_ipv4(rtnl_neigh_get_dst(n));
        if (!mac || !addr || (family != AF_BRIDGE && family != AF_INET)) return;
        have.insert({family, mac->bytes, addr->network_order()});
    });
    std::set<Key> want;
    std::vector<Entry> entries;
    for (const auto& r : wanted) {
        want.insert({AF_BRIDGE, r.mac.bytes, r.vtep.network_order()});
        want.insert({AF_INET, r.mac.bytes, r.ip.network_order()});
        entries.push_back({AF_BRIDGE, r.mac, r.vtep});
        entries.push_back({AF_INET, r.mac, r.ip});
    }
    for (const auto& e : entries) {
        if (have.count({e.family, e.mac.bytes, e.addr.network_order()})) continue;
        BPFNET_TRY(send_neigh(sock, ifindex, e, true, what));
    }
    for (const auto& [family, mac_bytes, addr] : have) {
        if (want.count({family, mac_bytes, addr})) continue;
        Entry stale{family, MacAddr{mac_bytes}, Ipv4::from_network_order(addr)};
        BPFNET_TRY(send_neigh(sock, ifindex, stale, false, what));
    }
    return {};
}

Result<std::optional<LinkInfo>> link_of_address(NlSocket& sock, Ipv4 address) {
    BPFNET_ASSIGN_OR_RETURN(auto addresses, list_all_ipv4_addresses(sock));
    for (const auto& a : addresses) {
        if (a.address.addr != address) continue;
        BPFNET_ASSIGN_OR_RETURN(
            auto link, lookup_link(sock, a.ifindex, "", "find the link of " + address.str()));
        if (link) return std::optional<LinkInfo>{to_link_info(link.get())};
    }
    return std::optional<LinkInfo>{};
}

Result<unsigned> mtu_of_address(NlSocket& sock, Ipv4 address) {
    BPFNET_ASSIGN_OR_RETURN(auto link, link_of_address(sock, address));
    return link ? link->mtu : 0u;
}

}  // namespace bpfnet::kernel

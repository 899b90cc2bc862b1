#include "kernel/neighbours.h"

#include <linux/neighbour.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "kernel/nl_objects.h"
#include "kernel/nl_util.h"

namespace bpfnet::kernel {

Status replace_permanent_neighbour(NlSocket& sock, int ifindex, Ipv4 ip, const MacAddr& mac) {
    const std::string what =
        fmt::format("add neighbour {} lladdr {} on ifindex {}", ip.str(), mac.str(), ifindex);
    nl::NeighPtr neigh(rtnl_neigh_alloc());
    nl::NlAddrPtr dst = make_ipv4_addr(ip, 32);
    nl::NlAddrPtr lladdr(nl_addr_build(AF_LLC, mac.bytes.data(), mac.bytes.size()));
    if (!neigh || !dst || !lladdr) return out_of_memory(what);
    rtnl_neigh_set_ifindex(neigh.get(), ifindex);
    if (int err = rtnl_neigh_set_dst(neigh.get(), dst.get()); err < 0) return nl_failure(err, what);
    rtnl_neigh_set_lladdr(neigh.get(), lladdr.get());
    rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
    int err = nl_call(
        [&] { return rtnl_neigh_add(sock.get(), neigh.get(), NLM_F_CREATE | NLM_F_REPLACE); });
    if (err < 0) return nl_failure(err, what);
    return {};
}

Status delete_neighbour(NlSocket& sock, int ifindex, Ipv4 ip) {
    const std::string what = fmt::format("delete neighbour {} on ifindex {}", ip.str(), ifindex);
    nl::NeighPtr neigh(rtnl_neigh_alloc());
    nl::NlAddrPtr dst = make_ipv4_addr(ip, 32);
    if (!neigh || !dst) return out_of_memory(what);
    rtnl_neigh_set_ifindex(neigh.get(), ifindex);
    if (int err = rtnl_neigh_set_dst(neigh.get(), dst.get()); err < 0) return nl_failure(err, what);
    int err = nl_call([&] { return rtnl_neigh_delete(sock.get(), neigh.get(), 0); });
    // Absent (never made, or gone with its device): that is what was wanted.
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV && !is_missing_link(err))
        return nl_failure(err, what);
    return {};
}

Status delete_permanent_neighbours(NlSocket& sock, Ipv4 ip, const MacAddr& mac) {
    const std::string what = fmt::format("delete neighbour {} lladdr {}", ip.str(), mac.str());
    nl_cache* raw = nullptr;
    int err = nl_call([&] { return rtnl_neigh_alloc_cache(sock.get(), &raw); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, what);
    std::vector<rtnl_neigh*> matches;
    for_each<rtnl_neigh>(cache.get(), [&](rtnl_neigh* n) {
        if (rtnl_neigh_get_family(n) != AF_INET || !(rtnl_neigh_get_state(n) & NUD_PERMANENT))
            return;
        nl_addr* lladdr = rtnl_neigh_get_lladdr(n);
        if (to_ipv4(rtnl_neigh_get_dst(n)) != ip || !lladdr ||
            nl_addr_get_len(lladdr) != mac.bytes.size() ||
            std::memcmp(nl_addr_get_binary_addr(lladdr), mac.bytes.data(), mac.bytes.size()) != 0)
            return;
        matches.push_back(n);
    });
    for (rtnl_neigh* n : matches) {
        err = nl_call([&] { return rtnl_neigh_delete(sock.get(), n, 0); });
        // Gone meanwhile (its device deleted): that is what was wanted.
        if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV && !is_missing_link(err))
            return nl_failure(err, what);
    }
    return {};
}

}  // namespace bpfnet::kernel

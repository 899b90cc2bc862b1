// Internal helpers of the kernel library's netlink code (not part of its API): errors with the
// kernel's own errno and extended ACK, link lookups and conversions, and small link changes. Shared
// by netlink.cpp (veth, bridge, addresses, routes) and child_links.cpp (macvlan, ipvlan, VLAN,
// dummy).
#pragma once

#include <linux/netlink.h>
#include <netlink/netlink.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"
#include "kernel/nl_objects.h"

namespace bpfnet::kernel {

struct KernelError {
    int errnum = 0;      // positive errno from the NLMSG_ERROR, 0 if the kernel did not answer one
    std::string extack;  // NLMSGERR_ATTR_MSG, e.g. "Nexthop has invalid gateway"
};
extern thread_local KernelError t_kernel_error;

template <typename F>
int nl_call(F&& request) {
    t_kernel_error = {};
    return std::forward<F>(request)();
}

std::string extack_message(const nlmsgerr* err);
int record_kernel_error(sockaddr_nl*, nlmsgerr* err, void*);
std::string describe(int nlerr);
bool is_exists(int nlerr);
Failure nl_failure(int nlerr, std::string_view what, ErrorKind kind = ErrorKind::Internal);
Failure out_of_memory(std::string_view what);
Status check_ifname(const std::string& name, std::string_view what);
bool is_missing_link(int nlerr);
Result<nl::LinkPtr> lookup_link(NlSocket& sock, int ifindex, const std::string& name,
                                std::string_view what);
Result<nl::LinkPtr> require_link(NlSocket& sock, const std::string& name, std::string_view what);
LinkInfo to_link_info(rtnl_link* link);
nl::NlAddrPtr make_ipv4_addr(Ipv4 ip, int prefix_len);
std::optional<Ipv4> to_ipv4(nl_addr* addr);
Result<nl::CachePtr> route_cache(NlSocket& sock, std::string_view what);
bool is_main_ipv4_default(rtnl_route* route);
MacAddr random_local_mac();
Status bring_up(NlSocket& sock, rtnl_link* orig, std::string_view what);
Status set_alias(NlSocket& sock, rtnl_link* orig, const std::string& alias, std::string_view what);
Status set_master(NlSocket& sock, rtnl_link* orig, int master_ifindex, std::string_view what);
void roll_back(NlSocket& sock, const std::string& name);
// Creates `link` (named `name`), then sets its ownership alias (ignored on creation), enslaves it
// to `master_ifindex` if not 0 and brings it up; deletes it again if any step fails.
Status add_link_with_alias(NlSocket& sock, rtnl_link* link, const std::string& name,
                           const std::string& alias, std::string_view what, int master_ifindex = 0);

template <typename T, typename F>
void for_each(nl_cache* cache, F&& fn) {
    for (nl_object* obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
        fn(reinterpret_cast<T*>(obj));
    }
}

template <typename F>
Status change_link(NlSocket& sock, rtnl_link* orig, std::string_view what, F&& fill) {
    nl::LinkPtr changes(rtnl_link_alloc());
    if (!changes) return out_of_memory(what);
    fill(changes.get());
    int err = nl_call([&] { return rtnl_link_change(sock.get(), orig, changes.get(), 0); });
    if (err < 0) {
        return nl_failure(err, what,
                          is_missing_link(err) ? ErrorKind::NotFound : ErrorKind::Internal);
    }
    return {};
}

}  // namespace bpfnet::kernel

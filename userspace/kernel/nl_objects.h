// Owning smart pointers for libnl objects, private to the kernel library. libnl objects are
// reference counted; each pointer here owns exactly one reference, so every early return releases
// what was allocated or looked up without a matching put on every path.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>

#include <memory>

namespace bpfnet::kernel::nl {

struct Deleter {
    void operator()(rtnl_link* p) const { rtnl_link_put(p); }
    void operator()(rtnl_addr* p) const { rtnl_addr_put(p); }
    void operator()(rtnl_route* p) const { rtnl_route_put(p); }
    void operator()(rtnl_neigh* p) const { rtnl_neigh_put(p); }
    // A nexthop is owned by us only until rtnl_route_add_nexthop() adopts it (then release()).
    void operator()(rtnl_nexthop* p) const { rtnl_route_nh_free(p); }
    void operator()(nl_addr* p) const { nl_addr_put(p); }
    // Caches from rtnl_*_alloc_cache() start with one reference; put frees the objects with it.
    void operator()(nl_cache* p) const { nl_cache_put(p); }
};

using LinkPtr = std::unique_ptr<rtnl_link, Deleter>;
using AddrPtr = std::unique_ptr<rtnl_addr, Deleter>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter>;
using NeighPtr = std::unique_ptr<rtnl_neigh, Deleter>;
using NexthopPtr = std::unique_ptr<rtnl_nexthop, Deleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, Deleter>;
using CachePtr = std::unique_ptr<nl_cache, Deleter>;

}  // namespace bpfnet::kernel::nl

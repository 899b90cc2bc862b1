// Permanent IPv4 neighbour entries for endpoints. The host knows every endpoint's address and MAC,
// so it never has to ARP for them: a broadcast ARP request flooded to a bridge with ~1,000 ports
// is cloned into every port at once, more than the receiving CPU's backlog holds
// (net.core.netdev_max_backlog, 1,000), and the copy for the endpoint asked about may be dropped.
#pragma once

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

// `ip neigh replace IP lladdr MAC dev IFINDEX nud permanent`.
Status replace_permanent_neighbour(NlSocket& sock, int ifindex, Ipv4 ip, const MacAddr& mac);
// Deletes the entry for IP on one device (none is success): one request, whatever the size of
// the neighbour table.
Status delete_neighbour(NlSocket& sock, int ifindex, Ipv4 ip);
// Deletes the permanent entries for IP with that MAC, on whatever device (an entry on a bridge
// outlives the endpoint's veth). None is success. Dumps the whole neighbour table: for when the
// device is not known.
Status delete_permanent_neighbours(NlSocket& sock, Ipv4 ip, const MacAddr& mac);

}  // namespace bpfnet::kernel

// An endpoint's host-side veth end as a routed port instead of a bridge port. A Linux bridge holds
// at most 1,023 ports; past that (or on request), an endpoint's host end stays out of the bridge
// and the host reaches the endpoint through a /32 route and a permanent neighbour entry on it. The
// end carries the bridge's MAC, so frames the endpoint sends to its gateway are the host's own,
// and the network's interface group, so the firewall can tell which network it belongs to.
#pragma once

#include <cstdint>
#include <string>

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

struct RoutedPortSpec {
    std::string ifname;  // the endpoint veth's host end
    std::string bridge;  // the network's bridge: owns the gateway address; its MAC is taken
    uint32_t group = 0;  // the network's interface group (IFLA_GROUP)
    Ipv4 endpoint_ip;
    MacAddr endpoint_mac;
    Ipv4 gateway;  // source of the host's own traffic to the endpoint, as through the bridge
};

// Releases the host end from the bridge if it is a port, gives it the bridge's MAC and the group,
// and installs the route and neighbour entry (both die with the link). Proxy ARP on the end and the
// bridge lets endpoints find each other and bridge-port endpoints without BPF (the kernel
// datapath); the BPF datapath answers those ARP requests itself. Idempotent.
Status make_routed_port(NlSocket& host, const RoutedPortSpec& spec);

// Whether the link is a routed port of the network with this group (not a bridge port).
bool is_routed_port(const LinkInfo& link, uint32_t group);

}  // namespace bpfnet::kernel

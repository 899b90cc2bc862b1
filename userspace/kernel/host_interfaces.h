// How bpfnet sees the host's own interfaces: which are uplinks (where the outside reaches the host
// and containers reach the outside), and which are other container networks' bridges (Docker's
// docker0, libvirt's virbr0, another runtime's, another bpfnet agent's), from which bpfnet's
// networks are isolated both ways.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

struct HostInterfaces {
    // Uplink name -> why it is one ("--uplink", "default route", "global address").
    std::map<std::string, std::string> uplinks;
    // Other bridges' IPv4 subnets (the prefixes of their addresses) -> the bridge's name.
    std::map<Cidr, std::string> foreign_subnets;
    // Why "auto" found nothing, when it did not.
    std::string auto_note;
    // Uplink name -> its first global IPv4 address (the kernel's primary, in dump order): what
    // egress through it is source-NATed to. Uplinks without one are absent.
    std::map<std::string, Ipv4> uplink_addresses;

    bool operator==(const HostInterfaces&) const = default;
    std::vector<std::string> uplink_names() const;
};

// What the kernel said, for classify_host_interfaces (a pure function, unit-tested).
struct HostInterfaceFacts {
    std::vector<LinkInfo> links;
    std::vector<InterfaceAddress> addresses;
    std::vector<int> routed_ifindexes;  // interfaces some main-table unicast route leads out of
    std::string default_route_ifname;   // empty: no IPv4 default route
};

// `configured`: --uplink's values: device names, and "auto" for every device that is up, has a
// global IPv4 address and a route out of it, has Ethernet headers (the uplink program parses
// them), and is neither loopback, bpfnet's own (alias "bpfnet:..."), nor a bridge or veth (those
// are container networks) unless it carries the default route (a host whose NIC is enslaved to
// br0). Foreign bridges: every bridge that is not this agent's (alias prefix `own_alias_prefix`)
// and not an uplink.
HostInterfaces classify_host_interfaces(const HostInterfaceFacts& facts,
                                        const std::vector<std::string>& configured,
                                        const std::string& own_alias_prefix);

// Reads the facts from the kernel (three dumps) and classifies them.
Result<HostInterfaces> survey_host_interfaces(NlSocket& sock,
                                              const std::vector<std::string>& configured,
                                              const std::string& own_alias_prefix);

}  // namespace bpfnet::kernel

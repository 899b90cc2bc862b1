// /proc/sys access for the few knobs bpfnet sets (ip_forward, route_localnet, br_netfilter) or
// reads (ip_local_port_range). /proc/sys/net is the caller's network namespace's.
#pragma once

#include <string>

#include "core/result.h"

namespace bpfnet::kernel {

// `key` in dotted form, e.g. "net.ipv4.ip_forward".
Result<std::string> read_sysctl(const std::string& key);
Status write_sysctl(const std::string& key, const std::string& value);

// Turns IPv6 off on one link (net.ipv6.conf.<ifname>.disable_ipv6 = 1): no address, no routes in
// the namespace's IPv6 FIB. Success where the kernel has no IPv6 at all.
Status disable_link_ipv6(const std::string& ifname);

// The same for a link in the network namespace mounted at `netns_path` (a sandbox's).
Status disable_link_ipv6_in(const std::string& netns_path, const std::string& ifname);

}  // namespace bpfnet::kernel

// Devices for networks without a bridge: macvlan and ipvlan children of a parent device, created
// straight inside a sandbox, and the parents bpfnet may have to make itself: 802.1Q VLAN
// sub-interfaces (`-o parent=eth0.10`) and dummy devices (macvlan networks with no parent, which
// Docker makes internal).
#pragma once

#include <cstdint>
#include <string>

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

struct ChildLinkSpec {
    std::string kind;        // "macvlan" or "ipvlan"
    std::string parent;      // a device of the socket's (host) namespace
    std::string name;        // final name inside the sandbox (eth0, eth1, ...)
    std::string netns_path;  // the child is created directly in this namespace
    std::string mode;        // macvlan: bridge|vepa|private|passthru; ipvlan: l2|l3|l3s
    MacAddr mac;             // macvlan only; ipvlan children share the parent's MAC
    unsigned mtu = 0;        // 0: the parent's
};
// Creates the child inside its sandbox, down, for the caller to configure there. A parent already
// serving a passthru macvlan, or a mode the kernel refuses, is an InvalidArgument with the
// kernel's reason.
Status create_child_link(NlSocket& host, const ChildLinkSpec& spec);

// `name` as 802.1Q VLAN `vlan_id` on `parent`, with an ownership alias, up.
Status create_vlan(NlSocket& sock, const std::string& name, const std::string& parent,
                   uint16_t vlan_id, const std::string& alias);
// A dummy device with an ownership alias, up.
Status create_dummy(NlSocket& sock, const std::string& name, const std::string& alias);

// Whether the kernel has the link type `kind` (e.g. "ipvlan" needs CONFIG_IPVLAN). Asks without
// creating anything: a request for a child of the loopback device is refused by every driver, but
// with "Unknown device type" only when the type itself is missing.
Result<bool> link_kind_supported(NlSocket& sock, const std::string& kind);

}  // namespace bpfnet::kernel

// VXLAN devices and their forwarding tables, for overlay networks on the kernel datapath (Docker's
// layout): one VXLAN device per network enslaved to the network's bridge, learning off, ARP proxy
// on; a static FDB entry per remote endpoint (its MAC -> its host's VTEP) and a permanent
// neighbour entry (its IP -> its MAC) from which the device answers ARP itself, so no broadcast
// ever crosses the underlay.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

struct VxlanSpec {
    std::string name;
    uint32_t vni = 0;
    Ipv4 local;            // this host's VTEP address
    uint16_t port = 4789;  // UDP destination port
    std::string master;    // the bridge it is enslaved to
    unsigned mtu = 0;      // 0: the kernel's default
    std::string alias;     // ownership marker
};
// Creates the device (learning off, ARP proxy on), enslaves it and brings it up.
Status create_vxlan(NlSocket& sock, const VxlanSpec& spec);
// A collect_md ("external") VXLAN device: no VNI or remote of its own; BPF programs give each
// packet its tunnel metadata. Up, with an ownership alias.
Status create_vxlan_external(NlSocket& sock, const std::string& name, uint16_t port,
                             const std::string& alias);

struct RemoteEntry {
    Ipv4 ip;
    MacAddr mac;
    Ipv4 vtep;
};
// Makes the device's static FDB and permanent neighbour entries exactly `wanted`: adds or replaces
// what is missing or different, removes the rest. Idempotent.
Status sync_vxlan_entries(NlSocket& sock, const std::string& device,
                          const std::vector<RemoteEntry>& wanted);

// The device holding `address` (the underlay device of a VTEP address), if one does.
Result<std::optional<LinkInfo>> link_of_address(NlSocket& sock, Ipv4 address);
// The MTU of the device holding `address`, or 0 if none does.
Result<unsigned> mtu_of_address(NlSocket& sock, Ipv4 address);

}  // namespace bpfnet::kernel

// bpfnet_uplinks: the devices egress may leave through in BPF, each with the address its flows are
// source-NATed to and the range of ports (and ICMP echo identifiers) they get. Written by the BPF
// datapath's uplink sync (sync_uplinks, at start, policy sync and host changes).
#pragma once

#include <cstdint>
#include <map>

#include "bpfnet/abi.h"
#include "core/ipv4.h"
#include "core/ports.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

struct UplinkEgress {
    Ipv4 snat_address;  // the uplink's first global IPv4 address
    PortRange ports;    // SNAT ports (and ICMP echo identifiers), bpfnetd --snat-ports
};

class UplinkMaps {
  public:
    UplinkMaps() = default;
    explicit UplinkMaps(int uplinks_fd);

    static bpfnet_uplink encode(const UplinkEgress& uplink);

    // Makes bpfnet_uplinks exactly `uplinks` (ifindex -> what egress through it gets): stale
    // entries first, so no packet meets a device that is no uplink any more.
    Status sync(const std::map<int, UplinkEgress>& uplinks);
    // ifindex -> entry, for status and inspection.
    std::map<int, bpfnet_uplink> entries() const;

  private:
    BpfMap<uint32_t, bpfnet_uplink> uplinks_;
};

}  // namespace bpfnet

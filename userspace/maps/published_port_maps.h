// The published-port maps shared by the uplink program and the socket NAT: bpfnet_pub_port (host
// address, port, protocol -> endpoint address, port, network) and bpfnet_local_ip (the host's
// addresses, which "any address" bindings apply to). Written by the BPF datapath's published-port
// sync (publish_ports, unpublish_ports, sync_policy, refresh_host).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "bpfnet/abi.h"
#include "core/ports.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

class PublishedPortMaps {
  public:
    PublishedPortMaps() = default;
    PublishedPortMaps(int published_fd, int local_ips_fd);

    // bpfnet_pub_port's key for a binding, and the entry for a port (the network is its datapath
    // ID, known without asking the kernel).
    static bpfnet_svc_key encode_key(const PortBinding& binding);
    static bpfnet_svc_target encode_target(const PublishedPort& port);

    // Puts `ports` into bpfnet_pub_port, or deletes them (an absent one is no error), leaving
    // every other entry alone.
    Status put(const std::vector<PublishedPort>& ports);
    Status erase(const std::vector<PublishedPort>& ports);
    // Makes bpfnet_pub_port exactly `ports` (stale entries first, so a wanted entry is never
    // missing).
    Status sync(const std::vector<PublishedPort>& ports);
    // Makes bpfnet_local_ip exactly `addresses` (network byte order).
    Status sync_local_ips(const std::set<uint32_t>& addresses);

  private:
    BpfMap<bpfnet_svc_key, bpfnet_svc_target> published_;
    BpfMap<uint32_t, uint8_t> local_ips_;
};

}  // namespace bpfnet

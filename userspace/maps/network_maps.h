// bpfnet_net (datapath ID -> the network as the programs see it) and bpfnet_subnets (LPM: every
// network's subnet, and the subnets of other container bridges on the host), written by the BPF
// datapath when a network is created, re-created or deleted and when the host's bridges change.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "bpfnet/abi.h"
#include "core/ipv4.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

// A network as bpfnet_net holds it.
struct NetworkEntry {
    uint32_t id = 0;     // datapath ID: the key everywhere (never 0)
    Cidr subnet;         // host bits are masked off when encoded
    Ipv4 gateway;        // 0.0.0.0: no gateway (isolated bridges, overlays)
    uint32_t flags = 0;  // BPFNET_NET_*
    uint32_t bridge_ifindex = 0;
    MacAddr gateway_mac;
};

class NetworkMaps {
  public:
    NetworkMaps() = default;
    NetworkMaps(int net_fd, int subnets_fd);

    static bpfnet_net_info encode(const NetworkEntry& network);
    static bpfnet_lpm_v4 subnet_key(const Cidr& subnet);

    // bpfnet_net, then the network's subnet in bpfnet_subnets.
    Status put(const NetworkEntry& network);
    // The network's bpfnet_net entry, and its subnet entry only if that is still its own (another
    // network's or another bridge's entry for the same prefix stays).
    void drop(uint32_t id, const Cidr& subnet);
    std::optional<bpfnet_net_info> get(uint32_t id) const { return net_.get(id); }

    // Makes bpfnet_subnets' BPFNET_SUBNET_OTHER_BRIDGE entries exactly `subnets`; never
    // overwrites a network's own entry for the same prefix.
    Status sync_other_bridges(const std::vector<Cidr>& subnets);
    // Deletes the bpfnet_net entries of networks not in `live`.
    void forget_networks_except(const std::set<uint32_t>& live);
    // Deletes the subnet entries of networks not in `live` (other bridges' stay).
    void forget_subnets_except(const std::set<uint32_t>& live);

    BpfMap<uint32_t, bpfnet_net_info>& net() { return net_; }
    BpfMap<bpfnet_lpm_v4, uint32_t>& subnets() { return subnets_; }

  private:
    BpfMap<uint32_t, bpfnet_net_info> net_;
    BpfMap<bpfnet_lpm_v4, uint32_t> subnets_;
};

}  // namespace bpfnet

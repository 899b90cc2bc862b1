// bpfnet_ep_by_if (host veth -> the endpoint as a traffic source), bpfnet_ep_by_ip ((network,
// address) -> where to deliver) and bpfnet_ep_stats (per-CPU counters keyed by host veth): written
// by the BPF datapath when an endpoint is connected or disconnected, and cleaned up by its garbage
// collection.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "bpfnet/abi.h"
#include "core/ipv4.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

// An endpoint as the two endpoint maps hold it.
struct EndpointEntry {
    uint32_t ifindex = 0;  // its host-side veth
    uint32_t network = 0;  // its network's datapath ID
    Ipv4 ip;
    MacAddr mac;
    bool xdp_target = false;  // reachable from the uplink's XDP program (BPFNET_EP_F_XDP_TARGET)
};

class EndpointMaps {
  public:
    EndpointMaps() = default;
    EndpointMaps(int by_if_fd, int by_ip_fd, int stats_fd);

    static bpfnet_endpoint encode_source(const EndpointEntry& endpoint);
    static bpfnet_ep_key encode_key(uint32_t network, Ipv4 ip);
    static bpfnet_ep_dest encode_destination(const EndpointEntry& endpoint);

    // bpfnet_ep_by_if, then bpfnet_ep_by_ip; the first is undone if the second fails. A full map
    // is said to be the host's limit of endpoints.
    Status put(const EndpointEntry& endpoint);
    // One of the two (tests that give an endpoint's source and destination different veths).
    Status put_source(const EndpointEntry& endpoint);
    Status put_destination(const EndpointEntry& endpoint);

    std::optional<bpfnet_endpoint> source(uint32_t ifindex) const { return by_if_.get(ifindex); }

    // Removes the endpoint with exactly this address and MAC: through its host veth's entry when
    // `ifindex` names one of its own, else (its veth is already gone) by a scan of both maps.
    // Returns the networks of the source entries removed.
    std::vector<uint32_t> remove(std::optional<uint32_t> ifindex, Ipv4 ip, const MacAddr& mac);

    // Garbage collection: source entries (and counters) of veths `gone` says no longer exist,
    // then destinations not backed by a source entry of the same network and address.
    void forget_interfaces_if(const std::function<bool(uint32_t ifindex)>& gone);
    void forget_unbacked_destinations();
    // Every entry of a network not in `live`: sources (with counters), then destinations.
    void forget_networks_except(const std::set<uint32_t>& live);

  private:
    void drop_source(uint32_t ifindex);

    BpfMap<uint32_t, bpfnet_endpoint> by_if_;
    BpfMap<bpfnet_ep_key, bpfnet_ep_dest> by_ip_;
    // Per-CPU: only erased here.
    BpfMap<uint32_t, bpfnet_ep_stats> stats_;
};

}  // namespace bpfnet

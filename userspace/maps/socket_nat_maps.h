// The socket NAT's own maps: bpfnet_sk_cfg (the host's network namespace, whose sockets are
// rewritten) and bpfnet_sk_netns ((sandbox netns, network) pairs allowed to hairpin without NAT).
// Written by SocketNat (datapath/socket_nat.cpp) when it loads and as the BPF datapath connects
// and disconnects sandboxes.
#pragma once

#include <cstdint>
#include <set>

#include "bpfnet/abi.h"
#include "core/result.h"
#include "maps/bpf_map.h"

namespace bpfnet {

class SocketNatMaps {
  public:
    SocketNatMaps() = default;
    SocketNatMaps(int netns_fd, int cfg_fd);

    static bpfnet_sk_netns_key encode_key(uint64_t netns_cookie, uint32_t network);

    Status set_host_netns(uint64_t netns_cookie);
    Status allow_sandbox(uint64_t netns_cookie, uint32_t network);
    void forget_sandbox(uint64_t netns_cookie, uint32_t network);
    void forget_networks_except(const std::set<uint32_t>& live);

  private:
    BpfMap<bpfnet_sk_netns_key, uint8_t> netns_;
    BpfMap<uint32_t, bpfnet_sock_cfg> cfg_;
};

}  // namespace bpfnet

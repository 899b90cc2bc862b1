// bpfnet_ct: the uplink and endpoint programs' conntrack (two entries per flow, IN and REPLY).
// The programs create and refresh entries; user space only ends flows, when the published port
// they came through is gone (the BPF datapath's published-port sync).
#pragma once

#include <functional>
#include <optional>

#include "bpfnet/abi.h"
#include "maps/bpf_map.h"

namespace bpfnet {

class ConntrackMap {
  public:
    ConntrackMap() = default;
    explicit ConntrackMap(int ct_fd);

    // The REPLY entry's key of the flow whose IN entry is (`in`, `entry`).
    static bpfnet_ct_key reply_key(const bpfnet_ct_key& in, const bpfnet_ct_entry& entry);

    std::optional<bpfnet_ct_entry> get(const bpfnet_ct_key& key) const { return ct_.get(key); }
    // Deletes both entries of every flow whose IN entry `stale` says must end. A scan of the
    // whole table: call it only when something went away.
    void forget_flows_if(
        const std::function<bool(const bpfnet_ct_key& in, const bpfnet_ct_entry& entry)>& stale);

  private:
    BpfMap<bpfnet_ct_key, bpfnet_ct_entry> ct_;
};

}  // namespace bpfnet

// bpfnet's datapath as the kernel holds it, read from bpffs without the agent: the maps pinned
// under <bpffs root>/bpfnet/ (listed with their fill level, dumped decoded through decode.h) and
// the programs attached through the links pinned beside them (or, where tcx is missing, found as
// the cls_bpf filters bpfnet installs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "inspect/decode.h"

namespace bpfnet::inspect {

struct MapSummary {
    std::string name;
    std::string type;  // "hash", "lru_hash", "percpu_array", ...
    uint32_t id = 0;
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t max_entries = 0;
    uint64_t entries = 0;  // for arrays: max_entries; ring buffers: 0
    std::string what;      // what the map holds, from its layout
};

struct ProgramAttachment {
    std::string interface;  // "" for cgroup attachments
    uint32_t ifindex = 0;
    std::string hook;       // "tc ingress", "xdp", "cgroup connect4", ...
    std::string mechanism;  // "tcx", "cls_bpf", "xdp native", "xdp generic", "cgroup link"
    std::string role;       // "endpoint", "uplink", "overlay", "host sockets"
    std::string pin;        // the pinned link ("" for cls_bpf)
    uint32_t link_id = 0;
    uint32_t prog_id = 0;
    std::string prog_name;
    std::string tag;  // hex, as bpftool prints it
    uint64_t run_count = 0;
    uint64_t run_time_ns = 0;
    uint32_t instructions = 0;           // translated instructions
    uint32_t verified_instructions = 0;  // what the verifier processed to accept the program
};

class PinnedDatapath {
  public:
    // NotFound, with a message saying what to do, when bpfnet's datapath is not loaded here.
    static Result<PinnedDatapath> open(const std::string& bpffs_root);

    const std::string& dir() const { return dir_; }
    Result<Fd> open_map(const std::string& name) const;
    Result<std::vector<MapSummary>> maps() const;
    // Every entry of map `name`, decoded: [{"key": {...}, "value": {...}}, ...].
    Result<json> dump(const std::string& name, const IfnameResolver& ifname) const;
    Result<std::vector<ProgramAttachment>> programs() const;
    // Deletes every entry of a hash map; returns how many went.
    Result<uint64_t> clear(const std::string& name) const;

  private:
    explicit PinnedDatapath(std::string dir) : dir_(std::move(dir)) {}
    std::string dir_;
};

// The interface name of an ifindex in this network namespace ("" if none).
std::string ifname_of(uint32_t ifindex);
uint64_t monotonic_now_ns();

}  // namespace bpfnet::inspect

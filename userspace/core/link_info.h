// The head of the kernel's struct bpf_link_info for the link types bpfnet pins (tcx, XDP, cgroup).
// Debian 12's UAPI headers predate tcx (6.6), so the layout is spelled out here: type, id,
// prog_id, then the per-type union, 8-byte aligned.
#pragma once

#include <cstdint>

namespace bpfnet {

inline constexpr uint32_t kBpfLinkTypeCgroup = 3;
inline constexpr uint32_t kBpfLinkTypeXdp = 6;
inline constexpr uint32_t kBpfLinkTypeTcx = 11;

struct BpfLinkInfo {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t pad;
    union {
        struct {
            uint64_t cgroup_id;
            uint32_t attach_type;
        } cgroup;
        struct {
            uint32_t ifindex;
        } xdp;
        struct {
            uint32_t ifindex;
            uint32_t attach_type;
        } tcx;
        uint8_t raw[64];
    };
};

}  // namespace bpfnet

// Where the BPF datapath keeps what outlives the agent, for the agent and for the CLI's inspection
// commands (which read it directly, with the agent stopped too): everything under
// <bpffs root>/bpfnet/, maps pinned by name at its top, links in one directory per hook kind; and
// the clsact filter handles: endpoint veths always, the host's devices where tcx is missing (no
// links to pin there).
#pragma once

#include <cstdint>

namespace bpfnet::pin_layout {

inline constexpr const char* kDir = "bpfnet";           // under the bpffs root
inline constexpr const char* kEndpointLinks = "links";  // tcx links of earlier versions, unpinned
inline constexpr const char* kUplinkLinks = "uplink-links";
inline constexpr const char* kUplinkXdpLinks = "uplink-xdp-links";
inline constexpr const char* kOverlayLinks = "overlay-links";
inline constexpr const char* kUnderlayLinks = "underlay-links";
inline constexpr const char* kCgroupLinks = "cgroup-links";

inline constexpr uint32_t kEndpointFilterHandle = 1;
inline constexpr uint32_t kUplinkFilterHandle = 0xb9f0;
inline constexpr uint32_t kOverlayFilterHandle = 0xb9f1;
inline constexpr uint32_t kUnderlayFilterHandle = 0xb9f2;
inline constexpr uint32_t kFilterPriority = 1;

}  // namespace bpfnet::pin_layout

// The one ethtool setting the datapath changes: GRO on a veth, which gives the veth a NAPI
// context, which the veth driver needs to accept frames redirected to it from XDP.
#pragma once

#include <string>

#include "core/result.h"

namespace bpfnet::kernel {

// Turns generic receive offload on or off for `ifname` in the calling thread's network namespace.
Status set_gro(const std::string& ifname, bool on);

}  // namespace bpfnet::kernel

// Attaching an XDP program in native (driver) mode as a bpf_link pinned at
// <links_dir>/<ifname>, so it outlives the agent; re-attaching swaps the program into the running
// link (bpf_link_update). Generic (skb) mode is never used: it costs more than the TC program it
// would stand in for.
#pragma once

#include <string>

#include "core/result.h"

namespace bpfnet {

// ErrorKind::Unsupported when the device's driver has no native XDP.
Status attach_xdp_native(const std::string& links_dir, int prog_fd, const std::string& ifname,
                         int ifindex);
// Removes the pinned link, which detaches the program. Detaching what is not attached is success.
Status detach_xdp(const std::string& links_dir, const std::string& ifname);

}  // namespace bpfnet

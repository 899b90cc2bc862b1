// /proc/sys (and bridge-port sysfs) access for the few knobs bpfnet sets (ip_forward, hairpin
// mode) or reads (ip_local_port_range).
#pragma once

#include <string>

#include "core/result.h"

namespace bpfnet::kernel {

// `key` in dotted form, e.g. "net.ipv4.ip_forward".
Result<std::string> read_sysctl(const std::string& key);
Status write_sysctl(const std::string& key, const std::string& value);

// Turns on hairpin mode of a bridge port (/sys/class/net/<if>/brport/hairpin_mode): a frame may
// then leave through the port it came in on. An endpoint reaching its own published port through a
// host address needs that: br_netfilter DNATs the frame while it is being bridged, and the new
// destination sits behind the very port it arrived on.
Status set_bridge_port_hairpin(const std::string& ifname);

}  // namespace bpfnet::kernel

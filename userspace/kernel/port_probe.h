// Whether a host port is already used by a process, asked the way the kernel answers it: by trying
// to bind it. Published ports must never silently steal a port a local service listens on.
#pragma once

#include <cstdint>

#include "core/ipv4.h"
#include "core/ports.h"

namespace bpfnet::kernel {

// True when binding (proto, ip, port) in the calling thread's network namespace fails with
// EADDRINUSE. TIME_WAIT leftovers do not count (SO_REUSEADDR); a protocol the kernel lacks (sctp
// without its module) cannot be in use.
bool host_port_in_use(IpProto proto, Ipv4 ip, uint16_t port);

}  // namespace bpfnet::kernel

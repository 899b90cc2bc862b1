// Where the agent's native API socket lives, computed the same way by the agent (which listens
// there) and by its clients (which connect there).
#pragma once

#include <sys/un.h>

#include <cstddef>
#include <string>

namespace bpfnet {

// The run directory when neither --run-dir nor BPFNET_RUN_DIR names one.
inline constexpr const char* kDefaultRunDir = "/run/bpfnet";

// The longest path a unix socket address holds (sun_path without its terminating NUL).
inline constexpr std::size_t kMaxUnixSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// Path of the native API socket under a run directory.
std::string native_socket_path(const std::string& run_dir);

}  // namespace bpfnet

#include "client/socket_path.h"

#include <filesystem>

namespace bpfnet {

std::string native_socket_path(const std::string& run_dir) {
    return (std::filesystem::path(run_dir) / "bpfnetd.sock").string();
}

}  // namespace bpfnet

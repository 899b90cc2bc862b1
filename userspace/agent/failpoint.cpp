#include "agent/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

namespace bpfnet {

void failpoint(std::string_view name) {
    static const std::string points = [] {
        const char* env = std::getenv("BPFNET_FAILPOINTS");
        return env ? "," + std::string(env) + "," : std::string();
    }();
    if (points.empty()) return;
    if (points.find("," + std::string(name) + ",") == std::string::npos) return;
    spdlog::critical("failpoint {} reached: killing the agent", name);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
}

}  // namespace bpfnet

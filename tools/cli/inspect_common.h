// What the inspection commands (prog, map, endpoint, ct, nat, stats, monitor) share: the pinned
// datapath they read directly, and names the agent knows (network and sandbox names), asked for
// only when the agent answers, so every command also works while bpfnetd is stopped.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "inspect/pinned.h"

namespace bpfnet::cli {

using inspect::json;

// Opens the datapath under ctx.bpffs_root, or reports why not (and returns nullopt).
std::optional<inspect::PinnedDatapath> open_datapath(Context& ctx);

// An endpoint as the agent records it (every datapath, not only BPF).
struct AgentEndpoint {
    std::string sandbox, network, datapath, host_interface, ip, mac;
};

struct AgentNames {
    bool available = false;
    std::vector<AgentEndpoint> endpoints;
    std::map<std::string, std::string> network_by_bridge;  // bridge device -> network name
    // (bridge device, endpoint IP) -> sandbox name
    std::map<std::pair<std::string, std::string>, std::string> sandbox_by_endpoint;

    std::string network(const std::string& bridge) const;
    std::string sandbox(const std::string& bridge, const std::string& ip) const;
};
AgentNames agent_names(const Context& ctx);

// Reports an error result and returns true when `r` failed.
template <typename T>
bool failed(Context& ctx, const Result<T>& r) {
    if (r) return false;
    report_error(ctx, r.error().message);
    return true;
}

}  // namespace bpfnet::cli

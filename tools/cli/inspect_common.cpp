#include "inspect_common.h"

#include "client.h"

namespace bpfnet::cli {

std::optional<inspect::PinnedDatapath> open_datapath(Context& ctx) {
    auto datapath = inspect::PinnedDatapath::open(ctx.bpffs_root);
    if (!datapath) {
        report_error(ctx, datapath.error().message);
        return std::nullopt;
    }
    return std::move(*datapath);
}

std::string AgentNames::network(const std::string& bridge) const {
    auto it = network_by_bridge.find(bridge);
    return it == network_by_bridge.end() ? "" : it->second;
}

std::string AgentNames::sandbox(const std::string& bridge, const std::string& ip) const {
    auto it = sandbox_by_endpoint.find({bridge, ip});
    return it == sandbox_by_endpoint.end() ? "" : it->second;
}

AgentNames agent_names(const Context& ctx) {
    AgentNames names;
    auto reply = ApiClient(ctx.run_dir).call("GET", "/networks");
    if (!reply) return names;
    const json networks = std::move(*reply);
    if (!networks.is_array()) return names;
    names.available = true;
    for (const json& n : networks) {
        // Named copies: iterating a temporary's items() would outlive the temporary.
        const json bpfnet = n.value("BpfNet", json::object());
        const std::string bridge = bpfnet.value("Bridge", "");
        if (bridge.empty()) continue;
        names.network_by_bridge[bridge] = n.value("Name", "");
        const json containers = n.value("Containers", json::object());
        for (const auto& [key, c] : containers.items()) {
            std::string ip = c.value("IPv4Address", "");
            ip = ip.substr(0, ip.find('/'));
            if (!ip.empty()) names.sandbox_by_endpoint[{bridge, ip}] = c.value("Name", "");
        }
    }
    return names;
}

}  // namespace bpfnet::cli

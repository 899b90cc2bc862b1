#include "inspect_common.h"

#include "client/api_client.h"

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
    std::map<std::string, std::string> datapath_by_network;
    for (const json& n : networks)
        datapath_by_network[n.value("Name", "")] =
            n.value("BpfNet", json::object()).value("Datapath", "");
    auto sandboxes = ApiClient(ctx.run_dir).call("GET", "/sandboxes");
    if (!sandboxes || !sandboxes->is_array()) return names;
    const json all = std::move(*sandboxes);
    for (const json& s : all) {
        const json nets = s.value("Networks", json::object());
        for (const auto& [network, e] : nets.items()) {
            const std::string host_if = e.value("HostInterface", "");
            if (host_if.empty()) continue;  // host/none, macvlan: no host end
            names.endpoints.push_back({s.value("Name", ""), network, datapath_by_network[network],
                                       host_if, e.value("IPAddress", ""),
                                       e.value("MacAddress", "")});
        }
    }
    return names;
}

}  // namespace bpfnet::cli

#include "agent/drivers/bridge_driver.h"

#include <fmt/format.h>

#include "datapath/kernel_datapath.h"

namespace bpfnet {

Status BridgeDriver::check_request(const CreateNetworkRequest& request,
                                   const BridgeOptions& options) const {
    // Docker's rule: a bridge without an address only makes sense for a network that reaches
    // nothing beyond itself.
    if (options.gateway_mode == GatewayMode::Isolated && !request.internal) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{}=isolated is only allowed on an internal network (--internal)",
                                opt::kGatewayModeIpv4));
    }
    return check_bpf_requested(options, datapaths_);
}

Result<NetworkPlan> BridgeDriver::plan(const CreateNetworkRequest& request,
                                       const Snapshot& /*snap*/, Network& network) {
    BPFNET_ASSIGN_OR_RETURN(BridgeOptions options, parse_bridge_options(request.options));
    network.bridge_name = options.bridge_name.value_or(default_bridge_name(network.id));
    return NetworkPlan{};
}

DatapathChoice BridgeDriver::datapath_choice(const Network& network) const {
    auto options = parse_bridge_options(network.options);
    DatapathMode mode = options ? options->datapath : DatapathMode::Auto;
    if (mode == DatapathMode::Kernel) return {"kernel", "requested with bpfnet.datapath=kernel"};
    if (!datapaths_.has_bpf())
        return {"kernel", "BPF unavailable: " + datapaths_.bpf_unavailable()};
    if (mode == DatapathMode::Bpf)
        return {"bpf", "requested with bpfnet.datapath=bpf", DatapathKind::Bpf};
    return {"bpf", "probe passed (bpfnet.datapath=auto)", DatapathKind::Bpf};
}

Datapath& BridgeDriver::datapath(const Network& network) {
    return datapaths_.bridge(datapath_choice(network).kind);
}

std::optional<DatapathKind> BridgeDriver::policed_as(const Network& network) const {
    return datapath_choice(network).kind;
}

std::string BridgeDriver::egress_summary(const Network& network) const {
    auto options = parse_bridge_options(network.options);
    if (!options) return options.error().message;
    if (network.internal) return "none: internal";
    if (options->gateway_mode == GatewayMode::Isolated) return "none: isolated";
    const bool masquerade =
        options->enable_ip_masquerade && options->gateway_mode != GatewayMode::Routed;
    if (datapath_choice(network).kind != DatapathKind::Bpf)
        return masquerade ? "kernel: bridge, routing, netfilter, nftables masquerade"
                          : "kernel: bridge, routing, netfilter (not translated)";
    return fmt::format(
        "BPF: {} {}; the rest (fragments, other protocols, other routes): the "
        "host's stack{}",
        masquerade ? "source-NATed and sent" : "routed untranslated", datapaths_.bpf_egress_path(),
        masquerade ? " and nftables masquerade" : "");
}

std::string BridgeDriver::firewall_summary(const Network& network) const {
    auto options = parse_bridge_options(network.options);
    if (!options) return options.error().message;
    const GatewayMode mode = options->gateway_mode;
    std::vector<std::string> parts{fmt::format("gateway_mode_ipv4 {}", to_string(mode))};
    if (network.internal) {
        parts.emplace_back("internal: nothing in or out");
    } else {
        const bool masquerade = options->enable_ip_masquerade && mode != GatewayMode::Routed;
        parts.emplace_back(masquerade ? "outbound masqueraded" : "outbound not translated");
        switch (mode) {
            case GatewayMode::NatUnprotected:
                parts.emplace_back("every container port routable from outside");
                break;
            case GatewayMode::Routed:
                parts.emplace_back("published container ports and ICMP routable, nothing else");
                break;
            default:
                parts.emplace_back(
                    options->trusted_host_interfaces.empty()
                        ? std::string("direct routing to containers dropped")
                        : fmt::format("direct routing to containers dropped but from {}",
                                      fmt::join(options->trusted_host_interfaces, ", ")));
        }
        parts.emplace_back("isolated from other networks and bridges");
    }
    if (mode == GatewayMode::Isolated) parts.emplace_back("bridge without an address");
    return fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace bpfnet

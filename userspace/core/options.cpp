#include "core/options.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

namespace bpfnet {

namespace {

constexpr int kMinMtu = 68;  // RFC 791: every IPv4 host must accept 68-byte datagrams
constexpr int kMaxMtu = 65535;
constexpr size_t kMaxIfnameLen = 15;  // IFNAMSIZ minus the terminating NUL

Failure invalid_option(std::string_view key, std::string_view value, std::string_view expected) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("invalid value \"{}\" for option {}: {}", value, key, expected));
}

Result<int> parse_mtu(std::string_view text) {
    int mtu = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), mtu);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || mtu < kMinMtu ||
        mtu > kMaxMtu) {
        return invalid_option(opt::kMtu, text,
                              fmt::format("expected an integer from {} to {}", kMinMtu, kMaxMtu));
    }
    return mtu;
}

// The com.docker.network.* keys bpfnet knows for a network: every other one is refused by name.
constexpr std::array<std::string_view, 12> kKnownDockerNetworkOptions{
    opt::kBridgeName,
    opt::kEnableIcc,
    opt::kEnableIpMasquerade,
    opt::kHostBindingIpv4,
    opt::kGatewayModeIpv4,
    opt::kTrustedHostInterfaces,
    opt::kContainerIfacePrefix,
    opt::kMtu,
    opt::kDefaultBridge,
    opt::kOverlayVxlanIds,
    // Docker's own request options, should a client repeat them among the driver options.
    "com.docker.network.enable_ipv6",
    "com.docker.network.internal",
};

constexpr std::string_view kDockerOptionPrefix = "com.docker.network.";

bool is_docker_option(std::string_view key) {
    return key.substr(0, kDockerOptionPrefix.size()) == kDockerOptionPrefix;
}

Failure unsupported_option(std::string_view key) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("option {} is not supported by the bpfnet driver", key));
}

Result<GatewayMode> parse_gateway_mode(std::string_view key, std::string_view text) {
    if (text == "nat") return GatewayMode::Nat;
    if (text == "nat-unprotected") return GatewayMode::NatUnprotected;
    if (text == "routed") return GatewayMode::Routed;
    if (text == "isolated") return GatewayMode::Isolated;
    return invalid_option(key, text, "expected nat, nat-unprotected, routed or isolated");
}

// Docker's form: interface names separated by ':' ("eth1:vxlan.1").
Result<std::vector<std::string>> parse_interface_list(std::string_view key, std::string_view text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t end = std::min(text.find(':', start), text.size());
        const std::string_view name = text.substr(start, end - start);
        if (!name.empty()) {
            // The names go into nftables rules, which cannot match '"', '*' or '\' exactly.
            if (!is_valid_ifname(name) || name.find_first_of("\"*\\") != std::string_view::npos) {
                return invalid_option(key, text,
                                      fmt::format("\"{}\" is not an interface name", name));
            }
            out.emplace_back(name);
        }
        start = end + 1;
    }
    return out;
}

// A prefix leaves room for the index: <prefix><n> must still be a valid interface name.
Result<std::string> parse_iface_prefix(std::string_view key, std::string_view text) {
    if (text.empty() || text.size() > kMaxIfnameLen - 4 || !is_valid_ifname(text)) {
        return invalid_option(key, text,
                              fmt::format("expected 1 to {} characters valid in an interface name",
                                          kMaxIfnameLen - 4));
    }
    return std::string(text);
}

}  // namespace

const char* to_string(GatewayMode mode) {
    switch (mode) {
        case GatewayMode::Nat:
            return "nat";
        case GatewayMode::NatUnprotected:
            return "nat-unprotected";
        case GatewayMode::Routed:
            return "routed";
        case GatewayMode::Isolated:
            return "isolated";
    }
    return "nat";
}

const char* to_string(DatapathMode mode) {
    switch (mode) {
        case DatapathMode::Auto:
            return "auto";
        case DatapathMode::Bpf:
            return "bpf";
        case DatapathMode::Kernel:
            return "kernel";
    }
    return "unknown";
}

Result<DatapathMode> parse_datapath_mode(std::string_view text) {
    if (text == "auto") return DatapathMode::Auto;
    if (text == "bpf") return DatapathMode::Bpf;
    if (text == "kernel") return DatapathMode::Kernel;
    return fail(ErrorKind::InvalidArgument,
                fmt::format("invalid datapath mode \"{}\": expected auto, bpf or kernel", text));
}

const char* to_string(EndpointMode mode) {
    switch (mode) {
        case EndpointMode::Auto:
            return "auto";
        case EndpointMode::Bridge:
            return "bridge";
        case EndpointMode::Routed:
            return "routed";
    }
    return "auto";
}

Result<bool> parse_bool(std::string_view key, std::string_view text) {
    // Exactly Go's strconv.ParseBool set, so options that work with docker work here and vice
    // versa.
    static constexpr std::array<std::string_view, 6> kTrue{"1", "t", "T", "TRUE", "true", "True"};
    static constexpr std::array<std::string_view, 6> kFalse{"0",     "f",     "F",
                                                            "FALSE", "false", "False"};
    for (auto word : kTrue)
        if (text == word) return true;
    for (auto word : kFalse)
        if (text == word) return false;
    return invalid_option(key, text, "expected true or false");
}

Result<BridgeOptions> parse_bridge_options(const std::map<std::string, std::string>& options) {
    BridgeOptions out;
    for (const auto& [key, value] : options) {
        if (key == opt::kBridgeName) {
            // Quotes, '*' and '\' are legal for the kernel but cannot be matched exactly by an
            // nftables rule, so the firewall could not protect such a bridge.
            if (!is_valid_ifname(value) || value.find_first_of("\"*\\") != std::string::npos) {
                return invalid_option(key, value,
                                      "expected an interface name of 1 to 15 characters without "
                                      "'/', ':', '\"', '*', '\\' or whitespace");
            }
            out.bridge_name = value;
        } else if (key == opt::kEnableIcc) {
            BPFNET_ASSIGN_OR_RETURN(out.enable_icc, parse_bool(key, value));
        } else if (key == opt::kEnableIpMasquerade) {
            BPFNET_ASSIGN_OR_RETURN(out.enable_ip_masquerade, parse_bool(key, value));
        } else if (key == opt::kHostBindingIpv4) {
            auto ip = Ipv4::parse(value);
            if (!ip) return invalid_option(key, value, "expected an IPv4 address");
            out.host_binding_ipv4 = *ip;
        } else if (key == opt::kGatewayModeIpv4) {
            BPFNET_ASSIGN_OR_RETURN(out.gateway_mode, parse_gateway_mode(key, value));
        } else if (key == opt::kTrustedHostInterfaces) {
            BPFNET_ASSIGN_OR_RETURN(out.trusted_host_interfaces, parse_interface_list(key, value));
        } else if (key == opt::kContainerIfacePrefix) {
            BPFNET_ASSIGN_OR_RETURN(out.container_iface_prefix, parse_iface_prefix(key, value));
        } else if (key == opt::kMtu) {
            BPFNET_ASSIGN_OR_RETURN(out.mtu, parse_mtu(value));
        } else if (key == opt::kDatapath) {
            auto mode = parse_datapath_mode(value);
            if (!mode) return invalid_option(key, value, "expected auto, bpf or kernel");
            out.datapath = *mode;
        } else if (key == opt::kEndpointMode) {
            if (value == "auto")
                out.endpoint_mode = EndpointMode::Auto;
            else if (value == "bridge")
                out.endpoint_mode = EndpointMode::Bridge;
            else if (value == "routed")
                out.endpoint_mode = EndpointMode::Routed;
            else
                return invalid_option(key, value, "expected auto, bridge or routed");
        } else if (is_docker_option(key) &&
                   std::find(kKnownDockerNetworkOptions.begin(), kKnownDockerNetworkOptions.end(),
                             key) == kKnownDockerNetworkOptions.end()) {
            return unsupported_option(key);
        }
        // Other keys belong to other drivers (macvlan's parent, ...) or to the user.
    }
    return out;
}

Result<std::optional<std::string>> parse_endpoint_ifname(
    const std::map<std::string, std::string>& options) {
    std::optional<std::string> out;
    for (const auto& [key, value] : options) {
        if (key == opt::kEndpointIfname) {
            if (!is_valid_ifname(value)) {
                return invalid_option(key, value,
                                      "expected an interface name of 1 to 15 characters without "
                                      "'/', ':' or whitespace");
            }
            out = value;
        }
        // Docker's own endpoint options (port maps, exposed ports, MAC address, ...) are Docker's
        // business and arrive through the plugin protocol too: they pass.
    }
    return out;
}

Result<std::pair<std::string, std::string>> parse_key_value(std::string_view text) {
    auto eq = text.find('=');
    if (eq == std::string_view::npos) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid key=value pair \"{}\": missing '='", text));
    }
    if (eq == 0) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid key=value pair \"{}\": empty key", text));
    }
    return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

bool is_valid_ifname(std::string_view name) {
    // Mirrors the kernel's dev_valid_name(), so a name accepted here cannot fail at creation time.
    if (name.empty() || name.size() > kMaxIfnameLen || name == "." || name == "..") return false;
    for (char c : name) {
        if (c == '/' || c == ':' || c == '\0' || c == ' ' || (c >= '\t' && c <= '\r')) return false;
    }
    return true;
}

}  // namespace bpfnet

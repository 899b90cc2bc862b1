// Typed view of a network's `-o key=value` options. Unknown keys are kept verbatim (docker passes
// through driver options it does not know); known keys are validated so a typo in a value is an
// error.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "core/result.h"

namespace bpfnet {

namespace opt {
inline constexpr const char* kBridgeName = "com.docker.network.bridge.name";
inline constexpr const char* kEnableIcc = "com.docker.network.bridge.enable_icc";
inline constexpr const char* kEnableIpMasquerade = "com.docker.network.bridge.enable_ip_masquerade";
inline constexpr const char* kHostBindingIpv4 = "com.docker.network.bridge.host_binding_ipv4";
inline constexpr const char* kGatewayModeIpv4 = "com.docker.network.bridge.gateway_mode_ipv4";
inline constexpr const char* kTrustedHostInterfaces =
    "com.docker.network.bridge.trusted_host_interfaces";
inline constexpr const char* kContainerIfacePrefix = "com.docker.network.container_iface_prefix";
// An endpoint's option (connect --driver-opt): the interface's name inside the sandbox.
inline constexpr const char* kEndpointIfname = "com.docker.network.endpoint.ifname";
// Set by the agent itself on its predefined `bridge` network; never refused.
inline constexpr const char* kDefaultBridge = "com.docker.network.bridge.default_bridge";
inline constexpr const char* kOverlayVxlanIds = "com.docker.network.driver.overlay.vxlanid_list";
inline constexpr const char* kMtu = "com.docker.network.driver.mtu";
inline constexpr const char* kDatapath = "bpfnet.datapath";
// Through Docker (`docker network create -d bpfnet -o bpfnet.driver=overlay`): the kind of network.
inline constexpr const char* kDriver = "bpfnet.driver";
// How endpoints' host ends attach: bridge ports while the bridge has room, or routed (see
// kernel/routed_port.h).
inline constexpr const char* kEndpointMode = "bpfnet.endpoint_mode";
}  // namespace opt

enum class DatapathMode { Auto, Bpf, Kernel };
const char* to_string(DatapathMode mode);
Result<DatapathMode> parse_datapath_mode(std::string_view text);

// auto: bridge ports while the bridge has room (a Linux bridge holds 1,023), routed past that;
// bridge: bridge ports only (the 1,024th endpoint is refused); routed: every endpoint routed.
enum class EndpointMode { Auto, Bridge, Routed };
const char* to_string(EndpointMode mode);

// Docker 28's com.docker.network.bridge.gateway_mode_ipv4: how the network meets the outside.
//   nat              masquerade outbound; only published ports are reachable from outside (direct
//                    routing to a container's address is dropped, except from trusted interfaces)
//   nat-unprotected  masquerade outbound; every container port is reachable by direct routing
//   routed           no NAT; containers are reached at their own addresses, on published container
//                    ports (and ICMP) only; the host port of a binding is not used
//   isolated         with --internal only: the bridge has no address, not even the host is reached
enum class GatewayMode { Nat, NatUnprotected, Routed, Isolated };
const char* to_string(GatewayMode mode);

struct BridgeOptions {
    std::optional<std::string> bridge_name;  // user-chosen Linux bridge name
    bool enable_icc = true;
    bool enable_ip_masquerade = true;
    std::optional<Ipv4> host_binding_ipv4;
    GatewayMode gateway_mode = GatewayMode::Nat;
    // Interfaces from which direct routing to container addresses is allowed in nat mode.
    std::vector<std::string> trusted_host_interfaces;
    // Sandbox interfaces on the network are <prefix>0, <prefix>1, ... (Docker's eth0, eth1).
    std::string container_iface_prefix = "eth";
    int mtu = 1500;
    DatapathMode datapath = DatapathMode::Auto;
    EndpointMode endpoint_mode = EndpointMode::Auto;
};

// Docker accepts the usual boolean spellings (strconv.ParseBool).
Result<bool> parse_bool(std::string_view key, std::string_view text);
// Refuses unknown com.docker.network.* keys by name (they are Docker's: a typo or an option of a
// newer Docker must not be silently ignored); other keys belong to other drivers and pass.
Result<BridgeOptions> parse_bridge_options(const std::map<std::string, std::string>& options);
// An endpoint's driver options (connect --driver-opt, Docker's CreateEndpoint options): the
// interface name asked for, if any. Other keys pass: Docker sends its own endpoint options (port
// maps, exposed ports, the MAC address) that are not the driver's to judge.
Result<std::optional<std::string>> parse_endpoint_ifname(
    const std::map<std::string, std::string>& options);
// Parses "key=value" as given to -o/--label; the value may be empty, the key may not.
Result<std::pair<std::string, std::string>> parse_key_value(std::string_view text);
// Linux interface names: 1..15 bytes, no '/', whitespace or ':'; not "." or "..".
bool is_valid_ifname(std::string_view name);

}  // namespace bpfnet

// Typed view of a network's `-o key=value` options. Unknown keys are kept verbatim (docker passes
// through driver options it does not know); known keys are validated so a typo in a value is an
// error.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/ipv4.h"
#include "core/result.h"

namespace bpfnet {

namespace opt {
inline constexpr const char* kBridgeName = "com.docker.network.bridge.name";
inline constexpr const char* kEnableIcc = "com.docker.network.bridge.enable_icc";
inline constexpr const char* kEnableIpMasquerade = "com.docker.network.bridge.enable_ip_masquerade";
inline constexpr const char* kHostBindingIpv4 = "com.docker.network.bridge.host_binding_ipv4";
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

struct BridgeOptions {
    std::optional<std::string> bridge_name;  // user-chosen Linux bridge name
    bool enable_icc = true;
    bool enable_ip_masquerade = true;
    std::optional<Ipv4> host_binding_ipv4;
    int mtu = 1500;
    DatapathMode datapath = DatapathMode::Auto;
    EndpointMode endpoint_mode = EndpointMode::Auto;
};

// Docker accepts the usual boolean spellings (strconv.ParseBool).
Result<bool> parse_bool(std::string_view key, std::string_view text);
Result<BridgeOptions> parse_bridge_options(const std::map<std::string, std::string>& options);
// Parses "key=value" as given to -o/--label; the value may be empty, the key may not.
Result<std::pair<std::string, std::string>> parse_key_value(std::string_view text);
// Linux interface names: 1..15 bytes, no '/', whitespace or ':'; not "." or "..".
bool is_valid_ifname(std::string_view name);

}  // namespace bpfnet

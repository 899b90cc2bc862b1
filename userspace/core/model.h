// The Container Network Model: networks, the endpoints that attach sandboxes to them, and sandboxes
// (network namespaces). Plain values; the store persists them as JSON, the agent orchestrates them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/ipv4.h"
#include "core/json_fields.h"
#include "core/ports.h"

namespace bpfnet {

// Where an object is in its life. Records are written *before* kernel objects are created and
// marked Deleting before they are torn down, so a crash at any point leaves the store naming
// everything the agent may have made; the reconciler finishes (Creating -> Ready) or undoes
// (Deleting -> gone).
enum class Lifecycle { Creating, Ready, Deleting };
const char* to_string(Lifecycle state);
Result<Lifecycle> parse_lifecycle(std::string_view text);

// Who asked for an object, and so who decides its life. Docker-owned objects came through the
// plugin protocol: Docker configures the sandbox side of their endpoints (moves, renames and
// addresses the interface), owns their network namespaces, and removes them itself; bpfnet's CLI
// refuses to remove them behind Docker's back.
enum class Owner { Bpfnet, Docker };
const char* to_string(Owner owner);
Result<Owner> parse_owner(std::string_view text);

struct IpamConfig {
    std::string driver = "default";
    Cidr subnet;
    Ipv4 gateway;
    std::optional<Cidr> ip_range;
    std::map<std::string, Ipv4> aux_addresses;
    bool user_subnet = false;  // --subnet given: static --ip is only allowed then (docker's rule)
};

struct Network {
    std::string id;
    std::string name;
    std::string driver = "bridge";
    std::map<std::string, std::string> options;  // -o key=value, verbatim
    std::map<std::string, std::string> labels;
    IpamConfig ipam;
    bool internal = false;
    std::string created;  // RFC 3339, UTC
    Lifecycle state = Lifecycle::Creating;
    // The Linux device the datapath made for this network, recorded before it is created: the
    // bridge; for macvlan/ipvlan the parent bpfnet had to make (a VLAN sub-interface or an
    // internal parent), empty when the parent is the user's device.
    std::string bridge_name;
    // macvlan/ipvlan: the device the endpoints' interfaces hang off.
    std::string parent;
    Owner owner = Owner::Bpfnet;
    // The network's key in the BPF maps (include/bpfnet/abi.h): given once by this host's store
    // (Store::allocate_datapath_id) before the network is first recorded, never changed, never
    // reused. Local to the host: a network mirrored from the cluster gets its own here. 0: none
    // yet (a network only ever seen in a cluster record).
    uint32_t datapath_id = 0;
};

// Docker's driver names. What each means is its driver's business (agent/drivers/).
namespace driver {
inline constexpr const char* kBridge = "bridge";
inline constexpr const char* kMacvlan = "macvlan";
inline constexpr const char* kIpvlan = "ipvlan";
inline constexpr const char* kHost = "host";
inline constexpr const char* kNull = "null";  // the "none" network
inline constexpr const char* kOverlay = "overlay";
}  // namespace driver

struct Endpoint {
    std::string id;
    std::string network_id;
    // Empty for a Docker endpoint between CreateEndpoint and Join (and after Leave).
    std::string sandbox_id;
    // Name inside the sandbox: eth0, eth1, ... For Docker endpoints, the name the container end has
    // on the host until Docker moves it into the sandbox and renames it.
    std::string ifname;
    std::string host_ifname;  // host end of the veth
    MacAddr mac;
    Ipv4 ip;
    std::vector<std::string> aliases;
    std::vector<PortBinding> ports;  // published host ports forwarded to this endpoint
    bool default_route = false;      // this endpoint carries the sandbox's default route
    std::string created;
    Lifecycle state = Lifecycle::Creating;
    Owner owner = Owner::Bpfnet;
};

// How a sandbox's namespace came to be: its own (connected to networks one by one), the host's
// (`--network host`: the sandbox is the host's namespace, bound under its name), or its own with
// loopback only and no other network allowed (`--network none`).
enum class SandboxMode { Own, Host, None };
const char* to_string(SandboxMode mode);
Result<SandboxMode> parse_sandbox_mode(std::string_view text);

struct Sandbox {
    std::string id;
    std::string name;
    std::string netns_path;
    SandboxMode mode = SandboxMode::Own;
    std::string created;
    Lifecycle state = Lifecycle::Creating;
    Owner owner = Owner::Bpfnet;  // Docker's sandboxes are namespaces Docker made (SandboxKey)
};

// An address pool handed out through Docker's IpamDriver protocol (`--ipam-driver bpfnet`). Docker
// asks for the pool before it creates the network, then for the gateway and every endpoint address,
// so a pool and its allocations are an object of their own. The id is derived from the request, so
// an identical request finds the same pool (and takes another reference on it).
struct AddressPool {
    std::string id;
    Cidr subnet;
    std::optional<Cidr> ip_range;  // --ip-range: dynamic addresses come from here
    std::set<Ipv4> allocated;      // gateway, aux and endpoint addresses handed to Docker
    int references = 1;
    std::string created;
};

// Documents as the stores keep them. The decoders take a parsed document, or one object inside
// another document (whose path then prefixes the fields named in errors).
void to_json(nlohmann::json& j, const IpamConfig& v);
void to_json(nlohmann::json& j, const Network& v);
void to_json(nlohmann::json& j, const Endpoint& v);
void to_json(nlohmann::json& j, const Sandbox& v);
void to_json(nlohmann::json& j, const AddressPool& v);
Result<Network> network_from_json(const nlohmann::json& document);
Result<Network> network_from_json(const JsonObject& object);
Result<Endpoint> endpoint_from_json(const nlohmann::json& document);
Result<Endpoint> endpoint_from_json(const JsonObject& object);
Result<Sandbox> sandbox_from_json(const nlohmann::json& document);
Result<Sandbox> sandbox_from_json(const JsonObject& object);
Result<AddressPool> address_pool_from_json(const nlohmann::json& document);
Result<AddressPool> address_pool_from_json(const JsonObject& object);

// Current time as RFC 3339 with nanoseconds, like docker's "Created".
std::string now_rfc3339();

}  // namespace bpfnet

// Published ports with Docker's rules: parsing `-p
// [ip:][hostPort[-end]:]containerPort[-end][/proto]`, expanding ranges, and allocating host ports
// against what is already taken. Pure functions; the agent asks the kernel whether a port is in use
// and passes that in as a predicate.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/ipv4.h"
#include "core/json_fields.h"
#include "core/result.h"

namespace bpfnet {

// IP protocol numbers, as Docker's port bindings carry them.
enum class IpProto : uint8_t { Tcp = 6, Udp = 17, Sctp = 132 };
const char* to_string(IpProto proto);
Result<IpProto> parse_proto(std::string_view text);  // "tcp", "udp", "sctp"
Result<IpProto> proto_from_number(int64_t number);   // 6, 17, 132

// One host port forwarded to one endpoint port.
struct PortBinding {
    IpProto proto = IpProto::Tcp;
    Ipv4 host_ip;  // 0.0.0.0: every address of the host
    uint16_t host_port = 0;
    uint16_t container_port = 0;

    bool operator==(const PortBinding&) const = default;
    std::string str() const;  // "0.0.0.0:8080->80/tcp", as `docker port` prints
};

// A host port forwarded to an endpoint, with what the NAT needs to know about its network.
struct PublishedPort {
    PortBinding binding;
    Ipv4 endpoint_ip;
    std::string bridge;
    Cidr subnet;
    // On a gateway_mode_ipv4=routed network: the container port is opened to direct routing,
    // the host port is not translated.
    bool routed = false;
    uint32_t network = 0;  // the network's datapath ID: its key in the BPF maps
};

// One container port to publish, before a host port is chosen.
struct PortRequest {
    IpProto proto = IpProto::Tcp;
    Ipv4 host_ip;
    // The request named a host address (0.0.0.0 included); without one the network's
    // host_binding_ipv4 applies, as with Docker.
    bool host_ip_given = false;
    // [host_first, host_last]: the host ports to choose from; 0/0: an ephemeral port.
    uint16_t host_first = 0;
    uint16_t host_last = 0;
    uint16_t container_port = 0;
};

// Parses one -p/--publish value into one request per container port. A container range takes
// either no host port (each gets an ephemeral one) or a host range of the same size (mapped 1:1);
// one container port with a host range gets one port chosen from that range.
Result<std::vector<PortRequest>> parse_publish(std::string_view text);

// The host's ephemeral port range (net.ipv4.ip_local_port_range), from which `-p 80` picks.
struct PortRange {
    uint16_t first = 49153;
    uint16_t last = 65535;
};
Result<PortRange> parse_port_range(std::string_view text);  // "32768\t60999"

// The ports egress flows are source-NATed to (bpfnetd --snat-ports): "FIRST-LAST", both
// inclusive, 1024 <= FIRST <= LAST (privileged ports stay the host's).
inline constexpr PortRange kDefaultSnatPorts{61000,
                                             65535};  // above Linux's default ephemeral range
Result<PortRange> parse_snat_port_range(std::string_view text);
// Whether two ranges share a port (the SNAT range and ip_local_port_range should not: a host
// socket and an egress flow could then hold the same 5-tuple).
bool overlaps(PortRange a, PortRange b);

// Whether (proto, host_ip, port) is used by something outside bpfnet (a listening socket).
using PortInUse = std::function<bool(IpProto, Ipv4, uint16_t)>;

// Chooses host ports for `requests`. `taken` are the bindings bpfnet already has on this host. Two
// bindings clash when protocol and port are equal and their host IPs overlap (0.0.0.0 overlaps
// every address). A fixed port that clashes or is in use is a Conflict naming it; a range or the
// ephemeral range with nothing free is Exhausted.
Result<std::vector<PortBinding>> allocate_ports(const std::vector<PortRequest>& requests,
                                                const std::vector<PortBinding>& taken,
                                                const PortInUse& in_use, PortRange ephemeral);

void to_json(nlohmann::json& j, const PortBinding& v);
Result<PortBinding> port_binding_from_json(const JsonObject& j);

}  // namespace bpfnet

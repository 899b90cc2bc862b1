#include "core/ports.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bpfnet {

namespace {

Result<uint16_t> parse_port(std::string_view text, std::string_view what) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value == 0 ||
        value > 65535) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid {} \"{}\": expected a port number 1-65535", what, text));
    }
    return static_cast<uint16_t>(value);
}

struct Span {
    uint16_t first = 0;
    uint16_t last = 0;
    unsigned size() const { return unsigned(last) - first + 1; }
};

Result<Span> parse_span(std::string_view text, std::string_view what) {
    auto dash = text.find('-');
    BPFNET_ASSIGN_OR_RETURN(uint16_t first, parse_port(text.substr(0, dash), what));
    uint16_t last = first;
    if (dash != std::string_view::npos) {
        BPFNET_ASSIGN_OR_RETURN(last, parse_port(text.substr(dash + 1), what));
    }
    if (last < first) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid {} range \"{}\": the end is below the start", what, text));
    }
    return Span{first, last};
}

bool clashes(const PortBinding& a, IpProto proto, Ipv4 host_ip, uint16_t port) {
    if (a.proto != proto || a.host_port != port) return false;
    return a.host_ip.value == 0 || host_ip.value == 0 || a.host_ip == host_ip;
}

}  // namespace

const char* to_string(IpProto proto) {
    switch (proto) {
        case IpProto::Tcp:
            return "tcp";
        case IpProto::Udp:
            return "udp";
        case IpProto::Sctp:
            return "sctp";
    }
    return "unknown";
}

Result<IpProto> parse_proto(std::string_view text) {
    if (text == "tcp") return IpProto::Tcp;
    if (text == "udp") return IpProto::Udp;
    if (text == "sctp") return IpProto::Sctp;
    return fail(ErrorKind::InvalidArgument,
                fmt::format("invalid protocol \"{}\": expected tcp, udp or sctp", text));
}

Result<IpProto> proto_from_number(int64_t number) {
    switch (number) {
        case 6:
            return IpProto::Tcp;
        case 17:
            return IpProto::Udp;
        case 132:
            return IpProto::Sctp;
    }
    return fail(
        ErrorKind::InvalidArgument,
        fmt::format("unsupported IP protocol {} for a published port (tcp, udp or sctp)", number));
}

std::string PortBinding::str() const {
    return fmt::format("{}:{}->{}/{}", host_ip.str(), host_port, container_port, to_string(proto));
}

Result<std::vector<PortRequest>> parse_publish(std::string_view text) {
    std::string_view spec = text;
    IpProto proto = IpProto::Tcp;
    if (auto slash = spec.rfind('/'); slash != std::string_view::npos) {
        BPFNET_ASSIGN_OR_RETURN(proto, parse_proto(spec.substr(slash + 1)));
        spec = spec.substr(0, slash);
    }
    // Split from the right: "ip:host:container", "host:container", "container". An empty host
    // part ("ip::80") means an ephemeral port on that address, as in docker.
    std::vector<std::string_view> parts;
    while (true) {
        auto colon = spec.rfind(':');
        if (colon == std::string_view::npos) {
            parts.insert(parts.begin(), spec);
            break;
        }
        parts.insert(parts.begin(), spec.substr(colon + 1));
        spec = spec.substr(0, colon);
        if (parts.size() == 2) {
            parts.insert(parts.begin(), spec);
            break;
        }
    }
    Ipv4 host_ip;
    bool host_ip_given = false;
    std::string_view host_part;
    std::string_view container_part = parts.back();
    if (parts.size() == 3) {
        if (!parts[0].empty()) {
            BPFNET_ASSIGN_OR_RETURN(host_ip, Ipv4::parse(parts[0]));
            host_ip_given = true;
        }
        host_part = parts[1];
    } else if (parts.size() == 2) {
        host_part = parts[0];
    }
    BPFNET_ASSIGN_OR_RETURN(Span container, parse_span(container_part, "container port"));
    std::optional<Span> host;
    if (!host_part.empty()) {
        BPFNET_ASSIGN_OR_RETURN(host, parse_span(host_part, "host port"));
    }
    if (container.size() > 1 && host && host->size() != container.size()) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid port specification \"{}\": a container port range needs a "
                                "host range of the same size",
                                text));
    }
    std::vector<PortRequest> requests;
    for (unsigned i = 0; i < container.size(); ++i) {
        PortRequest r;
        r.proto = proto;
        r.host_ip = host_ip;
        r.host_ip_given = host_ip_given;
        r.container_port = static_cast<uint16_t>(container.first + i);
        if (host && container.size() > 1) {
            r.host_first = r.host_last = static_cast<uint16_t>(host->first + i);
        } else if (host) {
            r.host_first = host->first;
            r.host_last = host->last;
        }
        requests.push_back(r);
    }
    return requests;
}

Result<PortRange> parse_port_range(std::string_view text) {
    auto space = text.find_first_of(" \t");
    auto rest = text.substr(space == std::string_view::npos ? text.size() : space);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
    auto first = parse_port(text.substr(0, space), "ephemeral port range start");
    auto last = parse_port(rest, "ephemeral port range end");
    if (!first || !last || *last < *first) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid ip_local_port_range \"{}\"", text));
    }
    return PortRange{*first, *last};
}

Result<PortRange> parse_snat_port_range(std::string_view text) {
    const auto dash = text.find('-');
    auto bad = [&](std::string_view why) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("invalid SNAT port range \"{}\": {}", text, why));
    };
    if (dash == std::string_view::npos) return bad("expected FIRST-LAST");
    BPFNET_ASSIGN_OR_RETURN(uint16_t first, parse_port(text.substr(0, dash), "SNAT port"));
    BPFNET_ASSIGN_OR_RETURN(uint16_t last, parse_port(text.substr(dash + 1), "SNAT port"));
    if (first < 1024) return bad("ports below 1024 are the host's");
    if (last < first) return bad("the end is below the start");
    return PortRange{first, last};
}

bool overlaps(PortRange a, PortRange b) {
    return a.first <= b.last && b.first <= a.last;
}

Result<std::vector<PortBinding>> allocate_ports(const std::vector<PortRequest>& requests,
                                                const std::vector<PortBinding>& taken,
                                                const PortInUse& in_use, PortRange ephemeral) {
    std::vector<PortBinding> chosen;
    auto is_free = [&](IpProto proto, Ipv4 ip, uint16_t port) {
        for (const auto& b : taken)
            if (clashes(b, proto, ip, port)) return false;
        for (const auto& b : chosen)
            if (clashes(b, proto, ip, port)) return false;
        return !in_use(proto, ip, port);
    };
    for (const auto& r : requests) {
        PortBinding b{r.proto, r.host_ip, 0, r.container_port};
        if (r.host_first != 0 && r.host_first == r.host_last) {
            if (!is_free(r.proto, r.host_ip, r.host_first)) {
                return fail(ErrorKind::Conflict,
                            fmt::format("host port {}:{}/{} is already allocated (by bpfnet or a "
                                        "process listening on it)",
                                        r.host_ip.str(), r.host_first, to_string(r.proto)));
            }
            b.host_port = r.host_first;
        } else {
            bool ephemeral_pick = r.host_first == 0;
            uint16_t first = ephemeral_pick ? ephemeral.first : r.host_first;
            uint16_t last = ephemeral_pick ? ephemeral.last : r.host_last;
            for (uint32_t port = first; port <= last; ++port) {
                if (is_free(r.proto, r.host_ip, static_cast<uint16_t>(port))) {
                    b.host_port = static_cast<uint16_t>(port);
                    break;
                }
            }
            if (b.host_port == 0) {
                return fail(ErrorKind::Exhausted,
                            fmt::format("no free host port in {}-{} for {}/{}", first, last,
                                        r.container_port, to_string(r.proto)));
            }
        }
        chosen.push_back(b);
    }
    return chosen;
}

void to_json(nlohmann::json& j, const PortBinding& v) {
    j = {{"proto", to_string(v.proto)},
         {"host_ip", v.host_ip.str()},
         {"host_port", v.host_port},
         {"container_port", v.container_port}};
}

Result<PortBinding> port_binding_from_json(const JsonObject& j) {
    PortBinding v;
    BPFNET_ASSIGN_OR_RETURN(v.proto, parsed_field(j, "proto", parse_proto));
    BPFNET_ASSIGN_OR_RETURN(v.host_ip, parsed_field(j, "host_ip", Ipv4::parse));
    BPFNET_ASSIGN_OR_RETURN(int64_t host_port,
                            j.integer("host_port", Presence::Required, 0, 65535));
    BPFNET_ASSIGN_OR_RETURN(int64_t container_port,
                            j.integer("container_port", Presence::Required, 0, 65535));
    v.host_port = static_cast<uint16_t>(host_port);
    v.container_port = static_cast<uint16_t>(container_port);
    return v;
}

}  // namespace bpfnet

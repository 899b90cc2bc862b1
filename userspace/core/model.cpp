#include "core/model.h"

#include <chrono>
#include <ctime>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bpfnet {

const char* to_string(Lifecycle state) {
    switch (state) {
        case Lifecycle::Creating:
            return "creating";
        case Lifecycle::Ready:
            return "ready";
        case Lifecycle::Deleting:
            return "deleting";
    }
    return "unknown";
}

Result<Lifecycle> parse_lifecycle(std::string_view text) {
    if (text == "creating") return Lifecycle::Creating;
    if (text == "ready") return Lifecycle::Ready;
    if (text == "deleting") return Lifecycle::Deleting;
    return fail(ErrorKind::InvalidArgument, fmt::format("unknown lifecycle state \"{}\"", text));
}

const char* to_string(Owner owner) {
    return owner == Owner::Docker ? "docker" : "bpfnet";
}

Result<Owner> parse_owner(std::string_view text) {
    if (text == "bpfnet") return Owner::Bpfnet;
    if (text == "docker") return Owner::Docker;
    return fail(ErrorKind::InvalidArgument, fmt::format("unknown owner \"{}\"", text));
}

const char* to_string(SandboxMode mode) {
    switch (mode) {
        case SandboxMode::Host:
            return "host";
        case SandboxMode::None:
            return "none";
        case SandboxMode::Own:
            break;
    }
    return "own";
}

Result<SandboxMode> parse_sandbox_mode(std::string_view text) {
    if (text == "own") return SandboxMode::Own;
    if (text == "host") return SandboxMode::Host;
    if (text == "none") return SandboxMode::None;
    return fail(ErrorKind::InvalidArgument, fmt::format("unknown sandbox mode \"{}\"", text));
}

namespace {

Result<Cidr> cidr_field(const JsonObject& j, std::string_view key) {
    return parsed_field(j, key, [](std::string_view text) { return Cidr::parse(text); });
}

Result<Ipv4> ipv4_field(const JsonObject& j, std::string_view key) {
    return parsed_field(j, key, Ipv4::parse);
}

// Objects written before owners existed have no "owner" field: they are bpfnet's.
Result<Owner> owner_field(const JsonObject& j) {
    if (!j.has("owner")) return Owner::Bpfnet;
    return parsed_field(j, "owner", parse_owner);
}

Result<IpamConfig> ipam_config_from_json(const JsonObject& j) {
    IpamConfig v;
    if (j.has("driver")) {
        BPFNET_ASSIGN_OR_RETURN(v.driver, j.string("driver"));
    }
    BPFNET_ASSIGN_OR_RETURN(v.subnet, cidr_field(j, "subnet"));
    BPFNET_ASSIGN_OR_RETURN(v.gateway, ipv4_field(j, "gateway"));
    if (j.has("ip_range")) {
        BPFNET_ASSIGN_OR_RETURN(v.ip_range, cidr_field(j, "ip_range"));
    }
    BPFNET_ASSIGN_OR_RETURN(auto aux, j.string_map("aux_addresses"));
    for (const auto& [name, text] : aux) {
        auto ip = Ipv4::parse(text);
        if (!ip) {
            return j.invalid("aux_addresses",
                             fmt::format("value of \"{}\": {}", name, ip.error().message));
        }
        v.aux_addresses[name] = *ip;
    }
    BPFNET_ASSIGN_OR_RETURN(v.user_subnet, j.boolean("user_subnet"));
    return v;
}

// For the decoders of a whole document: its root must be an object.
template <typename T>
Result<T> decode_document(const nlohmann::json& document, Result<T> (*decode)(const JsonObject&)) {
    BPFNET_ASSIGN_OR_RETURN(JsonObject root, JsonObject::root(document));
    return decode(root);
}

}  // namespace

void to_json(nlohmann::json& j, const IpamConfig& v) {
    nlohmann::json aux = nlohmann::json::object();
    for (const auto& [name, ip] : v.aux_addresses) aux[name] = ip.str();
    j = {{"driver", v.driver},
         {"subnet", v.subnet.str()},
         {"gateway", v.gateway.str()},
         {"aux_addresses", aux},
         {"user_subnet", v.user_subnet}};
    if (v.ip_range) j["ip_range"] = v.ip_range->str();
}

void to_json(nlohmann::json& j, const Network& v) {
    j = {{"id", v.id},
         {"name", v.name},
         {"driver", v.driver},
         {"options", v.options},
         {"labels", v.labels},
         {"ipam", v.ipam},
         {"internal", v.internal},
         {"created", v.created},
         {"state", to_string(v.state)},
         {"bridge_name", v.bridge_name},
         {"parent", v.parent},
         {"owner", to_string(v.owner)},
         {"datapath_id", v.datapath_id}};
}

Result<Network> network_from_json(const JsonObject& j) {
    Network v;
    BPFNET_ASSIGN_OR_RETURN(v.id, j.string("id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.name, j.string("name", Presence::Required));
    if (j.has("driver")) {
        BPFNET_ASSIGN_OR_RETURN(v.driver, j.string("driver"));
    }
    BPFNET_ASSIGN_OR_RETURN(v.options, j.string_map("options"));
    BPFNET_ASSIGN_OR_RETURN(v.labels, j.string_map("labels"));
    BPFNET_ASSIGN_OR_RETURN(JsonObject ipam, j.object("ipam", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.ipam, ipam_config_from_json(ipam));
    BPFNET_ASSIGN_OR_RETURN(v.internal, j.boolean("internal"));
    BPFNET_ASSIGN_OR_RETURN(v.created, j.string("created"));
    BPFNET_ASSIGN_OR_RETURN(v.state, parsed_field(j, "state", parse_lifecycle));
    BPFNET_ASSIGN_OR_RETURN(v.bridge_name, j.string("bridge_name"));
    BPFNET_ASSIGN_OR_RETURN(v.parent, j.string("parent"));
    BPFNET_ASSIGN_OR_RETURN(v.owner, owner_field(j));
    BPFNET_ASSIGN_OR_RETURN(int64_t datapath_id, j.integer("datapath_id", Presence::Optional, 0,
                                                           std::numeric_limits<uint32_t>::max()));
    v.datapath_id = static_cast<uint32_t>(datapath_id);
    return v;
}

Result<Network> network_from_json(const nlohmann::json& document) {
    return decode_document<Network>(document, network_from_json);
}

void to_json(nlohmann::json& j, const Endpoint& v) {
    j = {{"id", v.id},           {"network_id", v.network_id},   {"sandbox_id", v.sandbox_id},
         {"ifname", v.ifname},   {"host_ifname", v.host_ifname}, {"mac", v.mac.str()},
         {"ip", v.ip.str()},     {"aliases", v.aliases},         {"default_route", v.default_route},
         {"created", v.created}, {"state", to_string(v.state)},  {"owner", to_string(v.owner)},
         {"ports", v.ports}};
}

Result<Endpoint> endpoint_from_json(const JsonObject& j) {
    Endpoint v;
    BPFNET_ASSIGN_OR_RETURN(v.id, j.string("id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.network_id, j.string("network_id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.sandbox_id, j.string("sandbox_id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.ifname, j.string("ifname", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.host_ifname, j.string("host_ifname", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.mac, parsed_field(j, "mac", MacAddr::parse));
    BPFNET_ASSIGN_OR_RETURN(v.ip, ipv4_field(j, "ip"));
    BPFNET_ASSIGN_OR_RETURN(v.aliases, j.string_array("aliases"));
    BPFNET_ASSIGN_OR_RETURN(v.default_route, j.boolean("default_route"));
    BPFNET_ASSIGN_OR_RETURN(v.created, j.string("created"));
    BPFNET_ASSIGN_OR_RETURN(v.state, parsed_field(j, "state", parse_lifecycle));
    BPFNET_ASSIGN_OR_RETURN(v.owner, owner_field(j));
    BPFNET_ASSIGN_OR_RETURN(JsonArray ports, j.array("ports"));
    for (size_t i = 0; i < ports.size(); ++i) {
        BPFNET_ASSIGN_OR_RETURN(JsonObject port, ports.object(i));
        BPFNET_ASSIGN_OR_RETURN(PortBinding binding, port_binding_from_json(port));
        v.ports.push_back(binding);
    }
    return v;
}

Result<Endpoint> endpoint_from_json(const nlohmann::json& document) {
    return decode_document<Endpoint>(document, endpoint_from_json);
}

void to_json(nlohmann::json& j, const Sandbox& v) {
    j = {{"id", v.id},
         {"name", v.name},
         {"netns_path", v.netns_path},
         {"mode", to_string(v.mode)},
         {"created", v.created},
         {"state", to_string(v.state)},
         {"owner", to_string(v.owner)}};
}

Result<Sandbox> sandbox_from_json(const JsonObject& j) {
    Sandbox v;
    BPFNET_ASSIGN_OR_RETURN(v.id, j.string("id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.name, j.string("name", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.netns_path, j.string("netns_path", Presence::Required));
    // Sandboxes written before host/none modes existed have their own namespace.
    if (j.has("mode")) {
        BPFNET_ASSIGN_OR_RETURN(v.mode, parsed_field(j, "mode", parse_sandbox_mode));
    }
    BPFNET_ASSIGN_OR_RETURN(v.created, j.string("created"));
    BPFNET_ASSIGN_OR_RETURN(v.state, parsed_field(j, "state", parse_lifecycle));
    BPFNET_ASSIGN_OR_RETURN(v.owner, owner_field(j));
    return v;
}

Result<Sandbox> sandbox_from_json(const nlohmann::json& document) {
    return decode_document<Sandbox>(document, sandbox_from_json);
}

void to_json(nlohmann::json& j, const AddressPool& v) {
    std::vector<std::string> allocated;
    for (const auto& ip : v.allocated) allocated.push_back(ip.str());
    j = {{"id", v.id},
         {"subnet", v.subnet.str()},
         {"allocated", allocated},
         {"references", v.references},
         {"created", v.created}};
    if (v.ip_range) j["ip_range"] = v.ip_range->str();
}

Result<AddressPool> address_pool_from_json(const JsonObject& j) {
    AddressPool v;
    BPFNET_ASSIGN_OR_RETURN(v.id, j.string("id", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(v.subnet, cidr_field(j, "subnet"));
    if (j.has("ip_range")) {
        BPFNET_ASSIGN_OR_RETURN(v.ip_range, cidr_field(j, "ip_range"));
    }
    BPFNET_ASSIGN_OR_RETURN(auto allocated, j.string_array("allocated"));
    for (const auto& text : allocated) {
        auto ip = Ipv4::parse(text);
        if (!ip) return j.invalid("allocated", ip.error().message);
        v.allocated.insert(*ip);
    }
    if (j.has("references")) {
        BPFNET_ASSIGN_OR_RETURN(int64_t references, j.integer("references", Presence::Required,
                                                              std::numeric_limits<int>::min(),
                                                              std::numeric_limits<int>::max()));
        v.references = static_cast<int>(references);
    }
    BPFNET_ASSIGN_OR_RETURN(v.created, j.string("created"));
    return v;
}

Result<AddressPool> address_pool_from_json(const nlohmann::json& document) {
    return decode_document<AddressPool>(document, address_pool_from_json);
}

std::string now_rfc3339() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:09d}Z", buf, nanos);
}

}  // namespace bpfnet

#include "core/model.h"

#include <chrono>
#include <ctime>
#include <stdexcept>

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

bool is_child_link_driver(const std::string& name) {
    return name == driver::kMacvlan || name == driver::kIpvlan;
}

bool is_builtin_only_driver(const std::string& name) {
    return name == driver::kHost || name == driver::kNull;
}

namespace {

// Objects written before owners existed have no "owner" field: they are bpfnet's.
Owner owner_of(const nlohmann::json& j) {
    auto parsed = parse_owner(j.value("owner", "bpfnet"));
    if (!parsed) throw std::invalid_argument(parsed.error().message);
    return *parsed;
}

// JSON helpers that turn a parse failure into an exception nlohmann reports as a decode error.
template <typename T>
T parse_or_throw(const nlohmann::json& j, const char* key) {
    auto text = j.at(key).get<std::string>();
    Result<T> parsed = [&] {
        if constexpr (std::is_same_v<T, Cidr>)
            return Cidr::parse(text);
        else if constexpr (std::is_same_v<T, Ipv4>)
            return Ipv4::parse(text);
        else if constexpr (std::is_same_v<T, MacAddr>)
            return MacAddr::parse(text);
        else if constexpr (std::is_same_v<T, SandboxMode>)
            return parse_sandbox_mode(text);
        else
            return parse_lifecycle(text);
    }();
    if (!parsed)
        throw std::invalid_argument(fmt::format("field {}: {}", key, parsed.error().message));
    return *parsed;
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

void from_json(const nlohmann::json& j, IpamConfig& v) {
    v.driver = j.value("driver", "default");
    v.subnet = parse_or_throw<Cidr>(j, "subnet");
    v.gateway = parse_or_throw<Ipv4>(j, "gateway");
    v.ip_range.reset();
    if (j.contains("ip_range")) v.ip_range = parse_or_throw<Cidr>(j, "ip_range");
    v.aux_addresses.clear();
    // Bound to a named value: a temporary in the range expression would die before the loop runs.
    const nlohmann::json aux = j.value("aux_addresses", nlohmann::json::object());
    for (const auto& [name, ip] : aux.items()) {
        auto parsed = Ipv4::parse(ip.get<std::string>());
        if (!parsed) throw std::invalid_argument(parsed.error().message);
        v.aux_addresses[name] = *parsed;
    }
    v.user_subnet = j.value("user_subnet", false);
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
         {"owner", to_string(v.owner)}};
}

void from_json(const nlohmann::json& j, Network& v) {
    v.id = j.at("id").get<std::string>();
    v.name = j.at("name").get<std::string>();
    v.driver = j.value("driver", "bridge");
    v.options = j.value("options", std::map<std::string, std::string>{});
    v.labels = j.value("labels", std::map<std::string, std::string>{});
    v.ipam = j.at("ipam").get<IpamConfig>();
    v.internal = j.value("internal", false);
    v.created = j.value("created", "");
    v.state = parse_or_throw<Lifecycle>(j, "state");
    v.bridge_name = j.value("bridge_name", "");
    v.parent = j.value("parent", "");
    v.owner = owner_of(j);
}

void to_json(nlohmann::json& j, const Endpoint& v) {
    j = {{"id", v.id},           {"network_id", v.network_id},   {"sandbox_id", v.sandbox_id},
         {"ifname", v.ifname},   {"host_ifname", v.host_ifname}, {"mac", v.mac.str()},
         {"ip", v.ip.str()},     {"aliases", v.aliases},         {"default_route", v.default_route},
         {"created", v.created}, {"state", to_string(v.state)},  {"owner", to_string(v.owner)},
         {"ports", v.ports}};
}

void from_json(const nlohmann::json& j, Endpoint& v) {
    v.id = j.at("id").get<std::string>();
    v.network_id = j.at("network_id").get<std::string>();
    v.sandbox_id = j.at("sandbox_id").get<std::string>();
    v.ifname = j.at("ifname").get<std::string>();
    v.host_ifname = j.at("host_ifname").get<std::string>();
    v.mac = parse_or_throw<MacAddr>(j, "mac");
    v.ip = parse_or_throw<Ipv4>(j, "ip");
    v.aliases = j.value("aliases", std::vector<std::string>{});
    v.default_route = j.value("default_route", false);
    v.created = j.value("created", "");
    v.state = parse_or_throw<Lifecycle>(j, "state");
    v.owner = owner_of(j);
    v.ports = j.value("ports", std::vector<PortBinding>{});
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

void from_json(const nlohmann::json& j, Sandbox& v) {
    v.id = j.at("id").get<std::string>();
    v.name = j.at("name").get<std::string>();
    v.netns_path = j.at("netns_path").get<std::string>();
    if (j.contains("mode")) v.mode = parse_or_throw<SandboxMode>(j, "mode");
    v.created = j.value("created", "");
    v.state = parse_or_throw<Lifecycle>(j, "state");
    v.owner = owner_of(j);
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

void from_json(const nlohmann::json& j, AddressPool& v) {
    v.id = j.at("id").get<std::string>();
    v.subnet = parse_or_throw<Cidr>(j, "subnet");
    v.ip_range.reset();
    if (j.contains("ip_range")) v.ip_range = parse_or_throw<Cidr>(j, "ip_range");
    v.allocated.clear();
    for (const auto& text : j.value("allocated", std::vector<std::string>{})) {
        auto ip = Ipv4::parse(text);
        if (!ip) throw std::invalid_argument(ip.error().message);
        v.allocated.insert(*ip);
    }
    v.references = j.value("references", 1);
    v.created = j.value("created", "");
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

#include "agent/native_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <bpfnet/version.h>

#include "agent/capabilities.h"

namespace bpfnet {

namespace {

// ordered_json keeps docker's field order (Name, Id, Created, ...) in what users read.
using json = nlohmann::ordered_json;

HttpResponse json_response(int status, const json& body) {
    return HttpResponse{status, "application/json",
                        body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

HttpResponse error_response(const Error& error) {
    return json_response(http_status_for(error.kind), json{{"message", error.message}});
}

HttpResponse bad_request(const std::string& message) {
    return error_response(Error{ErrorKind::InvalidArgument, message});
}

std::vector<std::string> split_path(const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    std::vector<std::string> parts;
    size_t pos = 0;
    while (pos < path.size()) {
        size_t next = path.find('/', pos);
        if (next == std::string::npos) next = path.size();
        if (next > pos) parts.push_back(path.substr(pos, next - pos));
        pos = next + 1;
    }
    return parts;
}

// Reads an optional string field, rejecting other JSON types with a message naming the field.
Result<std::string> string_field(const json& body, const char* key) {
    if (!body.contains(key) || body[key].is_null()) return std::string{};
    if (!body[key].is_string()) {
        return fail(ErrorKind::InvalidArgument, fmt::format("field \"{}\" must be a string", key));
    }
    return body[key].get<std::string>();
}

Result<std::map<std::string, std::string>> string_map_field(const json& body, const char* key) {
    std::map<std::string, std::string> out;
    if (!body.contains(key) || body[key].is_null()) return out;
    if (!body[key].is_object())
        return fail(ErrorKind::InvalidArgument, fmt::format("field \"{}\" must be an object", key));
    for (const auto& [k, v] : body[key].items()) {
        if (!v.is_string()) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("field \"{}\": value of \"{}\" must be a string", key, k));
        }
        out[k] = v.get<std::string>();
    }
    return out;
}

Result<CreateNetworkRequest> parse_create_network(const json& body) {
    CreateNetworkRequest req;
    BPFNET_ASSIGN_OR_RETURN(req.name, string_field(body, "Name"));
    BPFNET_ASSIGN_OR_RETURN(std::string driver, string_field(body, "Driver"));
    if (!driver.empty()) req.driver = driver;
    if (body.contains("Internal") && !body["Internal"].is_null()) {
        if (!body["Internal"].is_boolean())
            return fail(ErrorKind::InvalidArgument, "field \"Internal\" must be a boolean");
        req.internal = body["Internal"].get<bool>();
    }
    BPFNET_ASSIGN_OR_RETURN(req.options, string_map_field(body, "Options"));
    BPFNET_ASSIGN_OR_RETURN(req.labels, string_map_field(body, "Labels"));
    if (body.contains("IPAM") && !body["IPAM"].is_null()) {
        const json& ipam = body["IPAM"];
        if (!ipam.is_object())
            return fail(ErrorKind::InvalidArgument, "field \"IPAM\" must be an object");
        BPFNET_ASSIGN_OR_RETURN(std::string ipam_driver, string_field(ipam, "Driver"));
        if (!ipam_driver.empty() && ipam_driver != "default") {
            return fail(ErrorKind::Unsupported,
                        fmt::format("IPAM driver \"{}\" is not supported (available: default)",
                                    ipam_driver));
        }
        if (ipam.contains("Config") && !ipam["Config"].is_null()) {
            if (!ipam["Config"].is_array())
                return fail(ErrorKind::InvalidArgument, "field \"IPAM.Config\" must be a list");
            if (ipam["Config"].size() > 1) {
                return fail(ErrorKind::Unsupported,
                            "only one IPv4 IPAM configuration per network is supported");
            }
            for (const auto& config : ipam["Config"]) {
                if (!config.is_object())
                    return fail(ErrorKind::InvalidArgument, "IPAM.Config entries must be objects");
                BPFNET_ASSIGN_OR_RETURN(std::string subnet, string_field(config, "Subnet"));
                BPFNET_ASSIGN_OR_RETURN(std::string gateway, string_field(config, "Gateway"));
                BPFNET_ASSIGN_OR_RETURN(std::string range, string_field(config, "IPRange"));
                BPFNET_ASSIGN_OR_RETURN(auto aux, string_map_field(config, "AuxiliaryAddresses"));
                if (subnet.empty() && (!gateway.empty() || !range.empty() || !aux.empty())) {
                    return fail(ErrorKind::InvalidArgument,
                                "--gateway, --ip-range and --aux-address need --subnet");
                }
                if (!subnet.empty()) {
                    BPFNET_ASSIGN_OR_RETURN(req.ipam.subnet, Cidr::parse(subnet));
                }
                if (!gateway.empty()) {
                    BPFNET_ASSIGN_OR_RETURN(req.ipam.gateway, Ipv4::parse(gateway));
                }
                if (!range.empty()) {
                    BPFNET_ASSIGN_OR_RETURN(req.ipam.ip_range, Cidr::parse(range));
                }
                for (const auto& [name, ip] : aux) {
                    BPFNET_ASSIGN_OR_RETURN(req.ipam.aux_addresses[name], Ipv4::parse(ip));
                }
            }
        }
    }
    return req;
}

Result<ConnectRequest> parse_connect(const std::string& network_ref, const json& body) {
    ConnectRequest req;
    req.network = network_ref;
    BPFNET_ASSIGN_OR_RETURN(req.sandbox, string_field(body, "Container"));
    if (req.sandbox.empty())
        return fail(ErrorKind::InvalidArgument, "field \"Container\" (the sandbox) is required");
    if (body.contains("EndpointConfig") && body["EndpointConfig"].is_object()) {
        const json& config = body["EndpointConfig"];
        if (config.contains("IPAMConfig") && config["IPAMConfig"].is_object()) {
            BPFNET_ASSIGN_OR_RETURN(std::string ip,
                                    string_field(config["IPAMConfig"], "IPv4Address"));
            if (!ip.empty()) {
                BPFNET_ASSIGN_OR_RETURN(req.ip, Ipv4::parse(ip));
            }
        }
        // bpfnet's own field: published ports in docker's -p syntax ("8080:80/tcp").
        if (config.contains("Publish") && !config["Publish"].is_null()) {
            if (!config["Publish"].is_array())
                return fail(ErrorKind::InvalidArgument, "field \"Publish\" must be a list");
            for (const auto& spec : config["Publish"]) {
                if (!spec.is_string())
                    return fail(ErrorKind::InvalidArgument, "published ports must be strings");
                BPFNET_ASSIGN_OR_RETURN(auto requests, parse_publish(spec.get<std::string>()));
                req.publish.insert(req.publish.end(), requests.begin(), requests.end());
            }
        }
        if (config.contains("Aliases") && !config["Aliases"].is_null()) {
            if (!config["Aliases"].is_array())
                return fail(ErrorKind::InvalidArgument, "field \"Aliases\" must be a list");
            for (const auto& alias : config["Aliases"]) {
                if (!alias.is_string())
                    return fail(ErrorKind::InvalidArgument, "aliases must be strings");
                req.aliases.push_back(alias.get<std::string>());
            }
        }
        // Docker's EndpointSettings.DriverOpts: {"key": "value"}.
        if (config.contains("DriverOpts") && !config["DriverOpts"].is_null()) {
            if (!config["DriverOpts"].is_object())
                return fail(ErrorKind::InvalidArgument, "field \"DriverOpts\" must be an object");
            for (const auto& [key, value] : config["DriverOpts"].items()) {
                if (!value.is_string())
                    return fail(ErrorKind::InvalidArgument, "driver options must be strings");
                req.driver_opts[key] = value.get<std::string>();
            }
        }
    }
    return req;
}

json sandbox_json(const Sandbox& sandbox, const NetworkService::Snapshot& snap) {
    json networks = json::object();
    for (const auto& e : snap.endpoints) {
        if (e.sandbox_id != sandbox.id) continue;
        std::string name = e.network_id.substr(0, 12);
        for (const auto& n : snap.networks)
            if (n.id == e.network_id) name = n.name;
        json ports = json::array();
        for (const auto& p : e.ports) ports.push_back(p.str());
        networks[name] = {{"NetworkID", e.network_id},
                          {"EndpointID", e.id},
                          {"Ports", ports},
                          {"Interface", e.ifname},
                          {"HostInterface", e.host_ifname},
                          {"IPAddress", e.ip.value == 0 ? "" : e.ip.str()},
                          {"MacAddress", e.mac.is_zero() ? "" : e.mac.str()},
                          {"Aliases", e.aliases},
                          {"DefaultRoute", e.default_route}};
    }
    return {{"Id", sandbox.id},
            {"Name", sandbox.name},
            {"NetnsPath", sandbox.netns_path},
            {"NetworkMode", to_string(sandbox.mode)},
            {"Created", sandbox.created},
            {"Networks", networks},
            {"State", to_string(sandbox.state)},
            {"Owner", to_string(sandbox.owner)}};
}

}  // namespace

int http_status_for(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidArgument:
            return 400;
        case ErrorKind::NotFound:
            return 404;
        case ErrorKind::Conflict:
        case ErrorKind::Exhausted:
            return 409;
        case ErrorKind::Unsupported:
            return 501;
        case ErrorKind::Internal:
            return 500;
    }
    return 500;
}

json NativeApi::inspect_network(const NetworkService& service, const Network& network,
                                const NetworkService::Snapshot& snap) {
    const bool builtin = is_builtin_only_driver(network.driver);  // host, none: no IPAM at all
    json containers = json::object();
    for (const auto& e : snap.endpoints) {
        if (e.network_id != network.id) continue;
        std::string name;
        for (const auto& s : snap.sandboxes)
            if (s.id == e.sandbox_id) name = s.name;
        // A Docker endpoint that is created but not joined has no sandbox yet; docker's own
        // inspect lists such endpoints as "ep-<endpoint id>".
        containers[e.sandbox_id.empty() ? "ep-" + e.id : e.sandbox_id] = {
            {"Name", name},
            {"EndpointID", e.id},
            {"MacAddress", builtin ? "" : e.mac.str()},
            {"IPv4Address", builtin ? "" : Cidr{e.ip, network.ipam.subnet.prefix_len}.str()},
            {"IPv6Address", ""},
        };
    }
    json config = {{"Subnet", network.ipam.subnet.str()}, {"Gateway", network.ipam.gateway.str()}};
    if (network.ipam.ip_range) config["IPRange"] = network.ipam.ip_range->str();
    if (!network.ipam.aux_addresses.empty()) {
        json aux = json::object();
        for (const auto& [k, v] : network.ipam.aux_addresses) aux[k] = v.str();
        config["AuxiliaryAddresses"] = aux;
    }
    auto choice = service.datapath_choice(network);
    return {
        {"Name", network.name},
        {"Id", network.id},
        {"Created", network.created},
        {"Scope", "local"},
        {"Driver", network.driver},
        {"EnableIPv6", false},
        {"IPAM",
         {{"Driver", network.ipam.driver},
          {"Options", json::object()},
          {"Config", builtin ? json::array() : json::array({config})}}},
        {"Internal", network.internal},
        {"Attachable", false},
        {"Ingress", false},
        {"ConfigFrom", {{"Network", ""}}},
        {"ConfigOnly", false},
        {"Containers", containers},
        {"Options", network.options},
        {"Labels", network.labels},
        {"Owner", to_string(network.owner)},
        {"BpfNet",
         {{"Datapath", choice.name},
          {"DatapathReason", choice.reason},
          {"Bridge", network.bridge_name},
          {"Parent", network.parent},
          {"Predefined", NetworkService::is_predefined(network)},
          {"State", to_string(network.state)}}},
    };
}

HttpResponse NativeApi::handle(const HttpRequest& request) {
    auto parts = split_path(request.target);
    if (parts.empty() || parts[0] != "v1") {
        return error_response(
            Error{ErrorKind::NotFound, fmt::format("no such API path {}", request.target)});
    }
    parts.erase(parts.begin());
    json body = json::object();
    if (!request.body.empty()) {
        body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded()) return bad_request("request body is not valid JSON");
        if (!body.is_object()) return bad_request("request body must be a JSON object");
    }
    const std::string& m = request.method;
    auto is = [&](const char* method, std::initializer_list<const char*> shape) {
        if (m != method || parts.size() != shape.size()) return false;
        size_t i = 0;
        for (const char* s : shape) {
            if (std::string_view(s) != "*" && parts[i] != s) return false;
            ++i;
        }
        return true;
    };

    if (is("GET", {"version"})) {
        return json_response(
            200,
            {{"Version", BPFNET_VERSION}, {"ApiVersion", "1"}, {"Instance", service_.instance()}});
    }
    if (is("GET", {"status"})) {
        auto snap = service_.snapshot();
        if (!snap) return error_response(snap.error());
        json networks = json::array();
        for (const auto& n : snap->networks) {
            auto choice = service_.datapath_choice(n);
            networks.push_back({{"Name", n.name},
                                {"Id", n.id},
                                {"Driver", n.driver},
                                {"Datapath", choice.name},
                                {"Reason", choice.reason},
                                {"Firewall", service_.firewall_summary(n)},
                                {"State", to_string(n.state)}});
        }
        // What the agent may do now (the effective set), so users can check the drop at start.
        auto caps = read_process_capabilities();
        if (!caps) return error_response(caps.error());
        const auto& cfg = service_.config();
        return json_response(200, {{"Version", BPFNET_VERSION},
                                   {"Instance", service_.instance()},
                                   {"Store", cfg.store_kind},
                                   {"StateDir", cfg.state_dir},
                                   {"RunDir", cfg.run_dir},
                                   {"BpffsRoot", cfg.bpffs_root},
                                   {"NetnsDir", cfg.netns_dir},
                                   {"Probe", json::parse(to_json(service_.probe()).dump())},
                                   {"Networks", networks},
                                   {"PublishedPorts", service_.published_ports_paths()},
                                   {"ForwardFirewall", service_.forward_firewall_state()},
                                   {"HostInterfaces", service_.host_interfaces_state()},
                                   {"Sandboxes", snap->sandboxes.size()},
                                   {"Endpoints", snap->endpoints.size()},
                                   {"Capabilities", capability_names(caps->effective)},
                                   {"NoNewPrivs", caps->no_new_privs}});
    }
    if (is("GET", {"networks"})) {
        auto snap = service_.snapshot();
        if (!snap) return error_response(snap.error());
        json out = json::array();
        for (const auto& n : snap->networks) out.push_back(inspect_network(service_, n, *snap));
        return json_response(200, out);
    }
    if (is("POST", {"networks", "create"})) {
        auto req = parse_create_network(body);
        if (!req) return error_response(req.error());
        auto network = service_.create_network(*req);
        if (!network) return error_response(network.error());
        return json_response(201, {{"Id", network->id}, {"Warning", ""}});
    }
    if (is("POST", {"networks", "prune"})) {
        auto removed = service_.prune_networks();
        if (!removed) return error_response(removed.error());
        return json_response(200, {{"NetworksDeleted", *removed}});
    }
    if (is("GET", {"networks", "*"})) {
        auto network = service_.find_network(parts[1]);
        if (!network) return error_response(network.error());
        auto snap = service_.snapshot();
        if (!snap) return error_response(snap.error());
        return json_response(200, inspect_network(service_, *network, *snap));
    }
    if (is("DELETE", {"networks", "*"})) {
        auto st = service_.remove_network(parts[1]);
        if (!st) return error_response(st.error());
        return HttpResponse{204, "application/json", ""};
    }
    if (is("POST", {"networks", "*", "connect"})) {
        auto req = parse_connect(parts[1], body);
        if (!req) return error_response(req.error());
        auto endpoint = service_.connect(*req);
        if (!endpoint) return error_response(endpoint.error());
        return json_response(200, {{"EndpointID", endpoint->id},
                                   {"IPAddress", endpoint->ip.str()},
                                   {"MacAddress", endpoint->mac.str()},
                                   {"Interface", endpoint->ifname}});
    }
    if (is("POST", {"networks", "*", "disconnect"})) {
        auto sandbox = string_field(body, "Container");
        if (!sandbox) return error_response(sandbox.error());
        if (sandbox->empty()) return bad_request("field \"Container\" (the sandbox) is required");
        bool force =
            body.contains("Force") && body["Force"].is_boolean() && body["Force"].get<bool>();
        auto st = service_.disconnect(parts[1], *sandbox, force);
        if (!st) return error_response(st.error());
        return json_response(200, json::object());
    }
    if (is("GET", {"sandboxes"})) {
        auto snap = service_.snapshot();
        if (!snap) return error_response(snap.error());
        json out = json::array();
        for (const auto& s : snap->sandboxes) out.push_back(sandbox_json(s, *snap));
        return json_response(200, out);
    }
    if (is("POST", {"sandboxes", "create"})) {
        auto name = string_field(body, "Name");
        if (!name) return error_response(name.error());
        // "NetworkMode": "host" or "none" (docker run --network's special values); absent: a
        // namespace of its own.
        auto mode_text = string_field(body, "NetworkMode");
        if (!mode_text) return error_response(mode_text.error());
        SandboxMode mode = SandboxMode::Own;
        if (*mode_text == "host") {
            mode = SandboxMode::Host;
        } else if (*mode_text == "none") {
            mode = SandboxMode::None;
        } else if (!mode_text->empty()) {
            return bad_request(fmt::format(
                "invalid NetworkMode \"{}\": expected \"host\" or \"none\"", *mode_text));
        }
        auto sandbox = service_.create_sandbox(*name, mode);
        if (!sandbox) return error_response(sandbox.error());
        return json_response(201, {{"Id", sandbox->id}, {"NetnsPath", sandbox->netns_path}});
    }
    if (is("GET", {"sandboxes", "*"})) {
        auto sandbox = service_.find_sandbox(parts[1]);
        if (!sandbox) return error_response(sandbox.error());
        auto snap = service_.snapshot();
        if (!snap) return error_response(snap.error());
        return json_response(200, sandbox_json(*sandbox, *snap));
    }
    if (is("DELETE", {"sandboxes", "*"})) {
        auto st = service_.remove_sandbox(parts[1]);
        if (!st) return error_response(st.error());
        return HttpResponse{204, "application/json", ""};
    }
    return error_response(
        Error{ErrorKind::NotFound, fmt::format("no such API endpoint: {} {}", m, request.target)});
}

}  // namespace bpfnet

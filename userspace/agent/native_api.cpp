#include "agent/native_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <bpfnet/version.h>

#include "agent/capabilities.h"
#include "core/json_fields.h"

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

Result<CreateNetworkRequest> parse_create_network(const JsonObject& body) {
    CreateNetworkRequest req;
    BPFNET_ASSIGN_OR_RETURN(req.name, body.string("Name"));
    BPFNET_ASSIGN_OR_RETURN(std::string driver, body.string("Driver"));
    if (!driver.empty()) req.driver = driver;
    BPFNET_ASSIGN_OR_RETURN(req.internal, body.boolean("Internal"));
    BPFNET_ASSIGN_OR_RETURN(req.options, body.string_map("Options"));
    BPFNET_ASSIGN_OR_RETURN(req.labels, body.string_map("Labels"));
    BPFNET_ASSIGN_OR_RETURN(JsonObject ipam, body.object("IPAM"));
    BPFNET_ASSIGN_OR_RETURN(std::string ipam_driver, ipam.string("Driver"));
    if (!ipam_driver.empty() && ipam_driver != "default") {
        return fail(
            ErrorKind::Unsupported,
            fmt::format("IPAM driver \"{}\" is not supported (available: default)", ipam_driver));
    }
    BPFNET_ASSIGN_OR_RETURN(JsonArray configs, ipam.array("Config"));
    if (configs.size() > 1) {
        return fail(ErrorKind::Unsupported,
                    "only one IPv4 IPAM configuration per network is supported");
    }
    for (size_t i = 0; i < configs.size(); ++i) {
        BPFNET_ASSIGN_OR_RETURN(JsonObject config, configs.object(i));
        BPFNET_ASSIGN_OR_RETURN(std::string subnet, config.string("Subnet"));
        BPFNET_ASSIGN_OR_RETURN(std::string gateway, config.string("Gateway"));
        BPFNET_ASSIGN_OR_RETURN(std::string range, config.string("IPRange"));
        BPFNET_ASSIGN_OR_RETURN(auto aux, config.string_map("AuxiliaryAddresses"));
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
    return req;
}

Result<ConnectRequest> parse_connect(const std::string& network_ref, const JsonObject& body) {
    ConnectRequest req;
    req.network = network_ref;
    BPFNET_ASSIGN_OR_RETURN(req.sandbox, body.string("Container"));
    if (req.sandbox.empty())
        return fail(ErrorKind::InvalidArgument, "field \"Container\" (the sandbox) is required");
    // An EndpointConfig or IPAMConfig that is not an object has always been ignored rather than
    // refused; a client that sends one still connects (without those settings).
    auto config = body.object("EndpointConfig");
    if (!config) return req;
    if (auto ipam = config->object("IPAMConfig"); ipam) {
        BPFNET_ASSIGN_OR_RETURN(std::string ip, ipam->string("IPv4Address"));
        if (!ip.empty()) {
            BPFNET_ASSIGN_OR_RETURN(req.ip, Ipv4::parse(ip));
        }
    }
    // bpfnet's own field: published ports in docker's -p syntax ("8080:80/tcp").
    BPFNET_ASSIGN_OR_RETURN(JsonArray publish, config->array("Publish"));
    for (size_t i = 0; i < publish.size(); ++i) {
        BPFNET_ASSIGN_OR_RETURN(std::string spec, publish.string(i));
        BPFNET_ASSIGN_OR_RETURN(auto requests, parse_publish(spec));
        req.publish.insert(req.publish.end(), requests.begin(), requests.end());
    }
    BPFNET_ASSIGN_OR_RETURN(req.aliases, config->string_array("Aliases"));
    // Docker's EndpointSettings.DriverOpts: {"key": "value"}.
    BPFNET_ASSIGN_OR_RETURN(req.driver_opts, config->string_map("DriverOpts"));
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
    const bool builtin = !service.driver_of(network).has_ipam();  // host, none: no IPAM at all
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
          {"DatapathID", network.datapath_id},  // its key in the BPF maps (bpfnet map dump)
          {"Parent", network.parent},
          {"Predefined", service.is_predefined(network)},
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
    // Requests are decoded from nlohmann::json (answers are ordered_json, for docker's order).
    nlohmann::json document = nlohmann::json::object();
    if (!request.body.empty()) {
        auto parsed = parse_json(request.body);
        if (!parsed) return bad_request("request body is not valid JSON");
        document = std::move(*parsed);
    }
    auto root = JsonObject::root(document, "request body");
    if (!root) return error_response(root.error());
    const JsonObject& body = *root;
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
                                {"Egress", service_.egress_summary(n)},
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
                                   {"Probe", json(to_json(service_.probe()))},
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
        auto sandbox = body.string("Container");
        if (!sandbox) return error_response(sandbox.error());
        if (sandbox->empty()) return bad_request("field \"Container\" (the sandbox) is required");
        // A Force that is not a boolean has always meant "not forced" rather than a bad request.
        auto force = body.boolean("Force");
        auto st = service_.disconnect(parts[1], *sandbox, force.ok() && *force);
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
        auto name = body.string("Name");
        if (!name) return error_response(name.error());
        // "NetworkMode": "host" or "none" (docker run --network's special values); absent: a
        // namespace of its own.
        auto mode_text = body.string("NetworkMode");
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

#include "agent/docker_plugin.h"

#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/json_fields.h"
#include "core/options.h"
#include "core/ports.h"

namespace bpfnet {

namespace {

using nlohmann::json;

constexpr Presence kRequired = Presence::Required;

// Docker sends booleans; a string "true" from another client is accepted too.
Result<bool> flag(const JsonObject& object, std::string_view key) {
    auto value = object.boolean(key);
    if (value) return value;
    if (auto text = object.string(key); text) {
        if (auto parsed = parse_bool(key, *text); parsed) return *parsed;
    }
    return value;  // the error naming the field and the type Docker sends
}

HttpResponse reply(int status, const json& body) {
    return HttpResponse{status, kPluginContentType, body.dump()};
}
HttpResponse ok(const json& body = json::object()) {
    return reply(200, body);
}
// Non-200 answers carry {"Err": ...}, which Docker's plugin client reads for any interface.
HttpResponse refuse(int status, const std::string& message) {
    return reply(status, json{{"Err", message}});
}

// "10.1.2.3/24" (Docker's address form) or a bare "10.1.2.3".
Result<Ipv4> address_of(const std::string& text) {
    BPFNET_ASSIGN_OR_RETURN(Cidr cidr, Cidr::parse(text, /*allow_bare_address=*/true));
    return cidr.addr;
}

// Docker's generic options are strings from `-o k=v`; other JSON values are kept as their text.
std::map<std::string, std::string> string_options(const JsonObject& generic) {
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : generic.raw().items())
        out[key] = value.is_string() ? value.get<std::string>() : value.dump();
    return out;
}

Result<uint16_t> port_number(int64_t value, const char* what) {
    if (value < 0 || value > 65535)
        return fail(ErrorKind::InvalidArgument, fmt::format("{} {} is not a port", what, value));
    return static_cast<uint16_t>(value);
}

// One of Docker's types.PortBinding: {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,
// "HostPortEnd":8080}, as its JSON has it.
struct DockerPortBinding {
    int64_t proto = 0;
    std::string host_ip;
    int64_t port = 0;
    int64_t host_port = 0;
    int64_t host_port_end = 0;
};

// Fails on a binding of the wrong shape (the request is malformed).
Result<DockerPortBinding> decode_port_binding(const JsonObject& binding) {
    DockerPortBinding b;
    BPFNET_ASSIGN_OR_RETURN(b.proto, binding.integer("Proto"));
    BPFNET_ASSIGN_OR_RETURN(b.host_ip, binding.string("HostIP"));
    BPFNET_ASSIGN_OR_RETURN(b.port, binding.integer("Port"));
    BPFNET_ASSIGN_OR_RETURN(b.host_port, binding.integer("HostPort"));
    BPFNET_ASSIGN_OR_RETURN(b.host_port_end, binding.integer("HostPortEnd"));
    return b;
}

// Fails on a binding bpfnet cannot publish. HostPort 0 asks for an ephemeral port;
// HostPort..HostPortEnd is a range to pick one from.
Result<PortRequest> port_request(const DockerPortBinding& binding) {
    PortRequest request;
    BPFNET_ASSIGN_OR_RETURN(request.proto, proto_from_number(binding.proto));
    if (!binding.host_ip.empty()) {
        auto parsed = Ipv4::parse(binding.host_ip);
        if (!parsed) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("host IP \"{}\": bpfnet publishes ports on IPv4 addresses "
                                    "only ({})",
                                    binding.host_ip, parsed.error().message));
        }
        request.host_ip = *parsed;
        request.host_ip_given = true;
    }
    BPFNET_ASSIGN_OR_RETURN(request.container_port, port_number(binding.port, "port"));
    if (request.container_port == 0)
        return fail(ErrorKind::InvalidArgument, "a published container port cannot be 0");
    BPFNET_ASSIGN_OR_RETURN(request.host_first, port_number(binding.host_port, "host port"));
    BPFNET_ASSIGN_OR_RETURN(request.host_last, port_number(binding.host_port_end, "host port"));
    if (request.host_last < request.host_first) request.host_last = request.host_first;
    if (request.host_first == 0) request.host_last = 0;
    return request;
}

json docker_port_bindings(const Endpoint& endpoint) {
    json out = json::array();
    for (const auto& p : endpoint.ports) {
        out.push_back({{"Proto", static_cast<int>(p.proto)},
                       {"IP", endpoint.ip.str()},
                       {"Port", p.container_port},
                       {"HostIP", p.host_ip.str()},
                       {"HostPort", p.host_port},
                       {"HostPortEnd", p.host_port}});
    }
    return out;
}

Status require_network_id(const std::string& id) {
    if (is_valid_id(id)) return {};
    return fail(ErrorKind::InvalidArgument,
                fmt::format("invalid network ID \"{}\": expected 64 hex digits", id));
}

// One call of the protocol. Each handler returns the answer (a failure Docker shows the user is an
// answer too), or fails when the body does not have the shape the protocol defines, which
// handle() answers with 400.
class Call {
  public:
    // A failed call is answered 200 with the message under "Err" for NetworkDriver calls but
    // "Error" for IpamDriver calls: that is what each of Docker's remote clients decodes.
    Call(NetworkService& service, const std::function<void(const std::string&)>& created,
         const JsonObject& body, const std::string& method, const char* error_key)
        : service_(service),
          on_created_(created),
          body_(body),
          method_(method),
          error_key_(error_key) {}

    // ---- NetworkDriver -------------------------------------------------------------------
    Result<HttpResponse> create_network() {
        BPFNET_ASSIGN_OR_RETURN(std::string id, body_.string("NetworkID", kRequired));
        if (auto st = require_network_id(id); !st) return err(st.error());
        BPFNET_ASSIGN_OR_RETURN(JsonObject options, body_.object("Options"));
        BPFNET_ASSIGN_OR_RETURN(bool ipv6, flag(options, "com.docker.network.enable_ipv6"));
        if (ipv6) {
            return err("bpfnet does not support IPv6 yet: create the network without --ipv6");
        }
        BPFNET_ASSIGN_OR_RETURN(JsonArray v6, body_.array("IPv6Data"));
        if (!v6.empty()) return err("bpfnet does not support IPv6 yet: remove the IPv6 --subnet");
        BPFNET_ASSIGN_OR_RETURN(JsonArray v4, body_.array("IPv4Data"));
        if (v4.size() != 1) {
            return err(fmt::format(
                "a bpfnet network has exactly one IPv4 subnet, Docker asked for {} (give "
                "--subnet once)",
                v4.size()));
        }
        BPFNET_ASSIGN_OR_RETURN(JsonObject data, v4.object(0));

        CreateNetworkRequest request;
        request.id = id;
        request.owner = Owner::Docker;
        request.name = placeholder_network_name(id);
        BPFNET_ASSIGN_OR_RETURN(request.internal, flag(options, "com.docker.network.internal"));
        BPFNET_ASSIGN_OR_RETURN(JsonObject generic, options.object("com.docker.network.generic"));
        request.options = string_options(generic);
        if (auto d = request.options.find(opt::kDriver); d != request.options.end()) {
            // Docker's own macvlan/ipvlan drivers serve those; bpfnet adds bridge and overlay.
            if (!service_.offers_to_docker(d->second))
                return err(fmt::format(
                    "invalid value \"{}\" for option {}: through Docker, bpfnet networks are "
                    "\"bridge\" (the default) or \"overlay\"",
                    d->second, opt::kDriver));
            request.driver = d->second;
        }
        BPFNET_ASSIGN_OR_RETURN(std::string pool_text, data.string("Pool", kRequired));
        auto pool = Cidr::parse(pool_text);
        if (!pool) return err(pool.error());
        request.ipam.subnet = *pool;
        BPFNET_ASSIGN_OR_RETURN(std::string gateway, data.string("Gateway"));
        if (!gateway.empty()) {
            auto parsed = address_of(gateway);
            if (!parsed) return err(parsed.error());
            request.ipam.gateway = *parsed;
        }
        BPFNET_ASSIGN_OR_RETURN(auto aux, data.string_map("AuxAddresses"));
        for (const auto& [name, value] : aux) {
            auto parsed = address_of(value);
            if (!parsed) return err(parsed.error());
            request.ipam.aux_addresses[name] = *parsed;
        }
        BPFNET_ASSIGN_OR_RETURN(std::string address_space, data.string("AddressSpace"));
        if (address_space == kLocalAddressSpace) {
            // The subnet came from bpfnet's own IPAM: the network may sit on that pool.
            auto pools = service_.find_pool_id(pool->masked());
            if (!pools) return err(pools.error());
            request.pool_id = *pools;
        }
        auto created = service_.create_network(request);
        if (!created) return err(created.error());
        if (on_created_) on_created_(id);
        return ok();
    }

    Result<HttpResponse> delete_network() {
        BPFNET_ASSIGN_OR_RETURN(std::string id, body_.string("NetworkID", kRequired));
        if (auto st = service_.remove_docker_network(id); !st) return err(st.error());
        return ok();
    }

    Result<HttpResponse> create_endpoint() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(JsonObject iface, body_.object("Interface"));
        BPFNET_ASSIGN_OR_RETURN(std::string address_v6, iface.string("AddressIPv6"));
        if (!address_v6.empty()) {
            return err("bpfnet does not support IPv6 yet: the container got an IPv6 address");
        }
        std::optional<Ipv4> ip;
        BPFNET_ASSIGN_OR_RETURN(std::string address, iface.string("Address"));
        if (!address.empty()) {
            auto parsed = address_of(address);
            if (!parsed) return err(parsed.error());
            ip = *parsed;
        }
        std::optional<MacAddr> mac;
        BPFNET_ASSIGN_OR_RETURN(std::string mac_text, iface.string("MacAddress"));
        if (!mac_text.empty()) {
            auto parsed = MacAddr::parse(mac_text);
            if (!parsed) return err(parsed.error());
            mac = *parsed;
        }
        auto endpoint = service_.create_docker_endpoint(network_id, endpoint_id, ip, mac);
        if (!endpoint) return err(endpoint.error());
        // Docker refuses a reply that changes what it set itself: only fill in what it left out.
        json reply_iface = json::object();
        if (!ip) {
            auto network = service_.find_network(network_id);
            if (!network) return err(network.error());
            reply_iface["Address"] = Cidr{endpoint->ip, network->ipam.subnet.prefix_len}.str();
        }
        if (!mac) reply_iface["MacAddress"] = endpoint->mac.str();
        return ok(json{{"Interface", reply_iface}});
    }

    Result<HttpResponse> endpoint_oper_info() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        auto endpoint = service_.find_endpoint(network_id, endpoint_id);
        if (!endpoint) return err(endpoint.error());
        auto network = service_.find_network(endpoint->network_id);
        if (!network) return err(network.error());
        return ok(json{{"Value",
                        {{"bpfnet.ip", endpoint->ip.str()},
                         {"bpfnet.mac", endpoint->mac.str()},
                         {"bpfnet.host_interface", endpoint->host_ifname},
                         {"bpfnet.datapath", service_.datapath_choice(*network).name},
                         {"bpfnet.joined", !endpoint->sandbox_id.empty()},
                         {"com.docker.network.portmap", docker_port_bindings(*endpoint)}}}});
    }

    Result<HttpResponse> delete_endpoint() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        if (auto st = service_.delete_docker_endpoint(network_id, endpoint_id); !st)
            return err(st.error());
        return ok();
    }

    Result<HttpResponse> join() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string sandbox_key, body_.string("SandboxKey", kRequired));
        auto joined = service_.join_docker_endpoint(network_id, endpoint_id, sandbox_key);
        if (!joined) return err(joined.error());
        const Network& network = joined->network;
        auto options = parse_bridge_options(network.options);
        const std::string prefix = options ? options->container_iface_prefix : "eth";
        // No gateway on an internal network: the container gets no default route through it.
        return ok(json{
            {"InterfaceName", {{"SrcName", joined->endpoint.ifname}, {"DstPrefix", prefix}}},
            // An overlay has no gateway on the host either: Docker then gives the container a
            // second interface on docker_gwbridge for the way out, as with its own overlays.
            {"Gateway", service_.driver_of(network).routes_outside(network)
                            ? network.ipam.gateway.str()
                            : std::string()},
            {"GatewayIPv6", ""},
            {"StaticRoutes", json::array()},
            {"DisableGatewayService", false},
        });
    }

    Result<HttpResponse> leave() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        if (auto st = service_.leave_docker_endpoint(network_id, endpoint_id); !st)
            return err(st.error());
        return ok();
    }

    Result<HttpResponse> program_external_connectivity() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(JsonObject options, body_.object("Options"));
        BPFNET_ASSIGN_OR_RETURN(JsonArray bindings, options.array("com.docker.network.portmap"));
        std::vector<PortRequest> requests;
        for (size_t i = 0; i < bindings.size(); ++i) {
            BPFNET_ASSIGN_OR_RETURN(JsonObject object, bindings.object(i));
            BPFNET_ASSIGN_OR_RETURN(DockerPortBinding binding, decode_port_binding(object));
            auto request = port_request(binding);
            if (!request) return err(request.error());
            requests.push_back(*request);
        }
        auto endpoint = service_.publish_docker_ports(network_id, endpoint_id, requests);
        if (!endpoint) return err(endpoint.error());
        return ok();
    }

    Result<HttpResponse> revoke_external_connectivity() {
        BPFNET_ASSIGN_OR_RETURN(std::string network_id, body_.string("NetworkID", kRequired));
        BPFNET_ASSIGN_OR_RETURN(std::string endpoint_id, body_.string("EndpointID", kRequired));
        if (auto st = service_.unpublish_docker_ports(network_id, endpoint_id); !st)
            return err(st.error());
        return ok();
    }

    // ---- IpamDriver -----------------------------------------------------------------------
    Result<HttpResponse> request_pool() {
        BPFNET_ASSIGN_OR_RETURN(bool v6, flag(body_, "V6"));
        if (v6) return err("bpfnet IPAM does not support IPv6 pools yet");
        std::optional<Cidr> subnet;
        std::optional<Cidr> range;
        BPFNET_ASSIGN_OR_RETURN(std::string pool_text, body_.string("Pool"));
        if (!pool_text.empty()) {
            auto parsed = Cidr::parse(pool_text);
            if (!parsed) return err(parsed.error());
            subnet = *parsed;
        }
        BPFNET_ASSIGN_OR_RETURN(std::string range_text, body_.string("SubPool"));
        if (!range_text.empty()) {
            auto parsed = Cidr::parse(range_text);
            if (!parsed) return err(parsed.error());
            range = *parsed;
        }
        auto pool = service_.request_pool(subnet, range);
        if (!pool) return err(pool.error());
        return ok(
            json{{"PoolID", pool->id}, {"Pool", pool->subnet.str()}, {"Data", json::object()}});
    }

    Result<HttpResponse> release_pool() {
        BPFNET_ASSIGN_OR_RETURN(std::string pool_id, body_.string("PoolID", kRequired));
        if (auto st = service_.release_pool(pool_id); !st) return err(st.error());
        return ok();
    }

    Result<HttpResponse> request_address() {
        std::optional<Ipv4> wanted;
        BPFNET_ASSIGN_OR_RETURN(std::string address, body_.string("Address"));
        if (!address.empty()) {
            auto parsed = address_of(address);
            if (!parsed) return err(parsed.error());
            wanted = *parsed;
        }
        BPFNET_ASSIGN_OR_RETURN(std::string pool_id, body_.string("PoolID", kRequired));
        auto allocated = service_.request_address(pool_id, wanted);
        if (!allocated) return err(allocated.error());
        const auto& [pool, ip] = *allocated;
        return ok(
            json{{"Address", Cidr{ip, pool.subnet.prefix_len}.str()}, {"Data", json::object()}});
    }

    Result<HttpResponse> release_address() {
        BPFNET_ASSIGN_OR_RETURN(std::string address, body_.string("Address", kRequired));
        auto ip = address_of(address);
        if (!ip) return err(ip.error());
        BPFNET_ASSIGN_OR_RETURN(std::string pool_id, body_.string("PoolID", kRequired));
        if (auto st = service_.release_address(pool_id, *ip); !st) return err(st.error());
        return ok();
    }

  private:
    HttpResponse err(const std::string& message) const {
        spdlog::warn("plugin: {} failed: {}", method_, message);
        return reply(200, json{{error_key_, message}});
    }
    HttpResponse err(const Error& error) const { return err(error.message); }

    NetworkService& service_;
    const std::function<void(const std::string&)>& on_created_;
    const JsonObject& body_;
    const std::string& method_;
    const char* error_key_;
};

}  // namespace

std::string placeholder_network_name(const std::string& network_id) {
    return "docker-" + network_id.substr(0, 12);
}

HttpResponse DockerPluginApi::handle(const HttpRequest& request) {
    std::string method = request.target.substr(0, request.target.find('?'));
    if (!method.empty() && method[0] == '/') method.erase(0, 1);
    if (request.method != "POST") {
        return refuse(405, fmt::format("{} must be called with POST", method));
    }

    using Handler = Result<HttpResponse> (Call::*)();
    static const std::map<std::string, Handler> handlers = {
        {"NetworkDriver.CreateNetwork", &Call::create_network},
        {"NetworkDriver.DeleteNetwork", &Call::delete_network},
        {"NetworkDriver.CreateEndpoint", &Call::create_endpoint},
        {"NetworkDriver.EndpointOperInfo", &Call::endpoint_oper_info},
        {"NetworkDriver.DeleteEndpoint", &Call::delete_endpoint},
        {"NetworkDriver.Join", &Call::join},
        {"NetworkDriver.Leave", &Call::leave},
        {"NetworkDriver.ProgramExternalConnectivity", &Call::program_external_connectivity},
        {"NetworkDriver.RevokeExternalConnectivity", &Call::revoke_external_connectivity},
        {"IpamDriver.RequestPool", &Call::request_pool},
        {"IpamDriver.ReleasePool", &Call::release_pool},
        {"IpamDriver.RequestAddress", &Call::request_address},
        {"IpamDriver.ReleaseAddress", &Call::release_address},
    };
    // Calls whose answer does not depend on the request.
    static const std::map<std::string, json> constant_replies = {
        {"Plugin.Activate", json{{"Implements", {"NetworkDriver", "IpamDriver"}}}},
        {"NetworkDriver.GetCapabilities", json{{"Scope", "local"}, {"ConnectivityScope", "local"}}},
        {"NetworkDriver.DiscoverNew", json::object()},
        {"NetworkDriver.DiscoverDelete", json::object()},
        {"IpamDriver.GetCapabilities", json{{"RequiresMACAddress", false}}},
        {"IpamDriver.GetDefaultAddressSpaces",
         json{{"LocalDefaultAddressSpace", kLocalAddressSpace},
              {"GlobalDefaultAddressSpace", kGlobalAddressSpace}}},
    };

    auto handler = handlers.find(method);
    auto constant = constant_replies.find(method);
    if (handler == handlers.end() && constant == constant_replies.end()) {
        return refuse(404, fmt::format("bpfnet does not implement {}", method));
    }
    const auto not_an_object = [&] {
        return refuse(400, fmt::format("{}: the request body is not a JSON object", method));
    };
    json document = json::object();  // what a blank body stands for
    if (request.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto parsed = parse_json(request.body);
        if (!parsed) return not_an_object();
        document = std::move(*parsed);
    }
    auto body = JsonObject::root(document);
    if (!body) return not_an_object();
    spdlog::debug("plugin: {} {}", method, request.body);
    if (constant != constant_replies.end()) return ok(constant->second);
    const char* error_key = method.rfind("IpamDriver.", 0) == 0 ? "Error" : "Err";
    Call call(service_, on_network_created_, *body, method, error_key);
    auto response = (call.*(handler->second))();
    if (!response) {
        return refuse(400,
                      fmt::format("{}: malformed request: {}", method, response.error().message));
    }
    return std::move(*response);
}

}  // namespace bpfnet

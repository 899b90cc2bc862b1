#include "agent/docker_plugin.h"

#include <map>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/options.h"
#include "core/ports.h"

namespace bpfnet {

namespace {

using nlohmann::json;

// A request body that does not have the shape the protocol defines: answered with 400.
struct MalformedRequest : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Typed access to the request's fields; a wrong type is a MalformedRequest naming the field.
class Fields {
  public:
    explicit Fields(const json& object) : object_(object) {}

    std::string string(const char* key, bool required = false) const {
        if (!object_.contains(key) || object_[key].is_null()) {
            if (required) throw MalformedRequest(fmt::format("missing field \"{}\"", key));
            return {};
        }
        if (!object_[key].is_string())
            throw MalformedRequest(fmt::format("field \"{}\" must be a string", key));
        return object_[key].get<std::string>();
    }
    bool boolean(const char* key) const {
        if (!object_.contains(key) || object_[key].is_null()) return false;
        if (object_[key].is_boolean()) return object_[key].get<bool>();
        // Docker sends booleans; a string "true" from another client is accepted too.
        if (object_[key].is_string()) {
            auto parsed = parse_bool(key, object_[key].get<std::string>());
            if (parsed) return *parsed;
        }
        throw MalformedRequest(fmt::format("field \"{}\" must be a boolean", key));
    }
    Fields object(const char* key) const {
        if (!object_.contains(key) || object_[key].is_null()) return Fields(empty_object());
        if (!object_[key].is_object())
            throw MalformedRequest(fmt::format("field \"{}\" must be an object", key));
        return Fields(object_[key]);
    }
    const json& array(const char* key) const {
        if (!object_.contains(key) || object_[key].is_null()) return empty_array();
        if (!object_[key].is_array())
            throw MalformedRequest(fmt::format("field \"{}\" must be an array", key));
        return object_[key];
    }
    int integer(const char* key) const {
        if (!object_.contains(key) || object_[key].is_null()) return 0;
        if (!object_[key].is_number_integer())
            throw MalformedRequest(fmt::format("field \"{}\" must be an integer", key));
        return object_[key].get<int>();
    }
    const json& raw() const { return object_; }

  private:
    static const json& empty_object() {
        static const json empty = json::object();
        return empty;
    }
    static const json& empty_array() {
        static const json empty = json::array();
        return empty;
    }
    const json& object_;
};

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
std::map<std::string, std::string> string_options(const Fields& generic) {
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : generic.raw().items())
        out[key] = value.is_string() ? value.get<std::string>() : value.dump();
    return out;
}

Result<uint16_t> port_number(int value, const char* what) {
    if (value < 0 || value > 65535)
        return fail(ErrorKind::InvalidArgument, fmt::format("{} {} is not a port", what, value));
    return static_cast<uint16_t>(value);
}

// One of Docker's types.PortBinding: {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,
// "HostPortEnd":8080}. HostPort 0 asks for an ephemeral port; HostPort..HostPortEnd is a range to
// pick one from.
Result<PortRequest> port_request(const Fields& binding) {
    PortRequest request;
    BPFNET_ASSIGN_OR_RETURN(request.proto, proto_from_number(binding.integer("Proto")));
    if (auto host_ip = binding.string("HostIP"); !host_ip.empty()) {
        auto parsed = Ipv4::parse(host_ip);
        if (!parsed) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("host IP \"{}\": bpfnet publishes ports on IPv4 addresses "
                                    "only ({})",
                                    host_ip, parsed.error().message));
        }
        request.host_ip = *parsed;
        request.host_ip_given = true;
    }
    BPFNET_ASSIGN_OR_RETURN(request.container_port, port_number(binding.integer("Port"), "port"));
    if (request.container_port == 0)
        return fail(ErrorKind::InvalidArgument, "a published container port cannot be 0");
    BPFNET_ASSIGN_OR_RETURN(request.host_first,
                            port_number(binding.integer("HostPort"), "host port"));
    BPFNET_ASSIGN_OR_RETURN(request.host_last,
                            port_number(binding.integer("HostPortEnd"), "host port"));
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

class Call {
  public:
    // A failed call is answered 200 with the message under "Err" for NetworkDriver calls but
    // "Error" for IpamDriver calls: that is what each of Docker's remote clients decodes.
    Call(NetworkService& service, const std::function<void(const std::string&)>& created,
         const Fields& body, const char* error_key)
        : service_(service), on_created_(created), body_(body), error_key_(error_key) {}

    // ---- NetworkDriver -------------------------------------------------------------------
    HttpResponse create_network() {
        std::string id = body_.string("NetworkID", true);
        if (auto st = require_network_id(id); !st) return err(st.error());
        Fields options = body_.object("Options");
        if (options.boolean("com.docker.network.enable_ipv6")) {
            return err("bpfnet does not support IPv6 yet: create the network without --ipv6");
        }
        if (!body_.array("IPv6Data").empty()) {
            return err("bpfnet does not support IPv6 yet: remove the IPv6 --subnet");
        }
        const json& v4 = body_.array("IPv4Data");
        if (v4.size() != 1) {
            return err(fmt::format(
                "a bpfnet network has exactly one IPv4 subnet, Docker asked for {} (give "
                "--subnet once)",
                v4.size()));
        }
        if (!v4[0].is_object()) throw MalformedRequest("IPv4Data entries must be objects");
        Fields data(v4[0]);

        CreateNetworkRequest request;
        request.id = id;
        request.owner = Owner::Docker;
        request.name = placeholder_network_name(id);
        request.internal = options.boolean("com.docker.network.internal");
        request.options = string_options(options.object("com.docker.network.generic"));
        if (auto d = request.options.find(opt::kDriver); d != request.options.end()) {
            // Docker's own macvlan/ipvlan drivers serve those; bpfnet adds bridge and overlay.
            if (d->second != driver::kBridge && d->second != driver::kOverlay)
                return err(fmt::format(
                    "invalid value \"{}\" for option {}: through Docker, bpfnet networks are "
                    "\"bridge\" (the default) or \"overlay\"",
                    d->second, opt::kDriver));
            request.driver = d->second;
        }
        auto pool = Cidr::parse(data.string("Pool", true));
        if (!pool) return err(pool.error());
        request.ipam.subnet = *pool;
        if (auto gateway = data.string("Gateway"); !gateway.empty()) {
            auto parsed = address_of(gateway);
            if (!parsed) return err(parsed.error());
            request.ipam.gateway = *parsed;
        }
        for (const auto& [name, value] : data.object("AuxAddresses").raw().items()) {
            if (!value.is_string()) throw MalformedRequest("AuxAddresses values must be strings");
            auto parsed = address_of(value.get<std::string>());
            if (!parsed) return err(parsed.error());
            request.ipam.aux_addresses[name] = *parsed;
        }
        if (data.string("AddressSpace") == kLocalAddressSpace) {
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

    HttpResponse delete_network() {
        std::string id = body_.string("NetworkID", true);
        if (auto st = service_.remove_docker_network(id); !st) return err(st.error());
        return ok();
    }

    HttpResponse create_endpoint() {
        std::string network_id = body_.string("NetworkID", true);
        std::string endpoint_id = body_.string("EndpointID", true);
        Fields iface = body_.object("Interface");
        if (!iface.string("AddressIPv6").empty()) {
            return err("bpfnet does not support IPv6 yet: the container got an IPv6 address");
        }
        std::optional<Ipv4> ip;
        std::string address = iface.string("Address");
        if (!address.empty()) {
            auto parsed = address_of(address);
            if (!parsed) return err(parsed.error());
            ip = *parsed;
        }
        std::optional<MacAddr> mac;
        std::string mac_text = iface.string("MacAddress");
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

    HttpResponse endpoint_oper_info() {
        auto endpoint = service_.find_endpoint(body_.string("NetworkID", true),
                                               body_.string("EndpointID", true));
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

    HttpResponse delete_endpoint() {
        if (auto st = service_.delete_docker_endpoint(body_.string("NetworkID", true),
                                                      body_.string("EndpointID", true));
            !st) {
            return err(st.error());
        }
        return ok();
    }

    HttpResponse join() {
        auto joined = service_.join_docker_endpoint(body_.string("NetworkID", true),
                                                    body_.string("EndpointID", true),
                                                    body_.string("SandboxKey", true));
        if (!joined) return err(joined.error());
        const Network& network = joined->network;
        auto options = parse_bridge_options(network.options);
        const std::string prefix = options ? options->container_iface_prefix : "eth";
        // No gateway on an internal network: the container gets no default route through it.
        return ok(json{
            {"InterfaceName", {{"SrcName", joined->endpoint.ifname}, {"DstPrefix", prefix}}},
            // An overlay has no gateway on the host either: Docker then gives the container a
            // second interface on docker_gwbridge for the way out, as with its own overlays.
            {"Gateway", network.internal || network.driver == driver::kOverlay
                            ? std::string()
                            : network.ipam.gateway.str()},
            {"GatewayIPv6", ""},
            {"StaticRoutes", json::array()},
            {"DisableGatewayService", false},
        });
    }

    HttpResponse leave() {
        if (auto st = service_.leave_docker_endpoint(body_.string("NetworkID", true),
                                                     body_.string("EndpointID", true));
            !st) {
            return err(st.error());
        }
        return ok();
    }

    HttpResponse program_external_connectivity() {
        std::string network_id = body_.string("NetworkID", true);
        std::string endpoint_id = body_.string("EndpointID", true);
        std::vector<PortRequest> requests;
        for (const auto& binding : body_.object("Options").array("com.docker.network.portmap")) {
            if (!binding.is_object()) throw MalformedRequest("port bindings must be objects");
            auto request = port_request(Fields(binding));
            if (!request) return err(request.error());
            requests.push_back(*request);
        }
        auto endpoint = service_.publish_docker_ports(network_id, endpoint_id, requests);
        if (!endpoint) return err(endpoint.error());
        return ok();
    }

    HttpResponse revoke_external_connectivity() {
        if (auto st = service_.unpublish_docker_ports(body_.string("NetworkID", true),
                                                      body_.string("EndpointID", true));
            !st) {
            return err(st.error());
        }
        return ok();
    }

    // ---- IpamDriver -----------------------------------------------------------------------
    HttpResponse request_pool() {
        if (body_.boolean("V6")) return err("bpfnet IPAM does not support IPv6 pools yet");
        std::optional<Cidr> subnet;
        std::optional<Cidr> range;
        if (auto text = body_.string("Pool"); !text.empty()) {
            auto parsed = Cidr::parse(text);
            if (!parsed) return err(parsed.error());
            subnet = *parsed;
        }
        if (auto text = body_.string("SubPool"); !text.empty()) {
            auto parsed = Cidr::parse(text);
            if (!parsed) return err(parsed.error());
            range = *parsed;
        }
        auto pool = service_.request_pool(subnet, range);
        if (!pool) return err(pool.error());
        return ok(
            json{{"PoolID", pool->id}, {"Pool", pool->subnet.str()}, {"Data", json::object()}});
    }

    HttpResponse release_pool() {
        if (auto st = service_.release_pool(body_.string("PoolID", true)); !st)
            return err(st.error());
        return ok();
    }

    HttpResponse request_address() {
        std::optional<Ipv4> wanted;
        if (auto text = body_.string("Address"); !text.empty()) {
            auto parsed = address_of(text);
            if (!parsed) return err(parsed.error());
            wanted = *parsed;
        }
        auto allocated = service_.request_address(body_.string("PoolID", true), wanted);
        if (!allocated) return err(allocated.error());
        const auto& [pool, ip] = *allocated;
        return ok(
            json{{"Address", Cidr{ip, pool.subnet.prefix_len}.str()}, {"Data", json::object()}});
    }

    HttpResponse release_address() {
        auto ip = address_of(body_.string("Address", true));
        if (!ip) return err(ip.error());
        if (auto st = service_.release_address(body_.string("PoolID", true), *ip); !st)
            return err(st.error());
        return ok();
    }

  private:
    HttpResponse err(const std::string& message) const {
        return reply(200, json{{error_key_, message}});
    }
    HttpResponse err(const Error& error) const { return err(error.message); }

    NetworkService& service_;
    const std::function<void(const std::string&)>& on_created_;
    const Fields& body_;
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

    using Handler = HttpResponse (Call::*)();
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
    json body = json::object();
    if (request.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
        if (body.is_discarded() || !body.is_object()) {
            return refuse(400, fmt::format("{}: the request body is not a JSON object", method));
        }
    }
    spdlog::debug("plugin: {} {}", method, request.body);
    if (constant != constant_replies.end()) return ok(constant->second);
    try {
        Fields fields(body);
        const char* error_key = method.rfind("IpamDriver.", 0) == 0 ? "Error" : "Err";
        Call call(service_, on_network_created_, fields, error_key);
        HttpResponse response = (call.*(handler->second))();
        if (auto reply = json::parse(response.body, nullptr, false);
            reply.is_object() && reply.contains(error_key)) {
            spdlog::warn("plugin: {} failed: {}", method, reply[error_key].get<std::string>());
        }
        return response;
    } catch (const MalformedRequest& e) {
        return refuse(400, fmt::format("{}: malformed request: {}", method, e.what()));
    }
}

}  // namespace bpfnet

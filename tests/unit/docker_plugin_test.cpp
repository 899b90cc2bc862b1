// Docker's plugin protocol (NetworkDriver + IpamDriver) over the real NetworkService and SQLite
// store, with a FakeDatapath in place of the kernel: what Docker sends (bodies captured from a
// dockerd 20.10), what it must get back, error shapes, Docker's split endpoint lifecycle, the
// boundary between Docker-owned and bpfnet-owned objects, and random bodies. Needs no root.
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "agent/docker_plugin.h"
#include "agent/native_api.h"
#include "agent/service.h"
#include "core/ids.h"
#include "datapath/probe.h"
#include "fake_datapath.h"
#include "store/store.h"

namespace bpfnet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Reply {
    int status = 0;
    json body;
    std::string raw;
    // The failure message under the key Docker reads for this interface ("" when it succeeded).
    std::string error(const char* key = "Err") const {
        return body.is_object() && body.contains(key) ? body[key].get<std::string>() : "";
    }
};

std::string hex_id(char fill, int salt = 0) {
    std::string id(64, fill);
    id[63] = "0123456789abcdef"[salt % 16];
    return id;
}

// The body dockerd 20.10 sends for `docker network create -d bpfnet --subnet S [--gateway G]`.
json create_network_body(const std::string& id, const std::string& pool, const std::string& gateway,
                         const json& generic = json::object(), bool internal = false,
                         const std::string& address_space = "LocalDefault") {
    json options = {{"com.docker.network.enable_ipv6", false},
                    {"com.docker.network.generic", generic}};
    if (internal) options["com.docker.network.internal"] = true;
    return {{"NetworkID", id},
            {"Options", options},
            {"IPv4Data", json::array({{{"AddressSpace", address_space},
                                       {"Pool", pool},
                                       {"Gateway", gateway},
                                       {"AuxAddresses", json::object()}}})},
            {"IPv6Data", json::array()}};
}

class DockerPluginTest : public ::testing::Test {
  protected:
    void SetUp() override {
        old_level_ = spdlog::get_level();
        spdlog::set_level(spdlog::level::off);
        char tmpl[] = "/tmp/bpfnet-plugin-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ASSERT_NO_FATAL_FAILURE(start());
    }
    void TearDown() override {
        stop();
        std::error_code ec;
        fs::remove_all(dir_, ec);
        spdlog::set_level(old_level_);
    }

    void start() {
        auto store = open_sqlite_store((dir_ / "bpfnet.db").string());
        ASSERT_TRUE(store.ok()) << store.error().message;
        auto datapath = std::make_unique<FakeDatapath>();
        dp_ = datapath.get();
        ServiceConfig config;
        config.state_dir = dir_.string();
        config.netns_dir = (dir_ / "netns").string();
        service_ = std::make_unique<NetworkService>(
            config, "plugin-test", std::move(*store),
            std::make_unique<DatapathGraph>(std::move(datapath), nullptr, "not under test",
                                            nullptr),
            ProbeResult{});
        plugin_ = std::make_unique<DockerPluginApi>(
            *service_, [this](const std::string& id) { created_callbacks_.push_back(id); });
        native_ = std::make_unique<NativeApi>(*service_);
    }
    void stop() {
        native_.reset();
        plugin_.reset();
        service_.reset();
        dp_ = nullptr;
    }

    // Sends `body` verbatim.
    Reply send(const std::string& method, const std::string& body,
               const std::string& verb = "POST") {
        HttpResponse response = plugin_->handle(HttpRequest{verb, "/" + method, {}, body});
        Reply reply{response.status, json::parse(response.body, nullptr, false), response.body};
        EXPECT_FALSE(reply.body.is_discarded()) << method << " answered non-JSON " << response.body;
        EXPECT_EQ(response.content_type, "application/vnd.docker.plugins.v1+json");
        return reply;
    }
    Reply call(const std::string& method, const json& body) { return send(method, body.dump()); }

    Reply native(const std::string& verb, const std::string& target, const json& body = nullptr) {
        HttpResponse response = native_->handle(
            HttpRequest{verb, target, {}, body.is_null() ? std::string() : body.dump()});
        return Reply{response.status, json::parse(response.body, nullptr, false), response.body};
    }

    // Creates a network the way Docker does and fails the test if that did not work.
    void create_network(const std::string& id, const std::string& pool = "10.61.0.0/24",
                        const std::string& gateway = "10.61.0.1/24", bool internal = false) {
        Reply reply = call("NetworkDriver.CreateNetwork",
                           create_network_body(id, pool, gateway, json::object(), internal));
        ASSERT_EQ(reply.status, 200) << reply.raw;
        ASSERT_EQ(reply.body, json::object()) << reply.raw;
    }
    Reply create_endpoint(const std::string& net, const std::string& ep, const std::string& address,
                          const std::string& mac = "") {
        return call(
            "NetworkDriver.CreateEndpoint",
            json{{"NetworkID", net},
                 {"EndpointID", ep},
                 {"Interface", {{"Address", address}, {"AddressIPv6", ""}, {"MacAddress", mac}}},
                 {"Options", json::object()}});
    }
    Reply join(const std::string& net, const std::string& ep, const std::string& key) {
        return call("NetworkDriver.Join", json{{"NetworkID", net},
                                               {"EndpointID", ep},
                                               {"SandboxKey", key},
                                               {"Options", json::object()}});
    }
    json ids(const std::string& net, const std::string& ep) {
        return json{{"NetworkID", net}, {"EndpointID", ep}};
    }

    fs::path dir_;
    spdlog::level::level_enum old_level_ = spdlog::level::info;
    std::unique_ptr<NetworkService> service_;
    std::unique_ptr<DockerPluginApi> plugin_;
    std::unique_ptr<NativeApi> native_;
    FakeDatapath* dp_ = nullptr;
    std::vector<std::string> created_callbacks_;
};

TEST_F(DockerPluginTest, ActivationAndCapabilities) {
    Reply activate = send("Plugin.Activate", "");
    EXPECT_EQ(activate.status, 200);
    EXPECT_EQ(activate.body, json({{"Implements", {"NetworkDriver", "IpamDriver"}}}));
    EXPECT_EQ(send("NetworkDriver.GetCapabilities", "").body,
              json({{"Scope", "local"}, {"ConnectivityScope", "local"}}));
    EXPECT_EQ(send("IpamDriver.GetCapabilities", "{}").body, json({{"RequiresMACAddress", false}}));
    EXPECT_EQ(send("IpamDriver.GetDefaultAddressSpaces", "").body,
              json({{"LocalDefaultAddressSpace", "bpfnet-local"},
                    {"GlobalDefaultAddressSpace", "bpfnet-global"}}));
    for (const char* method : {"NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete"}) {
        EXPECT_EQ(call(method, json{{"DiscoveryType", 1}, {"DiscoveryData", nullptr}}).body,
                  json::object());
    }
}

TEST_F(DockerPluginTest, UnknownMethodsAre404AndOtherVerbs405) {
    Reply unknown = send("NetworkDriver.AllocateNetwork", "{}");
    EXPECT_EQ(unknown.status, 404);
    EXPECT_NE(unknown.error().find("AllocateNetwork"), std::string::npos);
    EXPECT_EQ(send("VolumeDriver.Create", "{}").status, 404);
    EXPECT_EQ(send("Plugin.Activate", "", "GET").status, 405);
}

TEST_F(DockerPluginTest, UndecodableBodiesAre400) {
    for (const char* method :
         {"NetworkDriver.CreateNetwork", "NetworkDriver.Join", "IpamDriver.RequestPool",
          "IpamDriver.RequestAddress", "NetworkDriver.CreateEndpoint"}) {
        for (const char* body :
             {"{", "[1,2]", "\"text\"", "{\"NetworkID\": 7, \"PoolID\": 7, \"V6\": 3}"}) {
            Reply reply = send(method, body);
            EXPECT_EQ(reply.status, 400) << method << " " << body << " -> " << reply.raw;
            EXPECT_FALSE(reply.error().empty()) << reply.raw;
        }
    }
    Reply typed = call("NetworkDriver.CreateNetwork",
                       json{{"NetworkID", hex_id('a')}, {"IPv4Data", "10.0.0.0/8"}});
    EXPECT_EQ(typed.status, 400);
    EXPECT_NE(typed.error().find("IPv4Data"), std::string::npos) << typed.raw;
    // Fields inside other fields are named by their path.
    json no_pool = create_network_body(hex_id('a'), "10.0.0.0/8", "");
    no_pool["IPv4Data"][0].erase("Pool");
    Reply missing = call("NetworkDriver.CreateNetwork", no_pool);
    EXPECT_EQ(missing.status, 400);
    EXPECT_EQ(missing.error(),
              "NetworkDriver.CreateNetwork: malformed request: missing field \"IPv4Data[0].Pool\"");
    json ports = {{"NetworkID", hex_id('a')},
                  {"EndpointID", hex_id('1')},
                  {"Options", {{"com.docker.network.portmap", {{{"Proto", 6}, {"Port", "80"}}}}}}};
    Reply port = call("NetworkDriver.ProgramExternalConnectivity", ports);
    EXPECT_EQ(port.status, 400);
    EXPECT_EQ(port.error(),
              "NetworkDriver.ProgramExternalConnectivity: malformed request: field "
              "\"Options.com.docker.network.portmap[0].Port\" must be an integer");
}

TEST_F(DockerPluginTest, DockerNetworkIsABpfnetNetwork) {
    const std::string id = hex_id('a');
    Reply reply = call("NetworkDriver.CreateNetwork",
                       create_network_body(id, "10.61.0.0/24", "10.61.0.1/24",
                                           {{"bpfnet.datapath", "kernel"},
                                            {"com.docker.network.bridge.enable_icc", "false"}},
                                           /*internal=*/true));
    ASSERT_EQ(reply.status, 200) << reply.raw;
    EXPECT_EQ(created_callbacks_, std::vector<std::string>{id});
    EXPECT_TRUE(dp_->has_network(id));

    Reply listed = native("GET", "/v1/networks/" + id);
    ASSERT_EQ(listed.status, 200) << listed.raw;
    EXPECT_EQ(listed.body["Id"], id);
    EXPECT_EQ(listed.body["Name"], placeholder_network_name(id));
    EXPECT_EQ(listed.body["Owner"], "docker");
    EXPECT_EQ(listed.body["Internal"], true);
    EXPECT_EQ(listed.body["IPAM"]["Driver"], "docker");
    EXPECT_EQ(listed.body["IPAM"]["Config"][0]["Subnet"], "10.61.0.0/24");
    EXPECT_EQ(listed.body["Options"]["com.docker.network.bridge.enable_icc"], "false");

    // The name Docker shows, learnt later from the engine.
    ASSERT_TRUE(service_->adopt_docker_identity(id, "frontend", {{"team", "web"}}).ok());
    Reply named = native("GET", "/v1/networks/frontend");
    ASSERT_EQ(named.status, 200) << named.raw;
    EXPECT_EQ(named.body["Labels"]["team"], "web");
}

TEST_F(DockerPluginTest, CreateNetworkRefusalsCarryBpfnetsMessage) {
    Reply v6 = call("NetworkDriver.CreateNetwork",
                    json{{"NetworkID", hex_id('b')},
                         {"Options", {{"com.docker.network.enable_ipv6", true}}},
                         {"IPv4Data", json::array()}});
    EXPECT_EQ(v6.status, 200);
    EXPECT_NE(v6.error().find("IPv6"), std::string::npos) << v6.raw;

    json two = create_network_body(hex_id('b'), "10.62.0.0/24", "10.62.0.1/24");
    two["IPv4Data"].push_back(two["IPv4Data"][0]);
    EXPECT_NE(call("NetworkDriver.CreateNetwork", two).error().find("exactly one IPv4 subnet"),
              std::string::npos);

    EXPECT_NE(call("NetworkDriver.CreateNetwork",
                   create_network_body("short", "10.62.0.0/24", "10.62.0.1/24"))
                  .error()
                  .find("invalid network ID"),
              std::string::npos);

    ASSERT_EQ(
        native("POST", "/v1/networks/create",
               json{{"Name", "native"}, {"IPAM", {{"Config", {{{"Subnet", "10.63.0.0/16"}}}}}}})
            .status,
        201);
    Reply overlap = call("NetworkDriver.CreateNetwork",
                         create_network_body(hex_id('c'), "10.63.4.0/24", "10.63.4.1/24"));
    EXPECT_EQ(overlap.status, 200);
    EXPECT_NE(overlap.error().find("overlaps"), std::string::npos) << overlap.raw;
    EXPECT_FALSE(dp_->has_network(hex_id('c')));
}

TEST_F(DockerPluginTest, EndpointLifecycleCreateJoinLeaveDelete) {
    const std::string net = hex_id('a');
    const std::string ep1 = hex_id('1');
    const std::string ep2 = hex_id('2');
    ASSERT_NO_FATAL_FAILURE(create_network(net));

    // Docker set both address and MAC: the reply must not change either.
    Reply created = create_endpoint(net, ep1, "10.61.0.5/24", "02:11:22:33:44:55");
    ASSERT_EQ(created.status, 200) << created.raw;
    EXPECT_EQ(created.body, json({{"Interface", json::object()}}));
    // Docker's IPAM gave the address but no MAC: bpfnet supplies only the MAC.
    Reply second = create_endpoint(net, ep2, "10.61.0.6/24");
    EXPECT_EQ(second.body, json({{"Interface", {{"MacAddress", "02:42:0a:3d:00:06"}}}}))
        << second.raw;
    EXPECT_TRUE(dp_->endpoints.empty()) << "nothing is created in the kernel before Join";

    const std::string key = "/var/run/docker/netns/0123456789ab";
    Reply joined = join(net, ep1, key);
    ASSERT_EQ(joined.status, 200) << joined.raw;
    EXPECT_EQ(joined.body["InterfaceName"]["SrcName"], "bnp-" + ep1.substr(0, 11));
    EXPECT_EQ(joined.body["InterfaceName"]["DstPrefix"], "eth");
    EXPECT_EQ(joined.body["Gateway"], "10.61.0.1");
    ASSERT_EQ(dp_->endpoints.count(ep1), 1u);
    EXPECT_EQ(dp_->endpoints[ep1].owner, Owner::Docker);
    EXPECT_EQ(dp_->endpoints[ep1].mac.str(), "02:11:22:33:44:55");
    EXPECT_EQ(join(net, ep1, key).status, 200) << "a retried Join is answered the same";
    EXPECT_NE(join(net, ep1, "/other").error().find("already joined"), std::string::npos);

    // The container's namespace is a Docker-owned sandbox, shared by its endpoints.
    ASSERT_EQ(join(net, ep2, key).status, 200);
    auto sandboxes = service_->list_sandboxes();
    ASSERT_TRUE(sandboxes.ok());
    ASSERT_EQ(sandboxes->size(), 1u);
    EXPECT_EQ(sandboxes->front().owner, Owner::Docker);
    EXPECT_EQ(sandboxes->front().netns_path, key);
    EXPECT_EQ(native("DELETE", "/v1/sandboxes/" + sandboxes->front().id).status, 409);

    Reply info = call("NetworkDriver.EndpointOperInfo", ids(net, ep1));
    EXPECT_EQ(info.body["Value"]["bpfnet.ip"], "10.61.0.5");
    EXPECT_EQ(info.body["Value"]["bpfnet.joined"], true);

    EXPECT_EQ(call("NetworkDriver.Leave", ids(net, ep1)).body, json::object());
    EXPECT_EQ(dp_->endpoints.count(ep1), 0u);
    EXPECT_EQ(call("NetworkDriver.Leave", ids(net, ep1)).body, json::object()) << "idempotent";
    EXPECT_EQ(call("NetworkDriver.DeleteEndpoint", ids(net, ep1)).body, json::object());
    EXPECT_NE(call("NetworkDriver.DeleteEndpoint", ids(net, ep1)).error().find("not found"),
              std::string::npos);
    // The sandbox record goes with the last endpoint that used it.
    ASSERT_EQ(call("NetworkDriver.Leave", ids(net, ep2)).status, 200);
    EXPECT_TRUE(service_->list_sandboxes()->empty());
    ASSERT_EQ(call("NetworkDriver.DeleteEndpoint", ids(net, ep2)).status, 200);
    EXPECT_EQ(call("NetworkDriver.DeleteNetwork", json{{"NetworkID", net}}).body, json::object());
    EXPECT_TRUE(dp_->was_removed(net));
    EXPECT_EQ(native("GET", "/v1/networks/" + net).status, 404);
}

TEST_F(DockerPluginTest, EndpointAddressesAreCheckedAndAllocatedWhenMissing) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    Reply allocated = create_endpoint(net, hex_id('1'), "");
    EXPECT_EQ(
        allocated.body,
        json({{"Interface", {{"Address", "10.61.0.2/24"}, {"MacAddress", "02:42:0a:3d:00:02"}}}}))
        << allocated.raw;
    EXPECT_NE(create_endpoint(net, hex_id('2'), "10.61.0.2/24").error().find("already in use"),
              std::string::npos);
    EXPECT_NE(create_endpoint(net, hex_id('3'), "10.99.0.2/24").error().find("not in subnet"),
              std::string::npos);
    EXPECT_NE(create_endpoint(net, hex_id('4'), "10.61.0.1/24").error().find("gateway"),
              std::string::npos);
    EXPECT_NE(create_endpoint(net, hex_id('5'), "10.61.0.9/24", "01:00:5e:00:00:01")
                  .error()
                  .find("unicast"),
              std::string::npos);
    EXPECT_NE(create_endpoint(hex_id('f'), hex_id('6'), "10.61.0.9/24").error().find("not found"),
              std::string::npos);
    EXPECT_NE(create_endpoint(net, "nothex", "10.61.0.9/24").error().find("invalid endpoint ID"),
              std::string::npos);
    EXPECT_NE(create_endpoint(net, hex_id('1'), "10.61.0.9/24").error().find("already exists"),
              std::string::npos);
}

TEST_F(DockerPluginTest, InternalNetworkGivesNoGateway) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net, "10.61.0.0/24", "10.61.0.1/24", /*internal=*/true));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    Reply joined = join(net, hex_id('1'), "/var/run/docker/netns/x");
    EXPECT_EQ(joined.body["Gateway"], "") << joined.raw;
}

TEST_F(DockerPluginTest, DockerBridgeOptionsReachTheNetwork) {
    const std::string net = hex_id('a');
    Reply created =
        call("NetworkDriver.CreateNetwork",
             create_network_body(net, "10.61.0.0/24", "10.61.0.1/24",
                                 {{"com.docker.network.container_iface_prefix", "ctr"},
                                  {"com.docker.network.bridge.gateway_mode_ipv4", "routed"}}));
    ASSERT_EQ(created.status, 200) << created.raw;
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    Reply joined = join(net, hex_id('1'), "/var/run/docker/netns/x");
    ASSERT_EQ(joined.status, 200) << joined.raw;
    EXPECT_EQ(joined.body["InterfaceName"]["DstPrefix"], "ctr") << joined.raw;

    // An option of Docker's bridge driver that bpfnet does not implement is refused by name.
    Reply refused = call("NetworkDriver.CreateNetwork",
                         create_network_body(hex_id('b'), "10.62.0.0/24", "10.62.0.1/24",
                                             {{"com.docker.network.bridge.inhibit_ipv4", "true"}}));
    EXPECT_NE(refused.error().find("com.docker.network.bridge.inhibit_ipv4"), std::string::npos)
        << refused.raw;
    // isolated needs --internal, as with Docker.
    Reply isolated =
        call("NetworkDriver.CreateNetwork",
             create_network_body(hex_id('c'), "10.63.0.0/24", "10.63.0.1/24",
                                 {{"com.docker.network.bridge.gateway_mode_ipv4", "isolated"}}));
    EXPECT_NE(isolated.error().find("internal"), std::string::npos) << isolated.raw;
}

TEST_F(DockerPluginTest, JoinFailureRollsBackAndCanBeRetried) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    dp_->fail_next_ensure_endpoint = Error{ErrorKind::Internal, "veth creation failed"};
    Reply failed = join(net, hex_id('1'), "/var/run/docker/netns/x");
    EXPECT_NE(failed.error().find("veth creation failed"), std::string::npos) << failed.raw;
    EXPECT_TRUE(service_->list_sandboxes()->empty());
    EXPECT_EQ(join(net, hex_id('1'), "/var/run/docker/netns/x").status, 200);
    EXPECT_EQ(join(net, hex_id('1'), "relative/path").status, 200)
        << "a retried Join with another key is refused, not crashed";
    EXPECT_NE(join(net, hex_id('2'), "").error().find("not found"), std::string::npos);
}

TEST_F(DockerPluginTest, PublishedPortsArePublishedAndRevoked) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    ASSERT_EQ(create_endpoint(net, hex_id('2'), "10.61.0.3/24").status, 200);
    auto program = [&](const std::string& ep, const json& bindings) {
        json request = ids(net, ep);
        request["Options"] = {
            {"com.docker.network.endpoint.exposedports", {{{"Proto", 6}, {"Port", 80}}}},
            {"com.docker.network.portmap", bindings}};
        return call("NetworkDriver.ProgramExternalConnectivity", request);
    };
    json bindings = {{{"Proto", 6},
                      {"IP", ""},
                      {"Port", 80},
                      {"HostIP", ""},
                      {"HostPort", 47311},
                      {"HostPortEnd", 47311}},
                     {{"Proto", 17},
                      {"IP", ""},
                      {"Port", 53},
                      {"HostIP", "127.0.0.1"},
                      {"HostPort", 47312},
                      {"HostPortEnd", 47312}}};
    Reply published = program(hex_id('1'), bindings);
    ASSERT_EQ(published.body, json::object()) << published.raw;
    ASSERT_EQ(dp_->last_ports.size(), 2u);
    EXPECT_EQ(dp_->last_ports[0].binding.str(), "0.0.0.0:47311->80/tcp");
    EXPECT_EQ(dp_->last_ports[0].endpoint_ip.str(), "10.61.0.2");
    EXPECT_EQ(dp_->last_ports[1].binding.str(), "127.0.0.1:47312->53/udp");
    Reply info = call("NetworkDriver.EndpointOperInfo", ids(net, hex_id('1')));
    EXPECT_EQ(info.body["Value"]["com.docker.network.portmap"][0]["HostPort"], 47311) << info.raw;

    // One host port, one endpoint: the second is refused with a message naming the port.
    Reply clash = program(hex_id('2'), json::array({bindings[0]}));
    EXPECT_NE(clash.error().find("47311"), std::string::npos) << clash.raw;
    EXPECT_NE(clash.error().find("already allocated"), std::string::npos) << clash.raw;
    Reply bad = program(hex_id('2'), json::array({{{"Proto", 1}, {"Port", 80}}}));
    EXPECT_NE(bad.error().find("unsupported IP protocol"), std::string::npos) << bad.raw;

    // Revoking frees the port for the other endpoint.
    EXPECT_EQ(call("NetworkDriver.RevokeExternalConnectivity", ids(net, hex_id('1'))).body,
              json::object());
    EXPECT_TRUE(dp_->last_ports.empty());
    EXPECT_EQ(program(hex_id('2'), json::array({bindings[0]})).body, json::object());
    EXPECT_EQ(dp_->last_ports.size(), 1u);
    // Deleting the endpoint frees its ports too.
    EXPECT_EQ(call("NetworkDriver.DeleteEndpoint", ids(net, hex_id('2'))).body, json::object());
    EXPECT_TRUE(dp_->last_ports.empty());
    // Revoke of an endpoint that is gone is not an error (Docker revokes on every leave).
    EXPECT_EQ(call("NetworkDriver.RevokeExternalConnectivity", ids(net, hex_id('2'))).body,
              json::object());
}

TEST_F(DockerPluginTest, InternalNetworksCannotPublish) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net, "10.61.0.0/24", "10.61.0.1/24", /*internal=*/true));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    json request = ids(net, hex_id('1'));
    request["Options"] = {
        {"com.docker.network.portmap", {{{"Proto", 6}, {"Port", 80}, {"HostPort", 47313}}}}};
    Reply refused = call("NetworkDriver.ProgramExternalConnectivity", request);
    EXPECT_NE(refused.error().find("internal"), std::string::npos) << refused.raw;
}

TEST_F(DockerPluginTest, BpfnetCliLeavesDockerObjectsToDocker) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    Reply rm = native("DELETE", "/v1/networks/" + net);
    EXPECT_EQ(rm.status, 409);
    EXPECT_NE(rm.raw.find("managed by Docker"), std::string::npos) << rm.raw;
    Reply pruned = native("POST", "/v1/networks/prune");
    EXPECT_EQ(pruned.status, 200) << pruned.raw;
    EXPECT_TRUE(dp_->has_network(net));
    EXPECT_EQ(native("GET", "/v1/networks/" + net).status, 200);
}

TEST_F(DockerPluginTest, DeleteNetworkTakesLeftoverEndpointsWithIt) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    ASSERT_EQ(join(net, hex_id('1'), "/var/run/docker/netns/x").status, 200);
    EXPECT_EQ(call("NetworkDriver.DeleteNetwork", json{{"NetworkID", net}}).body, json::object());
    EXPECT_EQ(dp_->endpoints.count(hex_id('1')), 0u);
    EXPECT_TRUE(service_->snapshot()->endpoints.empty());
    EXPECT_TRUE(service_->snapshot()->sandboxes.empty());
}

TEST_F(DockerPluginTest, IpamPoolsAreReferenceCountedAndAddressesTracked) {
    json request = {{"AddressSpace", "bpfnet-local"},
                    {"Pool", "10.64.0.0/24"},
                    {"SubPool", "10.64.0.128/25"},
                    {"Options", json::object()},
                    {"V6", false}};
    Reply pool = call("IpamDriver.RequestPool", request);
    ASSERT_EQ(pool.status, 200) << pool.raw;
    EXPECT_EQ(pool.body["Pool"], "10.64.0.0/24");
    std::string pool_id = pool.body["PoolID"];
    EXPECT_EQ(call("IpamDriver.RequestPool", request).body["PoolID"], pool_id) << "same answer";

    json gateway = {{"PoolID", pool_id},
                    {"Address", ""},
                    {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}};
    EXPECT_EQ(call("IpamDriver.RequestAddress", gateway).body["Address"], "10.64.0.128/24");
    json any = {{"PoolID", pool_id}, {"Address", ""}, {"Options", nullptr}};
    EXPECT_EQ(call("IpamDriver.RequestAddress", any).body["Address"], "10.64.0.129/24");
    json fixed = {{"PoolID", pool_id}, {"Address", "10.64.0.7"}, {"Options", nullptr}};
    EXPECT_EQ(call("IpamDriver.RequestAddress", fixed).body["Address"], "10.64.0.7/24");
    // IpamDriver failures are under "Error": Docker's IPAM client does not read "Err".
    Reply taken = call("IpamDriver.RequestAddress", fixed);
    EXPECT_EQ(taken.status, 200);
    EXPECT_NE(taken.error("Error").find("already in use"), std::string::npos) << taken.raw;
    EXPECT_FALSE(taken.body.contains("Err"));

    EXPECT_EQ(
        call("IpamDriver.ReleaseAddress", json{{"PoolID", pool_id}, {"Address", "10.64.0.7"}}).body,
        json::object());
    EXPECT_EQ(call("IpamDriver.RequestAddress", fixed).body["Address"], "10.64.0.7/24");
    EXPECT_NE(
        call("IpamDriver.ReleaseAddress", json{{"PoolID", pool_id}, {"Address", "10.64.0.99"}})
            .error("Error")
            .find("not allocated"),
        std::string::npos);

    // A Docker network on that pool is allowed to sit on it; anything else overlapping is not.
    Reply on_pool = call("NetworkDriver.CreateNetwork",
                         create_network_body(hex_id('a'), "10.64.0.0/24", "10.64.0.128/24",
                                             json::object(), false, "bpfnet-local"));
    EXPECT_EQ(on_pool.body, json::object()) << on_pool.raw;
    EXPECT_EQ(native("GET", "/v1/networks/" + hex_id('a')).body["IPAM"]["Driver"], "bpfnet");
    Reply other = call("IpamDriver.RequestPool", json{{"Pool", "10.64.0.0/16"}});
    EXPECT_NE(other.error("Error").find("overlaps"), std::string::npos) << other.raw;

    EXPECT_EQ(call("IpamDriver.ReleasePool", json{{"PoolID", pool_id}}).body, json::object());
    EXPECT_EQ(call("IpamDriver.ReleasePool", json{{"PoolID", pool_id}}).body, json::object());
    EXPECT_NE(
        call("IpamDriver.ReleasePool", json{{"PoolID", pool_id}}).error("Error").find("not found"),
        std::string::npos);
}

TEST_F(DockerPluginTest, IpamPicksDefaultPoolsAndReportsExhaustion) {
    Reply first = call("IpamDriver.RequestPool", json{{"Pool", ""}, {"V6", false}});
    ASSERT_EQ(first.status, 200) << first.raw;
    Reply second = call("IpamDriver.RequestPool", json{{"Pool", ""}});
    EXPECT_NE(first.body["Pool"], second.body["Pool"]) << "two networks never share a pool";

    Reply small = call("IpamDriver.RequestPool", json{{"Pool", "10.65.0.0/30"}});
    ASSERT_EQ(small.status, 200) << small.raw;
    json any = {{"PoolID", small.body["PoolID"]}, {"Address", ""}};
    EXPECT_EQ(call("IpamDriver.RequestAddress", any).body["Address"], "10.65.0.1/30");
    EXPECT_EQ(call("IpamDriver.RequestAddress", any).body["Address"], "10.65.0.2/30");
    EXPECT_NE(call("IpamDriver.RequestAddress", any).error("Error").find("no available"),
              std::string::npos);

    EXPECT_NE(call("IpamDriver.RequestPool", json{{"V6", true}}).error("Error").find("IPv6"),
              std::string::npos);
    EXPECT_NE(call("IpamDriver.RequestPool", json{{"SubPool", "10.66.0.0/25"}})
                  .error("Error")
                  .find("ip range"),
              std::string::npos);
    EXPECT_NE(call("IpamDriver.RequestAddress", json{{"PoolID", "nope"}})
                  .error("Error")
                  .find("not found"),
              std::string::npos);
}

TEST_F(DockerPluginTest, ReconcileUndoesAnInterruptedJoin) {
    const std::string net = hex_id('a');
    ASSERT_NO_FATAL_FAILURE(create_network(net));
    ASSERT_EQ(create_endpoint(net, hex_id('1'), "10.61.0.2/24").status, 200);
    ASSERT_EQ(join(net, hex_id('1'), "/var/run/docker/netns/x").status, 200);
    // As a crash between recording the join and finishing it leaves the record.
    auto endpoint = service_->find_endpoint(net, hex_id('1'));
    ASSERT_TRUE(endpoint.ok());
    stop();
    {
        auto store = open_sqlite_store((dir_ / "bpfnet.db").string());
        Endpoint e = *endpoint;
        e.state = Lifecycle::Creating;
        ASSERT_TRUE((*store)->put_endpoint(e).ok());
    }
    ASSERT_NO_FATAL_FAILURE(start());
    auto st = service_->reconcile();
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto after = service_->find_endpoint(net, hex_id('1'));
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(after->sandbox_id.empty()) << "back to created-not-joined, for Docker's next call";
    EXPECT_EQ(after->state, Lifecycle::Ready);
    EXPECT_EQ(dp_->removed_endpoints.size(), 1u);
    EXPECT_TRUE(service_->list_sandboxes()->empty());
}

// Fixed seed: reproducible in CI.
TEST_F(DockerPluginTest, RandomBodiesNeverCrashAndAlwaysAnswerJson) {
    std::mt19937 rng(20261124);
    const std::vector<std::string> methods = {"Plugin.Activate",
                                              "NetworkDriver.CreateNetwork",
                                              "NetworkDriver.DeleteNetwork",
                                              "NetworkDriver.CreateEndpoint",
                                              "NetworkDriver.Join",
                                              "NetworkDriver.Leave",
                                              "NetworkDriver.DeleteEndpoint",
                                              "NetworkDriver.EndpointOperInfo",
                                              "NetworkDriver.ProgramExternalConnectivity",
                                              "IpamDriver.RequestPool",
                                              "IpamDriver.RequestAddress",
                                              "IpamDriver.ReleaseAddress",
                                              "IpamDriver.ReleasePool"};
    const std::vector<std::string> keys = {"NetworkID", "EndpointID", "SandboxKey", "Options",
                                           "IPv4Data",  "Interface",  "PoolID",     "Pool",
                                           "SubPool",   "Address",    "V6",         "AddressSpace"};
    auto value = [&](auto&& self, int depth) -> json {
        switch (rng() % 8) {
            case 0:
                return nullptr;
            case 1:
                return static_cast<int>(rng() % 1000) - 500;
            case 2:
                return rng() % 2 == 0;
            case 3:
                return hex_id('a' + rng() % 6);
            case 4:
                return "10." + std::to_string(rng() % 300) + ".0.0/" + std::to_string(rng() % 40);
            case 5: {
                json a = json::array();
                for (int i = 0; depth > 0 && i < 3; ++i) a.push_back(self(self, depth - 1));
                return a;
            }
            case 6: {
                json o = json::object();
                for (int i = 0; depth > 0 && i < 3; ++i)
                    o[keys[rng() % keys.size()]] = self(self, depth - 1);
                return o;
            }
            default:
                return std::string(rng() % 5, static_cast<char>(' ' + rng() % 90));
        }
    };
    for (int i = 0; i < 3000; ++i) {
        json body = json::object();
        for (int k = rng() % 5; k > 0; --k) body[keys[rng() % keys.size()]] = value(value, 3);
        const std::string& method = methods[rng() % methods.size()];
        Reply reply = call(method, body);
        EXPECT_TRUE(reply.status == 200 || reply.status == 400)
            << method << " " << body.dump() << " -> " << reply.status << " " << reply.raw;
    }
}

}  // namespace
}  // namespace bpfnet

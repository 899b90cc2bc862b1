// The native HTTP/JSON API end to end over the real NetworkService and SQLite store, with a
// FakeDatapath in place of the kernel: request parsing, status codes and messages, docker-shaped
// output, rollback of failed operations and restart/reconcile semantics. Needs no root: sandboxes
// (which need a real netns) are never created through the service, only recorded in the store.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <bpfnet/version.h>

#include "agent/capabilities.h"
#include "agent/native_api.h"
#include "agent/service.h"
#include "client/http_message.h"
#include "core/ids.h"
#include "core/ipam.h"
#include "core/model.h"
#include "datapath/probe.h"
#include "fake_datapath.h"
#include "store/store.h"

namespace bpfnet {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

#define ASSERT_OK(expr)                                                           \
    do {                                                                          \
        const auto& assert_ok_result_ = (expr);                                   \
        ASSERT_TRUE(assert_ok_result_.ok()) << assert_ok_result_.error().message; \
    } while (0)

constexpr const char* kInstance = "test-instance";

struct Reply {
    int status = 0;
    json body;  // null when the response had no body
    std::string raw;

    std::string message() const {
        if (body.is_object() && body.contains("message") && body["message"].is_string()) {
            return body["message"].get<std::string>();
        }
        return "";
    }
};

// What a reply printed in a failure message looks like.
std::string describe(const Reply& reply) {
    return std::to_string(reply.status) + " " + reply.raw;
}

// A `docker network create`-shaped body, as the CLI sends it.
json create_body(const std::string& name, const std::string& subnet = "",
                 const std::string& gateway = "") {
    json body = {{"Name", name},
                 {"Driver", "bridge"},
                 {"Internal", false},
                 {"Options", json::object()},
                 {"Labels", json::object()}};
    json ipam = {{"Driver", "default"}, {"Config", json::array()}};
    if (!subnet.empty()) {
        json config = {{"Subnet", subnet}};
        if (!gateway.empty()) config["Gateway"] = gateway;
        ipam["Config"].push_back(config);
    }
    body["IPAM"] = ipam;
    return body;
}

Network make_network(const std::string& name, const std::string& subnet, Lifecycle state) {
    Network n;
    n.id = generate_id();
    n.name = name;
    n.ipam.subnet = *Cidr::parse(subnet);
    n.ipam.gateway = Ipv4{n.ipam.subnet.network().value + 1};
    n.ipam.user_subnet = true;
    n.created = now_rfc3339();
    n.state = state;
    n.bridge_name = "bn-" + n.id.substr(0, 12);
    return n;
}

class NativeApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        old_level_ = spdlog::get_level();
        spdlog::set_level(spdlog::level::off);  // the fuzz test alone would log thousands of lines
        char tmpl[] = "/tmp/bpfnet-native-api-XXXXXX";
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

    std::string db_path() const { return (dir_ / "state" / "bpfnet.db").string(); }

    // Opens a NetworkService (with a fresh FakeDatapath) on the store file. Does not reconcile.
    void start() {
        auto store = open_sqlite_store(db_path());
        ASSERT_OK(store);
        auto datapath = std::make_unique<FakeDatapath>();
        dp_ = datapath.get();
        ServiceConfig config;
        config.state_dir = (dir_ / "state").string();
        config.run_dir = (dir_ / "run").string();
        config.bpffs_root = (dir_ / "bpffs").string();
        config.netns_dir = (dir_ / "netns").string();
        service_ = std::make_unique<NetworkService>(
            config, kInstance, std::move(*store),
            std::make_unique<DatapathGraph>(std::move(datapath), nullptr, "not under test",
                                            nullptr),
            ProbeResult{});
        api_ = std::make_unique<NativeApi>(*service_);
    }

    void stop() {
        api_.reset();
        service_.reset();
        dp_ = nullptr;
    }

    void restart() {
        stop();
        ASSERT_NO_FATAL_FAILURE(start());
    }

    // Writes records directly through the Store API while no service has the file open, the way
    // a crashed agent would have left them.
    void write_records(const std::vector<Network>& networks, const std::vector<Sandbox>& sandboxes,
                       const std::vector<Endpoint>& endpoints = {}) {
        bool was_running = service_ != nullptr;
        stop();
        {
            auto store = open_sqlite_store(db_path());
            ASSERT_OK(store);
            for (const auto& n : networks) ASSERT_OK((*store)->put_network(n));
            for (const auto& s : sandboxes) ASSERT_OK((*store)->put_sandbox(s));
            for (const auto& e : endpoints) ASSERT_OK((*store)->put_endpoint(e));
        }
        if (was_running) {
            ASSERT_NO_FATAL_FAILURE(start());
        }
    }

    Sandbox make_sandbox(const std::string& name) const {
        Sandbox s;
        s.id = generate_id();
        s.name = name;
        s.netns_path = (dir_ / "netns" / name).string();  // never created: nothing here opens it
        s.created = now_rfc3339();
        s.state = Lifecycle::Ready;
        return s;
    }

    Reply call(const std::string& method, const std::string& target, const std::string& body = "") {
        HttpRequest request{method, target, {}, body};
        if (!body.empty()) request.headers["content-type"] = "application/json";
        HttpResponse response = api_->handle(request);
        Reply reply;
        reply.status = response.status;
        reply.raw = response.body;
        if (!response.body.empty()) {
            reply.body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
            EXPECT_FALSE(reply.body.is_discarded()) << "response is not JSON: " << response.body;
            EXPECT_EQ(response.content_type, "application/json");
        }
        return reply;
    }

    Reply create(const json& body) { return call("POST", "/v1/networks/create", body.dump()); }

    // Creates a network and returns its ID, failing the test if that did not work.
    std::string create_ok(const json& body) {
        Reply reply = create(body);
        EXPECT_EQ(reply.status, 201) << describe(reply);
        if (reply.status != 201 || !reply.body.contains("Id")) return "";
        return reply.body["Id"].get<std::string>();
    }

    json list() {
        Reply reply = call("GET", "/v1/networks");
        EXPECT_EQ(reply.status, 200) << describe(reply);
        EXPECT_TRUE(reply.body.is_array()) << reply.raw;
        return reply.body;
    }

    std::vector<std::string> listed_names() {
        std::vector<std::string> names;
        for (const auto& n : list()) names.push_back(n["Name"].get<std::string>());
        return names;
    }

    // Expects `reply` to be an error with this status whose message contains `needle`.
    static void expect_error(const Reply& reply, int status, const std::string& needle) {
        EXPECT_EQ(reply.status, status) << describe(reply);
        EXPECT_NE(reply.message().find(needle), std::string::npos)
            << "message \"" << reply.message() << "\" does not mention \"" << needle << "\"";
    }

    fs::path dir_;
    spdlog::level::level_enum old_level_ = spdlog::level::info;
    std::unique_ptr<NetworkService> service_;
    std::unique_ptr<NativeApi> api_;
    FakeDatapath* dp_ = nullptr;  // owned by service_
};

// ---------------------------------------------------------------------------------------------
// Creating and inspecting

TEST_F(NativeApiTest, CreateReturnsIdAndListShowsDockerInspectShape) {
    json body = {
        {"Name", "frontend"},
        {"Driver", "bridge"},
        {"Internal", true},
        {"Options",
         {{"com.docker.network.bridge.enable_icc", "false"}, {"com.example.custom", "kept"}}},
        {"Labels", {{"team", "web"}}},
        {"IPAM",
         {{"Driver", "default"},
          {"Config",
           {{{"Subnet", "10.77.0.0/24"},
             {"Gateway", "10.77.0.254"},
             {"IPRange", "10.77.0.128/25"},
             {"AuxiliaryAddresses", {{"router", "10.77.0.2"}}}}}}}},
    };
    Reply created = create(body);
    ASSERT_EQ(created.status, 201) << describe(created);
    ASSERT_TRUE(created.body.contains("Id"));
    std::string id = created.body["Id"].get<std::string>();
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}"))) << id;
    EXPECT_EQ(created.body.value("Warning", "missing"), "");

    json networks = list();
    ASSERT_EQ(networks.size(), 1u) << networks.dump();
    json n = networks[0];  // a copy: operator[] on a const json must not meet a missing key
    // docker's field order: Name, Id, Created, Scope, Driver, ...
    std::vector<std::string> keys;
    for (const auto& [key, value] : n.items()) keys.push_back(key);
    ASSERT_GE(keys.size(), 5u);
    EXPECT_EQ((std::vector<std::string>(keys.begin(), keys.begin() + 5)),
              (std::vector<std::string>{"Name", "Id", "Created", "Scope", "Driver"}));
    EXPECT_EQ(n["Name"], "frontend");
    EXPECT_EQ(n["Id"], id);
    EXPECT_TRUE(std::regex_match(n["Created"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)")))
        << n["Created"];
    EXPECT_EQ(n["Driver"], "bridge");
    EXPECT_EQ(n["Scope"], "local");
    EXPECT_EQ(n["EnableIPv6"], false);
    EXPECT_EQ(n["Internal"], true);
    EXPECT_EQ(n["IPAM"]["Driver"], "default");
    ASSERT_EQ(n["IPAM"]["Config"].size(), 1u);
    json config = n["IPAM"]["Config"][0];
    EXPECT_EQ(config["Subnet"], "10.77.0.0/24");
    EXPECT_EQ(config["Gateway"], "10.77.0.254");
    EXPECT_EQ(config["IPRange"], "10.77.0.128/25");
    EXPECT_EQ(config["AuxiliaryAddresses"], json({{"router", "10.77.0.2"}}));
    EXPECT_EQ(n["Containers"], json::object());
    EXPECT_EQ(n["Options"], json({{"com.docker.network.bridge.enable_icc", "false"},
                                  {"com.example.custom", "kept"}}));
    EXPECT_EQ(n["Labels"], json({{"team", "web"}}));
    EXPECT_EQ(n["BpfNet"]["Datapath"], "kernel");
    EXPECT_FALSE(n["BpfNet"]["DatapathReason"].get<std::string>().empty());
    EXPECT_EQ(n["BpfNet"]["Bridge"], "bn-" + id.substr(0, 12));
    EXPECT_EQ(n["BpfNet"]["State"], "ready");

    // The datapath built it (with the parsed options), then the policy was synced including it.
    ASSERT_TRUE(dp_->has_network(id));
    const auto& ensured = dp_->networks.at(id);
    EXPECT_EQ(ensured.network.name, "frontend");
    EXPECT_EQ(ensured.network.ipam.subnet.str(), "10.77.0.0/24");
    EXPECT_EQ(ensured.network.bridge_name, "bn-" + id.substr(0, 12));
    EXPECT_FALSE(ensured.options.enable_icc);
    EXPECT_TRUE(ensured.network.internal);
    EXPECT_TRUE(dp_->policy_includes(id));
    EXPECT_EQ(dp_->calls,
              (std::vector<std::string>{"ensure_network " + id, "sync_policy [frontend]"}));
}

TEST_F(NativeApiTest, EachNetworkGetsADatapathIdOfItsOwnNeverReused) {
    const std::string a = create_ok({{"Name", "a"}});
    const std::string b = create_ok({{"Name", "b"}});
    ASSERT_TRUE(dp_->has_network(a) && dp_->has_network(b));
    const uint32_t id_a = dp_->networks.at(a).network.datapath_id;
    const uint32_t id_b = dp_->networks.at(b).network.datapath_id;
    EXPECT_NE(id_a, 0u);
    EXPECT_NE(id_b, 0u);
    EXPECT_NE(id_a, id_b);
    for (const auto& n : list()) {
        const uint32_t shown = n["BpfNet"]["DatapathID"].get<uint32_t>();
        EXPECT_EQ(shown, n["Name"] == "a" ? id_a : id_b) << n.dump();
    }
    // Kept across restarts, and a removed network's ID is not given to the next one.
    ASSERT_NO_FATAL_FAILURE(restart());
    ASSERT_OK(service_->reconcile());
    ASSERT_EQ(call("DELETE", "/v1/networks/b").status, 204);
    const std::string c = create_ok({{"Name", "c"}});
    ASSERT_TRUE(dp_->has_network(c));
    const uint32_t id_c = dp_->networks.at(c).network.datapath_id;
    EXPECT_NE(id_c, id_a);
    EXPECT_NE(id_c, id_b);
    EXPECT_EQ(dp_->networks.at(a).network.datapath_id, id_a);  // as reconcile ensured it
}

TEST_F(NativeApiTest, GetFindsNetworkByNameIdAndIdPrefix) {
    std::string id = create_ok(create_body("backend", "10.78.0.0/24"));
    ASSERT_FALSE(id.empty());
    create_ok(create_body("other", "10.79.0.0/24"));
    for (const auto& ref : {std::string("backend"), id, id.substr(0, 12), id.substr(0, 5)}) {
        Reply reply = call("GET", "/v1/networks/" + ref);
        ASSERT_EQ(reply.status, 200) << ref << ": " << describe(reply);
        EXPECT_EQ(reply.body["Id"], id);
        EXPECT_EQ(reply.body["Name"], "backend");
        EXPECT_EQ(reply.body["IPAM"]["Config"][0]["Subnet"], "10.78.0.0/24");
        EXPECT_EQ(reply.body["IPAM"]["Config"][0]["Gateway"], "10.78.0.1");
    }
    // A query string is not part of the reference.
    Reply with_query = call("GET", "/v1/networks/backend?verbose=true");
    EXPECT_EQ(with_query.status, 200) << describe(with_query);
    EXPECT_EQ(with_query.body["Id"], id);
}

TEST_F(NativeApiTest, AmbiguousIdPrefixIsConflict) {
    Network a = make_network("first", "10.80.0.0/24", Lifecycle::Ready);
    Network b = make_network("second", "10.80.1.0/24", Lifecycle::Ready);
    a.id = "abc1" + a.id.substr(4);
    b.id = "abc2" + b.id.substr(4);
    ASSERT_NO_FATAL_FAILURE(write_records({a, b}, {}));
    expect_error(call("GET", "/v1/networks/abc"), 409, "ambiguous");
    Reply unique = call("GET", "/v1/networks/abc2");
    EXPECT_EQ(unique.status, 200) << describe(unique);
    EXPECT_EQ(unique.body["Name"], "second");
}

TEST_F(NativeApiTest, CreateWithoutIpamPicksAFreeDefaultPool) {
    std::string first = create_ok(json{{"Name", "auto1"}});
    std::string second = create_ok(json{{"Name", "auto2"}, {"IPAM", nullptr}});
    ASSERT_FALSE(first.empty());
    ASSERT_FALSE(second.empty());
    auto pools = default_address_pools();
    std::set<std::string> subnets;
    for (const auto& n : list()) {
        std::string subnet = n["IPAM"]["Config"][0]["Subnet"].get<std::string>();
        subnets.insert(subnet);
        auto cidr = Cidr::parse(subnet);
        ASSERT_TRUE(cidr.ok()) << subnet;
        EXPECT_NE(std::find(pools.begin(), pools.end(), *cidr), pools.end()) << subnet;
        EXPECT_EQ(n["IPAM"]["Config"][0]["Gateway"], Ipv4{cidr->network().value + 1}.str());
        EXPECT_EQ(n["Driver"], "bridge");
    }
    EXPECT_EQ(subnets.size(), 2u) << "two networks got the same default pool";
}

TEST_F(NativeApiTest, DatapathKernelOptionIsAccepted) {
    json body = create_body("pinned", "10.81.0.0/24");
    body["Options"]["bpfnet.datapath"] = "kernel";
    std::string id = create_ok(body);
    ASSERT_FALSE(id.empty());
    Reply reply = call("GET", "/v1/networks/pinned");
    ASSERT_EQ(reply.status, 200);
    EXPECT_EQ(reply.body["BpfNet"]["Datapath"], "kernel");
    EXPECT_NE(reply.body["BpfNet"]["DatapathReason"].get<std::string>().find("requested"),
              std::string::npos);
    EXPECT_EQ(dp_->networks.at(id).options.datapath, DatapathMode::Kernel);
}

// ---------------------------------------------------------------------------------------------
// Request errors

TEST_F(NativeApiTest, MalformedJsonBodyIsBadRequest) {
    const std::vector<std::string> bodies = {"{",        "{\"Name\": }",
                                             "not json", "{\"Name\":\"a\"} trailing",
                                             "   ",      "{\"Name\":\"a\xff\"}"};
    for (const auto& body : bodies) {
        Reply reply = call("POST", "/v1/networks/create", body);
        expect_error(reply, 400, "not valid JSON");
    }
    EXPECT_TRUE(dp_->calls.empty());
}

TEST_F(NativeApiTest, NonObjectBodyIsBadRequest) {
    for (const std::string body : {"[]", "[{\"Name\":\"a\"}]", "\"a\"", "5", "null", "true"}) {
        Reply reply = call("POST", "/v1/networks/create", body);
        expect_error(reply, 400, "must be a JSON object");
    }
    EXPECT_TRUE(list().empty());
}

TEST_F(NativeApiTest, WrongFieldTypesAreBadRequestsNamingTheField) {
    struct Case {
        std::string body;
        std::string field;
    };
    const std::vector<Case> cases = {
        {R"({"Name": 5})", "Name"},
        {R"({"Name": ["a"]})", "Name"},
        {R"({"Name": "x", "Driver": ["bridge"]})", "Driver"},
        {R"({"Name": "x", "Options": {"a": 1}})", "Options"},
        {R"({"Name": "x", "Options": {"a": null}})", "Options"},
        {R"({"Name": "x", "Options": "a=b"})", "Options"},
        {R"({"Name": "x", "Labels": ["team=web"]})", "Labels"},
        {R"({"Name": "x", "Labels": {"team": true}})", "Labels"},
        {R"({"Name": "x", "IPAM": "x"})", "IPAM"},
        {R"({"Name": "x", "IPAM": [1]})", "IPAM"},
        {R"({"Name": "x", "Internal": "yes"})", "Internal"},
        {R"({"Name": "x", "Internal": 1})", "Internal"},
        {R"({"Name": "x", "IPAM": {"Driver": 7}})", "Driver"},
        {R"({"Name": "x", "IPAM": {"Config": {"Subnet": "10.1.0.0/24"}}})", "IPAM.Config"},
        {R"({"Name": "x", "IPAM": {"Config": [5]}})", "IPAM.Config"},
        {R"({"Name": "x", "IPAM": {"Config": [{"Subnet": 10}]}})", "Subnet"},
        {R"({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "Gateway": 1}]}})",
         "Gateway"},
        {R"({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "IPRange": {}}]}})",
         "IPRange"},
        {R"({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24",
                                               "AuxiliaryAddresses": {"a": false}}]}})",
         "AuxiliaryAddresses"},
        {R"({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24",
                                               "AuxiliaryAddresses": "a=10.1.0.5"}]}})",
         "AuxiliaryAddresses"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.body);
        expect_error(call("POST", "/v1/networks/create", c.body), 400, c.field);
    }
    EXPECT_TRUE(dp_->calls.empty());
    EXPECT_TRUE(list().empty());
}

TEST_F(NativeApiTest, InvalidNameIsBadRequest) {
    for (const std::string name : {"", "-lead", ".dot", "has space", "a/b", "semi;colon", "ü"}) {
        SCOPED_TRACE(name);
        expect_error(create(create_body(name, "10.82.0.0/24")), 400, "invalid network name");
    }
    // A body without a name at all is the same mistake.
    expect_error(call("POST", "/v1/networks/create", "{}"), 400, "invalid network name");
    expect_error(call("POST", "/v1/networks/create", ""), 400, "invalid network name");
    EXPECT_TRUE(dp_->calls.empty());
}

TEST_F(NativeApiTest, DuplicateNameIsConflict) {
    ASSERT_FALSE(create_ok(create_body("dup", "10.83.0.0/24")).empty());
    expect_error(create(create_body("dup", "10.83.1.0/24")), 409, "already exists");
    expect_error(create(create_body("dup")), 409, "already exists");
    EXPECT_EQ(listed_names(), std::vector<std::string>{"dup"});
    EXPECT_EQ(dp_->ensured_network_ids.size(), 1u);
}

TEST_F(NativeApiTest, OverlappingSubnetIsConflict) {
    ASSERT_FALSE(create_ok(create_body("base", "10.84.0.0/24")).empty());
    for (const std::string subnet :
         {"10.84.0.0/24", "10.84.0.128/25", "10.84.0.0/16", "10.0.0.0/8", "10.84.0.77/24"}) {
        SCOPED_TRACE(subnet);
        expect_error(create(create_body("clash", subnet)), 409, "overlaps");
    }
    EXPECT_EQ(listed_names(), std::vector<std::string>{"base"});
    // Adjacent is fine.
    EXPECT_FALSE(create_ok(create_body("adjacent", "10.84.1.0/24")).empty());
}

TEST_F(NativeApiTest, GatewayOutsideSubnetIsBadRequest) {
    expect_error(create(create_body("gw", "10.85.0.0/24", "10.85.1.1")), 400, "not inside subnet");
    expect_error(create(create_body("gw", "10.85.0.0/24", "10.85.0.0")), 400, "network address");
    expect_error(create(create_body("gw", "10.85.0.0/24", "10.85.0.255")), 400,
                 "broadcast address");
    json range = create_body("gw", "10.85.0.0/24");
    range["IPAM"]["Config"][0]["IPRange"] = "10.86.0.0/25";
    expect_error(create(range), 400, "ip range");
    json aux = create_body("gw", "10.85.0.0/24");
    aux["IPAM"]["Config"][0]["AuxiliaryAddresses"] = {{"far", "10.99.0.1"}};
    expect_error(create(aux), 400, "auxiliary address");
    json no_subnet = create_body("gw");
    no_subnet["IPAM"]["Config"] = json::array({{{"Gateway", "10.85.0.1"}}});
    expect_error(create(no_subnet), 400, "subnet");
    EXPECT_TRUE(list().empty());
    EXPECT_TRUE(dp_->calls.empty());
}

TEST_F(NativeApiTest, InvalidCidrOrAddressIsBadRequest) {
    for (const std::string subnet :
         {"banana", "10.87.0.0", "10.87.0.0/33", "10.87.0/24", "10.87.0.256/24", "10.87.0.0/-1",
          "10.87.0.0/24/1", "10.87.0.0/31", "10.87.0.0/32"}) {
        SCOPED_TRACE(subnet);
        Reply reply = create(create_body("cidr", subnet));
        EXPECT_EQ(reply.status, 400) << describe(reply);
        EXPECT_NE(reply.message().find(subnet), std::string::npos) << reply.message();
    }
    expect_error(create(create_body("cidr", "10.87.0.0/24", "10.87.0.300")), 400, "10.87.0.300");
    EXPECT_TRUE(list().empty());
}

TEST_F(NativeApiTest, UnsupportedDriversAndDatapathAreNotImplemented) {
    json overlay = create_body("ov", "10.88.0.0/24");
    overlay["Driver"] = "overlay";
    expect_error(create(overlay), 501, "overlay");
    json ipam_driver = create_body("ov", "10.88.0.0/24");
    ipam_driver["IPAM"]["Driver"] = "dhcp";
    expect_error(create(ipam_driver), 501, "dhcp");
    json two_configs = create_body("ov", "10.88.0.0/24");
    two_configs["IPAM"]["Config"].push_back({{"Subnet", "10.89.0.0/24"}});
    expect_error(create(two_configs), 501, "one IPv4 IPAM configuration");
    json bpf = create_body("ov", "10.88.0.0/24");
    bpf["Options"]["bpfnet.datapath"] = "bpf";
    expect_error(create(bpf), 501, "bpfnet.datapath=bpf");
    EXPECT_TRUE(list().empty());
    EXPECT_TRUE(dp_->calls.empty());
}

// The whole message, for fields inside other fields: the path says which value to fix.
TEST_F(NativeApiTest, NestedFieldErrorsNameTheFieldByItsPath) {
    struct Case {
        std::string target, body, message;
    };
    const std::vector<Case> cases = {
        {"/v1/networks/create", R"({"Name": "x", "IPAM": {"Config": [{"Subnet": 10}]}})",
         "field \"IPAM.Config[0].Subnet\" must be a string"},
        {"/v1/networks/create", R"({"Name": "x", "IPAM": {"Config": [5]}})",
         "field \"IPAM.Config[0]\" must be an object"},
        {"/v1/networks/create", R"({"Name": "x", "IPAM": {"Config": {}}})",
         "field \"IPAM.Config\" must be an array"},
        {"/v1/networks/create",
         R"({"Name": "x", "IPAM": {"Config": [{"AuxiliaryAddresses": {"r": false}}]}})",
         "field \"IPAM.Config[0].AuxiliaryAddresses\": value of \"r\" must be a string"},
        {"/v1/networks/create", R"({"Name": "x", "Options": {"a": 1}})",
         "field \"Options\": value of \"a\" must be a string"},
        {"/v1/networks/net/connect",
         R"({"Container": "box", "EndpointConfig": {"Aliases": ["web", 1]}})",
         "field \"EndpointConfig.Aliases[1]\" must be a string"},
        {"/v1/networks/net/connect",
         R"({"Container": "box", "EndpointConfig": {"IPAMConfig": {"IPv4Address": 1}}})",
         "field \"EndpointConfig.IPAMConfig.IPv4Address\" must be a string"},
        {"/v1/networks/net/connect",
         R"({"Container": "box", "EndpointConfig": {"DriverOpts": {"k": 1}}})",
         "field \"EndpointConfig.DriverOpts\": value of \"k\" must be a string"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.body);
        Reply reply = call("POST", c.target, c.body);
        EXPECT_EQ(reply.status, 400) << describe(reply);
        EXPECT_EQ(reply.message(), c.message);
    }
    // Settings of the wrong shape that have always been ignored still are.
    ASSERT_FALSE(create_ok(create_body("net", "10.93.0.0/24")).empty());
    for (const char* body :
         {R"({"Container": "ghost-box", "EndpointConfig": 5})",
          R"({"Container": "ghost-box", "EndpointConfig": {"IPAMConfig": []}})"}) {
        expect_error(call("POST", "/v1/networks/net/connect", body), 404, "ghost-box");
    }
    expect_error(call("POST", "/v1/networks/net/disconnect",
                      R"({"Container": "ghost-box", "Force": "yes"})"),
                 404, "ghost-box");
}

TEST_F(NativeApiTest, InvalidOptionValuesAreBadRequest) {
    struct Case {
        std::string key, value;
    };
    const std::vector<Case> cases = {
        {"com.docker.network.bridge.enable_icc", "maybe"},
        {"com.docker.network.bridge.enable_icc", ""},
        {"com.docker.network.bridge.enable_ip_masquerade", "yes"},
        {"com.docker.network.driver.mtu", "abc"},
        {"com.docker.network.driver.mtu", "67"},
        {"com.docker.network.bridge.host_binding_ipv4", "1.2.3"},
        {"com.docker.network.bridge.name", "a/b"},
        {"com.docker.network.bridge.name", "much-too-long-bridge"},
        {"bpfnet.datapath", "turbo"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.key + "=" + c.value);
        json body = create_body("opts", "10.90.0.0/24");
        body["Options"][c.key] = c.value;
        expect_error(create(body), 400, c.key);
    }
    EXPECT_TRUE(list().empty());
    EXPECT_TRUE(dp_->calls.empty());
}

TEST_F(NativeApiTest, BridgeNameTakenIsConflict) {
    json first = create_body("one", "10.91.0.0/24");
    first["Options"]["com.docker.network.bridge.name"] = "br-mine";
    std::string id = create_ok(first);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(dp_->networks.at(id).network.bridge_name, "br-mine");
    json second = create_body("two", "10.91.1.0/24");
    second["Options"]["com.docker.network.bridge.name"] = "br-mine";
    expect_error(create(second), 409, "br-mine");
}

TEST_F(NativeApiTest, UnknownNetworkIsNotFound) {
    expect_error(call("GET", "/v1/networks/ghost"), 404, "ghost");
    expect_error(call("DELETE", "/v1/networks/ghost"), 404, "ghost");
    expect_error(call("POST", "/v1/networks/ghost/connect", R"({"Container": "box"})"), 404,
                 "ghost");
    expect_error(call("POST", "/v1/networks/ghost/disconnect", R"({"Container": "box"})"), 404,
                 "ghost");
    EXPECT_TRUE(dp_->calls.empty());
}

TEST_F(NativeApiTest, UnknownRoutesAreNotFound) {
    expect_error(call("GET", "/v1/nothing"), 404, "no such API endpoint");
    expect_error(call("PUT", "/v1/networks"), 404, "no such API endpoint");
    expect_error(call("POST", "/v1/networks"), 404, "no such API endpoint");
    expect_error(call("GET", "/v1/networks/a/b/c/d"), 404, "no such API endpoint");
    expect_error(call("PATCH", "/v1/networks/x"), 404, "no such API endpoint");
    for (const std::string target :
         {"/v2/networks", "/", "", "/networks", "v1x/version", "/version", "/V1/version"}) {
        SCOPED_TRACE(target);
        expect_error(call("GET", target), 404, "no such API path");
    }
}

TEST_F(NativeApiTest, ConnectErrorPaths) {
    ASSERT_FALSE(create_ok(create_body("net", "10.92.0.0/24")).empty());
    dp_->calls.clear();
    expect_error(call("POST", "/v1/networks/net/connect", "{}"), 400, "Container");
    expect_error(call("POST", "/v1/networks/net/connect", ""), 400, "Container");
    expect_error(call("POST", "/v1/networks/net/connect", R"({"Container": ""})"), 400,
                 "Container");
    expect_error(call("POST", "/v1/networks/net/connect", R"({"Container": 5})"), 400, "Container");
    expect_error(call("POST", "/v1/networks/net/connect",
                      R"({"Container": "box", "EndpointConfig": {"Aliases": "web"}})"),
                 400, "Aliases");
    expect_error(call("POST", "/v1/networks/net/connect",
                      R"({"Container": "box", "EndpointConfig": {"IPAMConfig":
                          {"IPv4Address": "10.92.0.999"}}})"),
                 400, "10.92.0.999");
    expect_error(call("POST", "/v1/networks/net/connect", R"({"Container": "ghost-box"})"), 404,
                 "sandbox ghost-box not found");
    expect_error(call("POST", "/v1/networks/net/disconnect", "{}"), 400, "Container");
    expect_error(call("POST", "/v1/networks/net/disconnect", R"({"Container": "ghost-box"})"), 404,
                 "ghost-box");
    expect_error(call("GET", "/v1/sandboxes/ghost-box"), 404, "ghost-box");
    EXPECT_TRUE(dp_->calls.empty());
}

// Sandboxes recorded straight in the store (no netns needed): connect only drives the datapath.
TEST_F(NativeApiTest, ConnectAndDisconnectWithRecordedSandbox) {
    std::string id = create_ok(create_body("net", "10.93.0.0/24"));
    ASSERT_FALSE(id.empty());
    Sandbox box = make_sandbox("box");
    ASSERT_NO_FATAL_FAILURE(write_records({}, {box}));

    Reply connected = call("POST", "/v1/networks/net/connect",
                           R"({"Container": "box", "EndpointConfig": {"Aliases": ["web"]}})");
    ASSERT_EQ(connected.status, 200) << describe(connected);
    EXPECT_EQ(connected.body["IPAddress"], "10.93.0.2");
    EXPECT_EQ(connected.body["MacAddress"], "02:42:0a:5d:00:02");
    EXPECT_EQ(connected.body["Interface"], "eth0");
    std::string endpoint_id = connected.body["EndpointID"].get<std::string>();
    ASSERT_EQ(dp_->endpoints.count(endpoint_id), 1u);
    EXPECT_TRUE(dp_->endpoints.at(endpoint_id).default_route);
    EXPECT_EQ(dp_->endpoints.at(endpoint_id).aliases, std::vector<std::string>{"web"});

    expect_error(call("POST", "/v1/networks/net/connect", R"({"Container": "box"})"), 409,
                 "already exists");
    Reply inspect = call("GET", "/v1/networks/net");
    ASSERT_EQ(inspect.status, 200);
    ASSERT_TRUE(inspect.body["Containers"].contains(box.id)) << inspect.raw;
    EXPECT_EQ(inspect.body["Containers"][box.id]["Name"], "box");
    EXPECT_EQ(inspect.body["Containers"][box.id]["IPv4Address"], "10.93.0.2/24");
    Reply sandbox = call("GET", "/v1/sandboxes/box");
    ASSERT_EQ(sandbox.status, 200);
    EXPECT_EQ(sandbox.body["Networks"]["net"]["IPAddress"], "10.93.0.2");

    // In use: neither DELETE nor prune removes it.
    expect_error(call("DELETE", "/v1/networks/net"), 409, "active endpoints");
    Reply pruned = call("POST", "/v1/networks/prune");
    ASSERT_EQ(pruned.status, 200) << describe(pruned);
    EXPECT_EQ(pruned.body["NetworksDeleted"], json::array());
    EXPECT_FALSE(dp_->was_removed(id));

    Reply disconnected = call("POST", "/v1/networks/net/disconnect", R"({"Container": "box"})");
    ASSERT_EQ(disconnected.status, 200) << describe(disconnected);
    EXPECT_EQ(dp_->endpoints.count(endpoint_id), 0u);
    ASSERT_EQ(dp_->removed_endpoints.size(), 1u);
    EXPECT_EQ(dp_->removed_endpoints[0].id, endpoint_id);
    expect_error(call("POST", "/v1/networks/net/disconnect", R"({"Container": "box"})"), 404,
                 "not connected");
    EXPECT_EQ(call("DELETE", "/v1/networks/net").status, 204);
}

TEST_F(NativeApiTest, EnsureEndpointFailureRollsBackTheEndpoint) {
    ASSERT_FALSE(create_ok(create_body("net", "10.94.0.0/24")).empty());
    Sandbox box = make_sandbox("box");
    ASSERT_NO_FATAL_FAILURE(write_records({}, {box}));

    dp_->fail_next_ensure_endpoint = Error{ErrorKind::Internal, "veth exploded"};
    expect_error(call("POST", "/v1/networks/net/connect", R"({"Container": "box"})"), 500,
                 "veth exploded");
    ASSERT_EQ(dp_->removed_endpoints.size(), 1u);  // the half-made pair was cleaned up
    EXPECT_TRUE(dp_->endpoints.empty());
    Reply inspect = call("GET", "/v1/networks/net");
    EXPECT_EQ(inspect.body["Containers"], json::object());

    // Nothing leaked: the same address is handed out again.
    Reply connected = call("POST", "/v1/networks/net/connect", R"({"Container": "box"})");
    ASSERT_EQ(connected.status, 200) << describe(connected);
    EXPECT_EQ(connected.body["IPAddress"], "10.94.0.2");
}

// ---------------------------------------------------------------------------------------------
// Rollback of failed creates

TEST_F(NativeApiTest, EnsureNetworkFailureRollsBackAndNameCanBeReused) {
    ASSERT_FALSE(create_ok(create_body("keep", "10.95.0.0/24")).empty());
    dp_->calls.clear();
    dp_->fail_next_ensure_network = Error{ErrorKind::Internal, "bridge exploded"};
    expect_error(create(create_body("broken", "10.95.1.0/24")), 500, "bridge exploded");

    EXPECT_EQ(listed_names(), std::vector<std::string>{"keep"});
    ASSERT_EQ(dp_->removed_networks.size(), 1u);  // whatever was half-built is removed
    EXPECT_EQ(dp_->removed_networks[0].name, "broken");
    EXPECT_EQ(dp_->policy_names(), std::vector<std::string>{"keep"});
    expect_error(call("GET", "/v1/networks/broken"), 404, "broken");

    // Name and subnet are free again.
    std::string id = create_ok(create_body("broken", "10.95.1.0/24"));
    ASSERT_FALSE(id.empty());
    EXPECT_TRUE(dp_->has_network(id));
    EXPECT_EQ(dp_->policy_names(), (std::vector<std::string>{"keep", "broken"}));

    // The rollback was durable: a restart finds only the two good networks.
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(listed_names(), (std::vector<std::string>{"keep", "broken"}));
}

TEST_F(NativeApiTest, ErrorKindsFromTheDatapathMapToStatusCodes) {
    struct Case {
        ErrorKind kind;
        int status;
    };
    for (const auto& c : std::vector<Case>{{ErrorKind::InvalidArgument, 400},
                                           {ErrorKind::NotFound, 404},
                                           {ErrorKind::Conflict, 409},
                                           {ErrorKind::Exhausted, 409},
                                           {ErrorKind::Unsupported, 501},
                                           {ErrorKind::Internal, 500}}) {
        SCOPED_TRACE(to_string(c.kind));
        dp_->fail_next_ensure_network = Error{c.kind, "injected"};
        expect_error(create(create_body("mapped", "10.96.0.0/24")), c.status, "injected");
        EXPECT_TRUE(list().empty());
    }
}

TEST_F(NativeApiTest, SyncPolicyFailureRollsBackTheNetwork) {
    ASSERT_FALSE(create_ok(create_body("keep", "10.97.0.0/24")).empty());
    dp_->fail_next_sync_policy = Error{ErrorKind::Unsupported, "no nftables"};
    expect_error(create(create_body("nopolicy", "10.97.1.0/24")), 501, "no nftables");
    EXPECT_EQ(listed_names(), std::vector<std::string>{"keep"});
    ASSERT_EQ(dp_->removed_networks.size(), 1u);
    EXPECT_EQ(dp_->removed_networks[0].name, "nopolicy");
    EXPECT_EQ(dp_->networks.size(), 1u);
    EXPECT_EQ(dp_->policy_names(), std::vector<std::string>{"keep"});  // re-synced without it
    EXPECT_FALSE(create_ok(create_body("nopolicy", "10.97.1.0/24")).empty());
}

// ---------------------------------------------------------------------------------------------
// Removing

TEST_F(NativeApiTest, DeleteRemovesNetwork) {
    std::string gone = create_ok(create_body("gone", "10.98.0.0/24"));
    std::string stays = create_ok(create_body("stays", "10.98.1.0/24"));
    ASSERT_FALSE(gone.empty());
    ASSERT_FALSE(stays.empty());
    dp_->calls.clear();

    Reply deleted = call("DELETE", "/v1/networks/gone");
    EXPECT_EQ(deleted.status, 204) << describe(deleted);
    EXPECT_TRUE(deleted.raw.empty());
    EXPECT_TRUE(dp_->was_removed(gone));
    EXPECT_FALSE(dp_->has_network(gone));
    EXPECT_EQ(dp_->policy_names(), std::vector<std::string>{"stays"});
    // Policy first (nothing may still forward to the bridge), then the bridge.
    EXPECT_EQ(dp_->calls,
              (std::vector<std::string>{"sync_policy [stays]", "remove_network " + gone}));
    EXPECT_EQ(listed_names(), std::vector<std::string>{"stays"});
    expect_error(call("GET", "/v1/networks/gone"), 404, "gone");
    expect_error(call("DELETE", "/v1/networks/gone"), 404, "gone");

    // By ID prefix too; the subnet is free afterwards.
    EXPECT_EQ(call("DELETE", "/v1/networks/" + stays.substr(0, 10)).status, 204);
    EXPECT_TRUE(list().empty());
    EXPECT_TRUE(dp_->last_policy.empty());
    EXPECT_FALSE(create_ok(create_body("again", "10.98.0.0/24")).empty());
}

TEST_F(NativeApiTest, FailedRemoveLeavesNetworkDeletingAndCanBeRetried) {
    std::string id = create_ok(create_body("sticky", "10.99.0.0/24"));
    ASSERT_FALSE(id.empty());
    dp_->fail_next_remove_network = Error{ErrorKind::Internal, "device busy"};
    expect_error(call("DELETE", "/v1/networks/sticky"), 500, "device busy");
    Reply inspect = call("GET", "/v1/networks/sticky");
    ASSERT_EQ(inspect.status, 200);
    EXPECT_EQ(inspect.body["BpfNet"]["State"], "deleting");
    EXPECT_FALSE(dp_->policy_includes(id));

    EXPECT_EQ(call("DELETE", "/v1/networks/sticky").status, 204);
    EXPECT_TRUE(dp_->was_removed(id));
    EXPECT_TRUE(list().empty());
}

TEST_F(NativeApiTest, PruneRemovesNetworksWithoutEndpoints) {
    Reply empty = call("POST", "/v1/networks/prune");
    ASSERT_EQ(empty.status, 200) << describe(empty);
    EXPECT_EQ(empty.body["NetworksDeleted"], json::array());

    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(create_ok(
            create_body("p" + std::to_string(i), "10.100." + std::to_string(i) + ".0/24")));
    }
    std::string used = create_ok(create_body("used", "10.100.9.0/24"));
    Sandbox box = make_sandbox("box");
    ASSERT_NO_FATAL_FAILURE(write_records({}, {box}));
    ASSERT_EQ(call("POST", "/v1/networks/used/connect", R"({"Container": "box"})").status, 200);

    Reply pruned = call("POST", "/v1/networks/prune");
    ASSERT_EQ(pruned.status, 200) << describe(pruned);
    EXPECT_EQ(pruned.body["NetworksDeleted"], json({"p0", "p1", "p2"}));
    for (const auto& id : ids) EXPECT_TRUE(dp_->was_removed(id)) << id;
    EXPECT_FALSE(dp_->was_removed(used));
    EXPECT_EQ(listed_names(), std::vector<std::string>{"used"});
    EXPECT_EQ(dp_->policy_names(), std::vector<std::string>{"used"});
}

// ---------------------------------------------------------------------------------------------
// Restart and reconcile

TEST_F(NativeApiTest, RestartReconcileEnsuresNetworksAgain) {
    std::string id = create_ok(create_body("persist", "10.101.0.0/24"));
    json internal = create_body("inner", "10.101.1.0/24");
    internal["Internal"] = true;
    internal["Options"]["com.docker.network.driver.mtu"] = "1400";
    std::string inner = create_ok(internal);
    ASSERT_FALSE(id.empty());
    ASSERT_FALSE(inner.empty());

    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_TRUE(dp_->calls.empty()) << "the service must not act before reconcile()";
    ASSERT_OK(service_->reconcile());
    EXPECT_TRUE(dp_->has_network(id));
    ASSERT_TRUE(dp_->has_network(inner));
    EXPECT_TRUE(dp_->networks.at(inner).network.internal);
    EXPECT_EQ(dp_->networks.at(inner).options.mtu, 1400);
    EXPECT_EQ(dp_->policy_names(), (std::vector<std::string>{"persist", "inner"}));
    ASSERT_EQ(dp_->garbage_keeps.size(), 1u);
    EXPECT_EQ(dp_->garbage_keeps[0],
              (std::set<std::string>{"bn-" + id.substr(0, 12), "bn-" + inner.substr(0, 12)}));
    EXPECT_TRUE(dp_->removed_networks.empty());
    EXPECT_EQ(listed_names(), (std::vector<std::string>{"persist", "inner"}));

    // Reconciling twice is harmless.
    ASSERT_OK(service_->reconcile());
    EXPECT_EQ(dp_->networks.size(), 2u);
    EXPECT_TRUE(dp_->removed_networks.empty());
}

TEST_F(NativeApiTest, ReconcileRollsBackCreatingAndFinishesDeletingNetworks) {
    Network ready = make_network("ready", "10.102.0.0/24", Lifecycle::Ready);
    Network creating = make_network("halfmade", "10.102.1.0/24", Lifecycle::Creating);
    Network deleting = make_network("leaving", "10.102.2.0/24", Lifecycle::Deleting);
    ASSERT_NO_FATAL_FAILURE(write_records({ready, creating, deleting}, {}));

    // Before reconcile the interrupted ones are visible as such and cannot be used.
    Reply half = call("GET", "/v1/networks/halfmade");
    ASSERT_EQ(half.status, 200) << describe(half);
    EXPECT_EQ(half.body["BpfNet"]["State"], "creating");
    Sandbox box = make_sandbox("box");
    ASSERT_NO_FATAL_FAILURE(write_records({}, {box}));
    expect_error(call("POST", "/v1/networks/halfmade/connect", R"({"Container": "box"})"), 409,
                 "being created");
    expect_error(call("POST", "/v1/networks/leaving/connect", R"({"Container": "box"})"), 409,
                 "being removed");
    // reconcile() checks Ready sandboxes' namespaces (re-creating them needs root); this test is
    // about networks only, so the sandbox goes before the fresh service reconciles.
    stop();
    {
        auto store = open_sqlite_store(db_path());
        ASSERT_OK(store);
        ASSERT_OK((*store)->delete_sandbox(box.id));
    }
    ASSERT_NO_FATAL_FAILURE(start());

    ASSERT_OK(service_->reconcile());
    EXPECT_TRUE(dp_->was_removed(creating.id));
    EXPECT_TRUE(dp_->was_removed(deleting.id));
    EXPECT_FALSE(dp_->was_removed(ready.id));
    EXPECT_TRUE(dp_->has_network(ready.id));
    EXPECT_FALSE(dp_->has_network(creating.id));
    EXPECT_EQ(dp_->policy_names(), std::vector<std::string>{"ready"});
    EXPECT_EQ(listed_names(), std::vector<std::string>{"ready"});
    ASSERT_EQ(dp_->garbage_keeps.size(), 1u);
    EXPECT_EQ(dp_->garbage_keeps[0], std::set<std::string>{ready.bridge_name});

    // Removed from the store for good, and the names and subnets are free again.
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(listed_names(), std::vector<std::string>{"ready"});
    EXPECT_FALSE(create_ok(create_body("halfmade", "10.102.1.0/24")).empty());
    EXPECT_FALSE(create_ok(create_body("leaving", "10.102.2.0/24")).empty());
}

TEST_F(NativeApiTest, ReconcileFailureIsReportedAndRetried) {
    std::string id = create_ok(create_body("flaky", "10.103.0.0/24"));
    ASSERT_NO_FATAL_FAILURE(restart());
    dp_->fail_next_ensure_network = Error{ErrorKind::Internal, "netlink hiccup"};
    Status first = service_->reconcile();
    ASSERT_FALSE(first.ok());
    EXPECT_NE(first.error().message.find("netlink hiccup"), std::string::npos);
    ASSERT_OK(service_->reconcile());
    EXPECT_TRUE(dp_->has_network(id));
    EXPECT_EQ(listed_names(), std::vector<std::string>{"flaky"});
}

// ---------------------------------------------------------------------------------------------
// Status and version

TEST_F(NativeApiTest, VersionAndStatus) {
    Reply version = call("GET", "/v1/version");
    ASSERT_EQ(version.status, 200) << describe(version);
    EXPECT_EQ(version.body["Version"], BPFNET_VERSION);
    EXPECT_EQ(version.body["Instance"], kInstance);
    EXPECT_EQ(version.body["ApiVersion"], "1");

    std::string id = create_ok(create_body("shown", "10.104.0.0/24"));
    Reply status = call("GET", "/v1/status");
    ASSERT_EQ(status.status, 200) << describe(status);
    EXPECT_EQ(status.body["Version"], BPFNET_VERSION);
    EXPECT_EQ(status.body["Instance"], kInstance);
    EXPECT_EQ(status.body["Store"], "sqlite");
    EXPECT_EQ(status.body["StateDir"], (dir_ / "state").string());
    EXPECT_TRUE(status.body["Probe"].is_object()) << status.raw;
    ASSERT_EQ(status.body["Networks"].size(), 1u) << status.raw;
    EXPECT_EQ(status.body["Networks"][0]["Name"], "shown");
    EXPECT_EQ(status.body["Networks"][0]["Id"], id);
    EXPECT_EQ(status.body["Networks"][0]["Datapath"], "kernel");
    EXPECT_EQ(status.body["Networks"][0]["State"], "ready");
    EXPECT_EQ(status.body["Sandboxes"], 0);
    EXPECT_EQ(status.body["Endpoints"], 0);
    // The capabilities this process holds, as the kernel reports them, by name.
    auto caps = read_process_capabilities();
    ASSERT_TRUE(caps.ok()) << caps.error().message;
    EXPECT_EQ(status.body["Capabilities"], capability_names(caps->effective)) << status.raw;
    EXPECT_EQ(status.body["NoNewPrivs"], caps->no_new_privs) << status.raw;

    // A query string or a (ignored) body does not matter for GETs.
    EXPECT_EQ(call("GET", "/v1/version?x=1").status, 200);
    EXPECT_EQ(call("GET", "/v1/status", "{}").status, 200);
}

// ---------------------------------------------------------------------------------------------
// Robustness

// Fixed so CI runs are reproducible; BPFNET_FUZZ_SEED=<n> (or "random") explores further.
uint32_t fuzz_seed() {
    const char* env = std::getenv("BPFNET_FUZZ_SEED");
    if (env == nullptr || *env == '\0') return 20240601;
    if (std::string_view(env) == "random") return std::random_device{}();
    return static_cast<uint32_t>(std::strtoul(env, nullptr, 0));
}

class BodyFuzzer {
  public:
    explicit BodyFuzzer(uint32_t seed) : rng_(seed) {}

    std::string next(int iteration) {
        switch (pick(4)) {
            case 0:
                return mutate(valid_body(iteration).dump());
            case 1:
                return random_fields(iteration).dump();
            case 2:
                return valid_body(iteration).dump();
            default: {
                // A valid body with one field replaced by a random value.
                json body = valid_body(iteration);
                static const char* const kPaths[] = {"/Name",
                                                     "/Driver",
                                                     "/Internal",
                                                     "/Options",
                                                     "/Labels",
                                                     "/IPAM",
                                                     "/IPAM/Driver",
                                                     "/IPAM/Config",
                                                     "/IPAM/Config/0",
                                                     "/IPAM/Config/0/Subnet",
                                                     "/IPAM/Config/0/Gateway",
                                                     "/IPAM/Config/0/IPRange",
                                                     "/IPAM/Config/0/AuxiliaryAddresses"};
                json::json_pointer ptr(kPaths[pick(std::size(kPaths))]);
                if (body.contains(ptr.parent_pointer())) body[ptr] = random_value(2);
                return body.dump();
            }
        }
    }

  private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

    std::string random_string() {
        static const std::vector<std::string> kInteresting = {
            "",
            "bridge",
            "default",
            "10.110.0.0/24",
            "10.110.0.1",
            "0.0.0.0/0",
            "10.110.0.0/30",
            "255.255.255.255/32",
            "1.2.3.4/33",
            "true",
            "bpf",
            "kernel",
            "auto",
            "-x",
            "a b",
            "com.docker.network.bridge.enable_icc",
            "bpfnet.datapath",
            "ü",
            std::string(300, 'a'),
            std::string("nul\0byte", 8),
            "\xe2\x82\xac",
            "%ff",
            "../..",
            "{}"};
        if (pick(3) != 0) return kInteresting[pick(kInteresting.size())];
        std::string s(pick(20), ' ');
        for (auto& c : s) c = static_cast<char>(0x20 + pick(0x5f));
        return s;
    }

    json random_value(int depth) {
        switch (pick(depth > 0 ? 8 : 6)) {
            case 0:
                return nullptr;
            case 1:
                return pick(2) == 1;
            case 2:
                return static_cast<int64_t>(rng_()) - (int64_t{1} << 31);
            case 3:
                return std::uniform_real_distribution<double>(-1e300, 1e300)(rng_);
            case 4:
            case 5:
                return random_string();
            case 6: {
                json a = json::array();
                for (size_t i = pick(4); i > 0; --i) a.push_back(random_value(depth - 1));
                return a;
            }
            default: {
                json o = json::object();
                for (size_t i = pick(4); i > 0; --i) o[random_string()] = random_value(depth - 1);
                return o;
            }
        }
    }

    // A few names and subnets, so duplicates and overlaps happen too.
    json valid_body(int iteration) {
        json body = create_body("fuzz" + std::to_string(iteration % 7),
                                pick(4) == 0 ? "" : "10.110." + std::to_string(pick(6)) + ".0/24");
        if (pick(2) == 0) body["Options"]["com.docker.network.bridge.enable_icc"] = "false";
        if (pick(3) == 0) body["Labels"]["k"] = "v";
        if (pick(4) == 0 && !body["IPAM"]["Config"].empty()) {
            body["IPAM"]["Config"][0]["IPRange"] = body["IPAM"]["Config"][0]["Subnet"];
        }
        return body;
    }

    json random_fields(int iteration) {
        json body = json::object();
        static const char* const kFields[] = {"Name",    "Driver", "Internal",
                                              "Options", "Labels", "IPAM"};
        for (const char* field : kFields) {
            switch (pick(4)) {
                case 0:
                    break;  // absent
                case 1:
                    body[field] = random_value(2);
                    break;
                default:
                    body[field] = valid_body(iteration)[field];
            }
        }
        return body;
    }

    std::string mutate(std::string text) {
        for (size_t n = 1 + pick(3); n > 0 && !text.empty(); --n) {
            size_t at = pick(text.size());
            switch (pick(5)) {
                case 0:
                    text.resize(at);  // truncate
                    break;
                case 1:
                    text[at] = static_cast<char>(pick(256));  // replace a byte
                    break;
                case 2:
                    text[at] = static_cast<char>(text[at] ^ (1 << pick(8)));  // flip a bit
                    break;
                case 3:
                    text.insert(at, 1, "{}[]\",:0\\"[pick(9)]);
                    break;
                default:
                    text.erase(at, 1 + pick(8));
            }
        }
        return text;
    }

    std::mt19937 rng_;
};

TEST_F(NativeApiTest, RandomCreateBodiesNeverThrowOrFailInternally) {
    const uint32_t seed = fuzz_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    BodyFuzzer fuzzer(seed);
    std::map<int, int> statuses;
    for (int i = 0; i < 2000; ++i) {
        std::string body = fuzzer.next(i);
        HttpResponse response;
        try {
            response = api_->handle(HttpRequest{"POST", "/v1/networks/create", {}, body});
        } catch (const std::exception& e) {
            ADD_FAILURE() << "exception " << e.what() << " for body " << body;
            continue;
        }
        ++statuses[response.status];
        const std::set<int> allowed = {201, 400, 409, 501};
        if (!allowed.count(response.status)) {
            ADD_FAILURE() << "status " << response.status << " (" << response.body << ") for body "
                          << body;
        }
        auto parsed = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
        EXPECT_TRUE(parsed.is_object()) << response.body;
        if (response.status != 201) {
            EXPECT_TRUE(parsed.contains("message") && parsed["message"].is_string() &&
                        !parsed["message"].get<std::string>().empty())
                << response.body;
        }
        if (i % 40 == 39) {
            EXPECT_EQ(call("POST", "/v1/networks/prune").status, 200);
        }
    }
    // Every kind of outcome happened (the mix is wide enough to be a useful test).
    EXPECT_GT(statuses[201], 50);
    EXPECT_GT(statuses[400], 300);
    EXPECT_GT(statuses[409], 10);
    EXPECT_GT(statuses[501], 0);

    // Whatever happened, the store and the datapath agree: every listed network is ready and
    // built, and nothing was built that is not listed.
    std::set<std::string> listed;
    for (const auto& n : list()) {
        EXPECT_EQ(n["BpfNet"]["State"], "ready");
        listed.insert(n["Id"].get<std::string>());
    }
    std::set<std::string> built;
    for (const auto& [id, spec] : dp_->networks) built.insert(id);
    EXPECT_EQ(listed, built);
}

TEST_F(NativeApiTest, DeeplyNestedBodyIsHandled) {
    std::string deep = "{\"Name\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
    expect_error(call("POST", "/v1/networks/create", deep), 400, "Name");
    std::string unbalanced = "{\"Name\": " + std::string(100000, '[') + "}";
    expect_error(call("POST", "/v1/networks/create", unbalanced), 400, "not valid JSON");
}

// Targets are raw bytes from the socket (Beast passes bytes >= 0x80 through); echoing them in a
// message must not make the JSON encoder throw.
TEST_F(NativeApiTest, NonUtf8TargetGivesJsonNotFound) {
    struct Case {
        std::string target;
        std::string needle;
    };
    const std::vector<Case> cases = {{"/v1/networks/\xff", "not found"},
                                     {"/x\xff", "no such API path"},
                                     {"/v1/\xc3", "no such API endpoint"}};
    for (const auto& c : cases) {
        SCOPED_TRACE(c.target);
        HttpResponse response;
        try {
            response = api_->handle(HttpRequest{"GET", c.target, {}, ""});
        } catch (const std::exception& e) {
            ADD_FAILURE() << "exception escaped NativeApi::handle: " << e.what();
            continue;
        }
        EXPECT_EQ(response.status, 404) << response.body;
        auto body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
        ASSERT_TRUE(body.is_object()) << response.body;
        EXPECT_NE(body.value("message", "").find(c.needle), std::string::npos) << response.body;
    }
}

// Any method on any path with any body: a clean JSON answer, never an exception or a 500.
// (POST /v1/sandboxes/... is left out: creating a sandbox makes a real network namespace.)
TEST_F(NativeApiTest, RandomRequestsNeverThrowOrFailInternally) {
    const uint32_t seed = fuzz_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    ASSERT_FALSE(create_ok(create_body("present", "10.111.0.0/24")).empty());
    const std::vector<std::string> methods = {"GET", "POST", "DELETE", "PUT", "HEAD", ""};
    const std::vector<std::string> segments = {
        "v1",      "networks", "create", "prune", "connect", "disconnect", "status", "version",
        "present", "ghost",    "",       "..",    "%20",     "\xff\xfe",   "v1?",    "a?b=c"};
    const std::vector<std::string> bodies = {
        "",
        "{}",
        "[]",
        "{",
        R"({"Container": "present"})",
        R"({"Container": 1, "Force": "yes"})",
        R"({"Container": "x", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.111.0.9"},
            "Aliases": ["a", 1]}})",
        create_body("other", "10.111.1.0/24").dump()};
    const std::set<int> allowed = {200, 201, 204, 400, 404, 409, 501};
    for (int i = 0; i < 1000; ++i) {
        std::string method = methods[pick(methods.size())];
        std::string target = pick(8) == 0 ? "" : "/";
        for (size_t n = pick(5); n > 0; --n) target += segments[pick(segments.size())] + "/";
        if (pick(2) == 0 && !target.empty()) target.pop_back();
        if (method == "POST" && target.find("sandboxes") != std::string::npos) continue;
        std::string body = bodies[pick(bodies.size())];
        HttpResponse response;
        try {
            response = api_->handle(HttpRequest{method, target, {}, body});
        } catch (const std::exception& e) {
            ADD_FAILURE() << "exception " << e.what() << " for " << method << " " << target;
            continue;
        }
        EXPECT_TRUE(allowed.count(response.status))
            << response.status << " " << response.body << " for " << method << " " << target << " "
            << body;
        if (response.status != 204) {
            EXPECT_FALSE(json::parse(response.body, nullptr, false).is_discarded())
                << response.body;
        }
    }
}

}  // namespace
}  // namespace bpfnet

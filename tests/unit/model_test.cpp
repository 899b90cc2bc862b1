#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace bpfnet {
namespace {

using nlohmann::json;

Network sample_network() {
    Network n;
    n.id = std::string(64, 'a');
    n.name = "web";
    n.driver = "bridge";
    n.options = {{"com.docker.network.driver.mtu", "9000"}, {"com.example.empty", ""}};
    n.labels = {{"team", "infra"}};
    n.ipam.subnet = *Cidr::parse("10.0.0.0/24");
    n.ipam.gateway = *Ipv4::parse("10.0.0.1");
    n.ipam.ip_range = *Cidr::parse("10.0.0.128/25");
    n.ipam.aux_addresses = {{"router", *Ipv4::parse("10.0.0.2")}};
    n.ipam.user_subnet = true;
    n.internal = true;
    n.created = "2024-01-02T03:04:05.123456789Z";
    n.state = Lifecycle::Ready;
    n.bridge_name = "br-aaaaaaaaaaaa";
    return n;
}

Endpoint sample_endpoint() {
    Endpoint e;
    e.id = std::string(64, 'b');
    e.network_id = std::string(64, 'a');
    e.sandbox_id = std::string(64, 'c');
    e.ifname = "eth1";
    e.host_ifname = "vethbbbbbbb";
    e.ip = *Ipv4::parse("10.0.0.3");
    e.mac = MacAddr::from_ipv4(e.ip);
    e.aliases = {"db", "primary"};
    e.default_route = true;
    e.created = "2024-01-02T03:04:05.000000001Z";
    e.state = Lifecycle::Deleting;
    return e;
}

Sandbox sample_sandbox() {
    Sandbox s;
    s.id = std::string(64, 'c');
    s.name = "box";
    s.netns_path = "/run/bpfnet/netns/box";
    s.created = "2024-01-02T03:04:05.000000000Z";
    s.state = Lifecycle::Creating;
    return s;
}

void expect_same(const IpamConfig& a, const IpamConfig& b) {
    EXPECT_EQ(a.driver, b.driver);
    EXPECT_EQ(a.subnet, b.subnet);
    EXPECT_EQ(a.gateway, b.gateway);
    EXPECT_EQ(a.ip_range, b.ip_range);
    EXPECT_EQ(a.aux_addresses, b.aux_addresses);
    EXPECT_EQ(a.user_subnet, b.user_subnet);
}

// Round-trips through text, as the store does.
template <typename T>
T round_trip(const T& value) {
    return json::parse(json(value).dump()).template get<T>();
}

TEST(Lifecycle, RoundTripsAndRejectsUnknown) {
    for (auto s : {Lifecycle::Creating, Lifecycle::Ready, Lifecycle::Deleting}) {
        auto parsed = parse_lifecycle(to_string(s));
        ASSERT_TRUE(parsed);
        EXPECT_EQ(*parsed, s);
    }
    EXPECT_FALSE(parse_lifecycle("Ready"));
    EXPECT_FALSE(parse_lifecycle(""));
}

TEST(ModelJson, NetworkRoundTrips) {
    Network n = sample_network();
    Network back = round_trip(n);
    EXPECT_EQ(back.id, n.id);
    EXPECT_EQ(back.name, n.name);
    EXPECT_EQ(back.driver, n.driver);
    EXPECT_EQ(back.options, n.options);
    EXPECT_EQ(back.labels, n.labels);
    expect_same(back.ipam, n.ipam);
    EXPECT_EQ(back.internal, n.internal);
    EXPECT_EQ(back.created, n.created);
    EXPECT_EQ(back.state, n.state);
    EXPECT_EQ(back.bridge_name, n.bridge_name);
}

TEST(ModelJson, NetworkWithoutRangeOrAuxRoundTrips) {
    Network n = sample_network();
    n.ipam.ip_range.reset();
    n.ipam.aux_addresses.clear();
    n.ipam.user_subnet = false;
    n.options.clear();
    n.labels.clear();
    json j = n;
    EXPECT_FALSE(j["ipam"].contains("ip_range"));
    Network back = round_trip(n);
    expect_same(back.ipam, n.ipam);
    EXPECT_TRUE(back.options.empty());
    EXPECT_TRUE(back.labels.empty());
}

TEST(ModelJson, EndpointRoundTrips) {
    Endpoint e = sample_endpoint();
    Endpoint back = round_trip(e);
    EXPECT_EQ(back.id, e.id);
    EXPECT_EQ(back.network_id, e.network_id);
    EXPECT_EQ(back.sandbox_id, e.sandbox_id);
    EXPECT_EQ(back.ifname, e.ifname);
    EXPECT_EQ(back.host_ifname, e.host_ifname);
    EXPECT_EQ(back.mac, e.mac);
    EXPECT_EQ(back.ip, e.ip);
    EXPECT_EQ(back.aliases, e.aliases);
    EXPECT_EQ(back.default_route, e.default_route);
    EXPECT_EQ(back.created, e.created);
    EXPECT_EQ(back.state, e.state);
}

TEST(ModelJson, SandboxRoundTrips) {
    Sandbox s = sample_sandbox();
    Sandbox back = round_trip(s);
    EXPECT_EQ(back.id, s.id);
    EXPECT_EQ(back.name, s.name);
    EXPECT_EQ(back.netns_path, s.netns_path);
    EXPECT_EQ(back.created, s.created);
    EXPECT_EQ(back.state, s.state);
}

TEST(ModelJson, UsesReadableTextForAddresses) {
    json n = sample_network();
    EXPECT_EQ(n["ipam"]["subnet"], "10.0.0.0/24");
    EXPECT_EQ(n["ipam"]["gateway"], "10.0.0.1");
    EXPECT_EQ(n["state"], "ready");
    json e = sample_endpoint();
    EXPECT_EQ(e["mac"], "02:42:0a:00:00:03");
    EXPECT_EQ(e["ip"], "10.0.0.3");
}

TEST(ModelJson, MalformedNetworkThrows) {
    json good = sample_network();
    auto broken = [&](auto mutate) {
        json j = good;
        mutate(j);
        return j;
    };
    std::vector<json> bad = {
        json::object(),
        json::array(),
        json("network"),
        broken([](json& j) { j.erase("id"); }),
        broken([](json& j) { j.erase("ipam"); }),
        broken([](json& j) { j.erase("state"); }),
        broken([](json& j) { j["id"] = 42; }),
        broken([](json& j) { j["state"] = "running"; }),
        broken([](json& j) { j["ipam"]["subnet"] = "10.0.0.0/33"; }),
        broken([](json& j) { j["ipam"]["subnet"] = "10.0.0.0"; }),
        broken([](json& j) { j["ipam"]["gateway"] = "10.0.0"; }),
        broken([](json& j) { j["ipam"]["ip_range"] = "junk"; }),
        broken([](json& j) { j["ipam"]["aux_addresses"]["router"] = "300.0.0.1"; }),
        broken([](json& j) { j["ipam"]["aux_addresses"]["router"] = 7; }),
        broken([](json& j) {
            j["options"] = json::array({1, 2});
        }),
        broken([](json& j) { j["internal"] = "yes"; }),
    };
    for (const auto& j : bad) EXPECT_ANY_THROW(j.get<Network>()) << j.dump();
}

TEST(ModelJson, MalformedEndpointThrows) {
    json good = sample_endpoint();
    for (const char* field :
         {"id", "network_id", "sandbox_id", "ifname", "host_ifname", "mac", "ip", "state"}) {
        json j = good;
        j.erase(field);
        EXPECT_ANY_THROW(j.get<Endpoint>()) << field;
    }
    for (auto [field, value] :
         std::vector<std::pair<const char*, json>>{{"mac", "02:42:0a:00:00"},
                                                   {"mac", "zz:42:0a:00:00:03"},
                                                   {"ip", "10.0.0.256"},
                                                   {"ip", 167772163},
                                                   {"aliases", "db"},
                                                   {"state", "gone"}}) {
        json j = good;
        j[field] = value;
        EXPECT_ANY_THROW(j.get<Endpoint>()) << field << "=" << value.dump();
    }
}

TEST(ModelJson, MalformedSandboxThrows) {
    json good = sample_sandbox();
    for (const char* field : {"id", "name", "netns_path", "state"}) {
        json j = good;
        j.erase(field);
        EXPECT_ANY_THROW(j.get<Sandbox>()) << field;
    }
    json j = good;
    j["netns_path"] = nullptr;
    EXPECT_ANY_THROW(j.get<Sandbox>());
    EXPECT_ANY_THROW(json::parse("{\"id\": ").get<Sandbox>());
}

TEST(ModelJson, OptionalFieldsDefault) {
    json j = {{"id", "x"}, {"name", "n"}, {"netns_path", "/p"}, {"state", "creating"}};
    Sandbox s = j.get<Sandbox>();
    EXPECT_EQ(s.created, "");
    EXPECT_EQ(s.state, Lifecycle::Creating);
}

TEST(ModelTime, NowIsRfc3339WithNanoseconds) {
    std::string now = now_rfc3339();
    // 2024-01-02T03:04:05.123456789Z
    ASSERT_EQ(now.size(), 30u) << now;
    EXPECT_EQ(now[4], '-');
    EXPECT_EQ(now[10], 'T');
    EXPECT_EQ(now[19], '.');
    EXPECT_EQ(now.back(), 'Z');
    EXPECT_EQ(now.substr(20, 9).find_first_not_of("0123456789"), std::string::npos);
}

}  // namespace
}  // namespace bpfnet

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

Result<Network> decode(const json& j, Network*) {
    return network_from_json(j);
}
Result<Endpoint> decode(const json& j, Endpoint*) {
    return endpoint_from_json(j);
}
Result<Sandbox> decode(const json& j, Sandbox*) {
    return sandbox_from_json(j);
}
Result<AddressPool> decode(const json& j, AddressPool*) {
    return address_pool_from_json(j);
}

// What the model's decoder makes of `j`.
template <typename T>
Result<T> decode(const json& j) {
    return decode(j, static_cast<T*>(nullptr));
}

// Round-trips through text, as the store does.
template <typename T>
T round_trip(const T& value) {
    auto decoded = decode<T>(json::parse(json(value).dump()));
    EXPECT_TRUE(decoded.ok()) << decoded.error().message;
    return decoded.ok() ? *decoded : T{};
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

TEST(ModelJson, AddressPoolRoundTrips) {
    AddressPool p;
    p.id = "bpfnet/10.9.0.0/24";
    p.subnet = *Cidr::parse("10.9.0.0/24");
    p.ip_range = *Cidr::parse("10.9.0.128/25");
    p.allocated = {*Ipv4::parse("10.9.0.128"), *Ipv4::parse("10.9.0.200")};
    p.references = 3;
    p.created = "2024-01-02T03:04:05Z";
    AddressPool back = round_trip(p);
    EXPECT_EQ(back.id, p.id);
    EXPECT_EQ(back.subnet, p.subnet);
    EXPECT_EQ(back.ip_range, p.ip_range);
    EXPECT_EQ(back.allocated, p.allocated);
    EXPECT_EQ(back.references, 3);
    EXPECT_EQ(back.created, p.created);
    json j = p;
    j.erase("references");  // pools written before references were counted have one
    EXPECT_EQ(decode<AddressPool>(j)->references, 1);
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

TEST(ModelJson, MalformedNetworkFails) {
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
    for (const auto& j : bad) EXPECT_FALSE(decode<Network>(j).ok()) << j.dump();
}

TEST(ModelJson, MalformedEndpointFails) {
    json good = sample_endpoint();
    for (const char* field :
         {"id", "network_id", "sandbox_id", "ifname", "host_ifname", "mac", "ip", "state"}) {
        json j = good;
        j.erase(field);
        EXPECT_FALSE(decode<Endpoint>(j).ok()) << field;
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
        EXPECT_FALSE(decode<Endpoint>(j).ok()) << field << "=" << value.dump();
    }
}

TEST(ModelJson, MalformedSandboxFails) {
    json good = sample_sandbox();
    for (const char* field : {"id", "name", "netns_path", "state"}) {
        json j = good;
        j.erase(field);
        EXPECT_FALSE(decode<Sandbox>(j).ok()) << field;
    }
    json j = good;
    j["netns_path"] = nullptr;
    EXPECT_FALSE(decode<Sandbox>(j).ok());
}

// A corrupt record is reported with the path of the field to repair.
TEST(ModelJson, ErrorsNameTheFieldByItsPath) {
    auto message = [](const auto& result) {
        EXPECT_FALSE(result.ok());
        return result.ok() ? std::string() : result.error().message;
    };
    json n = sample_network();
    n["ipam"]["subnet"] = "10.0.0.0/33";
    EXPECT_EQ(message(decode<Network>(n)).rfind("field \"ipam.subnet\": ", 0), 0u)
        << message(decode<Network>(n));
    n = sample_network();
    n["ipam"]["aux_addresses"]["router"] = 7;
    EXPECT_EQ(message(decode<Network>(n)),
              "field \"ipam.aux_addresses\": value of \"router\" must be a string");
    n = sample_network();
    n["state"] = "running";
    EXPECT_EQ(message(decode<Network>(n)), "field \"state\": unknown lifecycle state \"running\"");
    n.erase("ipam");
    EXPECT_EQ(message(decode<Network>(n)), "missing field \"ipam\"");

    json e = sample_endpoint();
    e["ports"] = json::array({PortBinding{IpProto::Tcp, Ipv4{}, 8080, 80}});
    ASSERT_TRUE(decode<Endpoint>(e).ok());
    e["ports"][0]["host_port"] = 70000;
    EXPECT_EQ(message(decode<Endpoint>(e)),
              "field \"ports[0].host_port\" must be an integer from 0 to 65535");
    e["ports"][0] = "0.0.0.0:8080->80/tcp";
    EXPECT_EQ(message(decode<Endpoint>(e)), "field \"ports[0]\" must be an object");

    EXPECT_EQ(message(decode<Sandbox>(json::array({1, 2}))), "document must be a JSON object");
}

TEST(ModelJson, OptionalFieldsDefault) {
    json j = {{"id", "x"}, {"name", "n"}, {"netns_path", "/p"}, {"state", "creating"}};
    Sandbox s = *decode<Sandbox>(j);
    EXPECT_EQ(s.created, "");
    EXPECT_EQ(s.state, Lifecycle::Creating);
    EXPECT_EQ(s.mode, SandboxMode::Own);
    EXPECT_EQ(s.owner, Owner::Bpfnet);
    // null stands for a field left out.
    json n = sample_network();
    n["driver"] = nullptr;
    n["labels"] = nullptr;
    n["owner"] = nullptr;
    Network back = *decode<Network>(n);
    EXPECT_EQ(back.driver, "bridge");
    EXPECT_TRUE(back.labels.empty());
    EXPECT_EQ(back.owner, Owner::Bpfnet);
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

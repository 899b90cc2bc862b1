// Published-port parsing and allocation with Docker's rules.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/ports.h"

namespace bpfnet {
namespace {

Ipv4 ip(const char* text) {
    return *Ipv4::parse(text);
}

const PortInUse kNothingInUse = [](IpProto, Ipv4, uint16_t) { return false; };

std::vector<PortRequest> parsed(const char* text) {
    auto r = parse_publish(text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : std::vector<PortRequest>{};
}

TEST(Ports, ParsesDockersPublishForms) {
    auto simple = parsed("8080:80");
    ASSERT_EQ(simple.size(), 1u);
    EXPECT_EQ(simple[0].proto, IpProto::Tcp);
    EXPECT_EQ(simple[0].host_ip, Ipv4{});
    EXPECT_EQ(simple[0].host_first, 8080);
    EXPECT_EQ(simple[0].host_last, 8080);
    EXPECT_EQ(simple[0].container_port, 80);

    auto with_ip = parsed("127.0.0.1:5353:53/udp");
    ASSERT_EQ(with_ip.size(), 1u);
    EXPECT_EQ(with_ip[0].proto, IpProto::Udp);
    EXPECT_EQ(with_ip[0].host_ip, ip("127.0.0.1"));
    EXPECT_EQ(with_ip[0].host_first, 5353);

    auto ephemeral = parsed("80");
    EXPECT_EQ(ephemeral[0].host_first, 0);
    auto ip_ephemeral = parsed("10.0.0.1::80/sctp");
    EXPECT_EQ(ip_ephemeral[0].host_ip, ip("10.0.0.1"));
    EXPECT_EQ(ip_ephemeral[0].host_first, 0);
    EXPECT_EQ(ip_ephemeral[0].proto, IpProto::Sctp);

    // One container port, a host range: one port is picked from the range.
    auto pick = parsed("8000-8010:80");
    ASSERT_EQ(pick.size(), 1u);
    EXPECT_EQ(pick[0].host_first, 8000);
    EXPECT_EQ(pick[0].host_last, 8010);
    // Ranges of equal size map 1:1.
    auto one_to_one = parsed("9000-9002:80-82/udp");
    ASSERT_EQ(one_to_one.size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(one_to_one[i].container_port, 80 + i);
        EXPECT_EQ(one_to_one[i].host_first, 9000 + i);
        EXPECT_EQ(one_to_one[i].host_last, 9000 + i);
    }
    // A container range alone: each gets an ephemeral port.
    auto ephemeral_range = parsed("80-81");
    ASSERT_EQ(ephemeral_range.size(), 2u);
    EXPECT_EQ(ephemeral_range[1].host_first, 0);
}

TEST(Ports, RejectsMalformedSpecsWithAMessage) {
    for (const char* bad : {"", "http", "0", "70000", "8080:", "80/icmp", "a:b:c:d", "80-79",
                            "1.2.3:80:80", "9000-9001:80-82", "-80", "80/"}) {
        auto r = parse_publish(bad);
        ASSERT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
        EXPECT_EQ(r.error().kind, ErrorKind::InvalidArgument);
        EXPECT_FALSE(r.error().message.empty());
    }
}

TEST(Ports, FixedPortClashesWithOverlappingHostAddresses) {
    std::vector<PortBinding> taken = {{IpProto::Tcp, Ipv4{}, 8080, 80},
                                      {IpProto::Tcp, ip("127.0.0.1"), 9090, 90}};
    PortRange eph{40000, 40010};
    auto clash_any = allocate_ports(parsed("10.0.0.1:8080:80"), taken, kNothingInUse, eph);
    ASSERT_FALSE(clash_any.ok());
    EXPECT_EQ(clash_any.error().kind, ErrorKind::Conflict);
    EXPECT_NE(clash_any.error().message.find("8080"), std::string::npos);
    EXPECT_FALSE(allocate_ports(parsed("9090:90"), taken, kNothingInUse, eph).ok())
        << "0.0.0.0 overlaps 127.0.0.1";
    // Different address, different protocol: no clash.
    EXPECT_TRUE(allocate_ports(parsed("10.0.0.1:9090:90"), taken, kNothingInUse, eph).ok());
    EXPECT_TRUE(allocate_ports(parsed("8080:80/udp"), taken, kNothingInUse, eph).ok());
}

TEST(Ports, PortsInUseOnTheHostAreSkippedOrRefused) {
    PortInUse listening = [](IpProto proto, Ipv4, uint16_t port) {
        return proto == IpProto::Tcp && (port == 8000 || port == 40000);
    };
    PortRange eph{40000, 40010};
    auto fixed = allocate_ports(parsed("8000:80"), {}, listening, eph);
    ASSERT_FALSE(fixed.ok());
    EXPECT_NE(fixed.error().message.find("already allocated"), std::string::npos);
    auto ranged = allocate_ports(parsed("8000-8010:80"), {}, listening, eph);
    ASSERT_TRUE(ranged.ok());
    EXPECT_EQ(ranged->at(0).host_port, 8001);
    auto ephemeral = allocate_ports(parsed("80"), {}, listening, eph);
    ASSERT_TRUE(ephemeral.ok());
    EXPECT_EQ(ephemeral->at(0).host_port, 40001);
}

TEST(Ports, OneRequestNeverGetsTheSamePortTwice) {
    auto both = allocate_ports(parsed("80-81"), {}, kNothingInUse, PortRange{40000, 40010});
    ASSERT_TRUE(both.ok());
    EXPECT_NE(both->at(0).host_port, both->at(1).host_port);
    auto dup = allocate_ports({parsed("8080:80")[0], parsed("8080:81")[0]}, {}, kNothingInUse,
                              PortRange{40000, 40010});
    EXPECT_FALSE(dup.ok());
}

TEST(Ports, ExhaustedRangeIsReported) {
    std::vector<PortBinding> taken;
    for (uint16_t p = 40000; p <= 40002; ++p) taken.push_back({IpProto::Tcp, Ipv4{}, p, 1});
    auto r = allocate_ports(parsed("80"), taken, kNothingInUse, PortRange{40000, 40002});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, ErrorKind::Exhausted);
    // The top of the port space terminates.
    auto top = allocate_ports(parsed("65535:80"), {}, kNothingInUse, PortRange{65535, 65535});
    ASSERT_TRUE(top.ok());
    EXPECT_FALSE(allocate_ports(parsed("80"), *top, kNothingInUse, PortRange{65535, 65535}).ok());
}

TEST(Ports, EphemeralRangeFromSysctlText) {
    auto r = parse_port_range("32768\t60999\n");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first, 32768);
    EXPECT_EQ(r->last, 60999);
    EXPECT_FALSE(parse_port_range("60999 32768").ok());
    EXPECT_FALSE(parse_port_range("garbage").ok());
}

TEST(Ports, SnatPortRangeIsFirstDashLastAboveThePrivilegedPorts) {
    auto r = parse_snat_port_range("61000-65535");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first, 61000);
    EXPECT_EQ(r->last, 65535);
    EXPECT_TRUE(parse_snat_port_range("2000-2000").ok());
    for (const char* bad : {"61000", "65535-61000", "80-1000", "0-10", "a-b", "61000-70000", ""}) {
        auto e = parse_snat_port_range(bad);
        ASSERT_FALSE(e.ok()) << bad;
        EXPECT_EQ(e.error().kind, ErrorKind::InvalidArgument);
    }
    EXPECT_NE(parse_snat_port_range("80-1000").error().message.find("below 1024"),
              std::string::npos);
    // The default is clear of Linux's default ephemeral range; a host that widened it is not.
    EXPECT_FALSE(overlaps(kDefaultSnatPorts, PortRange{32768, 60999}));
    EXPECT_TRUE(overlaps(kDefaultSnatPorts, PortRange{1024, 65535}));
    EXPECT_TRUE(overlaps(PortRange{2000, 3000}, PortRange{3000, 4000}));
}

TEST(Ports, BindingJsonRoundTripAndDockerStyleText) {
    PortBinding b{IpProto::Udp, ip("127.0.0.1"), 5353, 53};
    EXPECT_EQ(b.str(), "127.0.0.1:5353->53/udp");
    nlohmann::json j = b;
    EXPECT_EQ(*port_binding_from_json(*JsonObject::root(j)), b);
    EXPECT_EQ(proto_from_number(132).value(), IpProto::Sctp);
    EXPECT_FALSE(proto_from_number(1).ok());
}

}  // namespace
}  // namespace bpfnet

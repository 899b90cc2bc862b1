#include <gtest/gtest.h>

#include "core/ipv4.h"

namespace bpfnet {
namespace {

Ipv4 ip(const char* text) {
    auto parsed = Ipv4::parse(text);
    EXPECT_TRUE(parsed) << text;
    return parsed ? *parsed : Ipv4{};
}

Cidr cidr(const char* text) {
    auto parsed = Cidr::parse(text);
    EXPECT_TRUE(parsed) << text;
    return parsed ? *parsed : Cidr{};
}

TEST(Ipv4, ParsesDottedQuadInHostOrder) {
    EXPECT_EQ(ip("10.0.0.2").value, 0x0a000002u);
    EXPECT_EQ(ip("0.0.0.0").value, 0u);
    EXPECT_EQ(ip("255.255.255.255").value, 0xffffffffu);
    EXPECT_EQ(ip("192.168.1.10").str(), "192.168.1.10");
}

TEST(Ipv4, RejectsJunk) {
    for (const char* junk :
         {"", "1.2.3", "1.2.3.4.5", "1.2.3.4.", ".1.2.3.4", "1..2.3", "01.2.3.4", "1.2.3.04",
          "256.0.0.1", "1.2.3.256", "1.2.3.-1", "1.2.3.+4", " 1.2.3.4", "1.2.3.4 ", "1.2. 3.4",
          "a.b.c.d", "0x1.2.3.4", "1.2.3.4/24", "99999999999.1.1.1"}) {
        auto parsed = Ipv4::parse(junk);
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(Ipv4, ErrorNamesTheInput) {
    auto parsed = Ipv4::parse("256.0.0.1");
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().message.find("256.0.0.1"), std::string::npos);
}

TEST(Ipv4, NetworkOrderRoundTrips) {
    Ipv4 a = ip("10.1.2.3");
    uint32_t be = a.network_order();
    const auto* bytes = reinterpret_cast<const uint8_t*>(&be);
    EXPECT_EQ(bytes[0], 10);
    EXPECT_EQ(bytes[3], 3);
    EXPECT_EQ(Ipv4::from_network_order(be), a);
}

TEST(Ipv4, OrdersNumerically) {
    EXPECT_LT(ip("9.255.255.255"), ip("10.0.0.0"));
    EXPECT_LT(ip("10.0.0.2"), ip("10.0.0.10"));
}

TEST(Cidr, ParsesAndKeepsHostBits) {
    Cidr c = cidr("10.0.0.5/24");
    EXPECT_EQ(c.addr, ip("10.0.0.5"));
    EXPECT_EQ(c.prefix_len, 24);
    EXPECT_FALSE(c.is_canonical());
    EXPECT_EQ(c.network(), ip("10.0.0.0"));
    EXPECT_EQ(c.broadcast(), ip("10.0.0.255"));
    EXPECT_EQ(c.masked().str(), "10.0.0.0/24");
    EXPECT_TRUE(c.masked().is_canonical());
    EXPECT_EQ(c.str(), "10.0.0.5/24");
    EXPECT_EQ(c.size(), 256u);
}

TEST(Cidr, PrefixLengthExtremes) {
    Cidr all = cidr("0.0.0.0/0");
    EXPECT_EQ(all.mask(), 0u);
    EXPECT_EQ(all.size(), uint64_t{1} << 32);
    EXPECT_EQ(all.broadcast(), ip("255.255.255.255"));
    EXPECT_TRUE(all.contains(ip("1.2.3.4")));

    Cidr host = cidr("1.2.3.4/32");
    EXPECT_EQ(host.mask(), 0xffffffffu);
    EXPECT_EQ(host.size(), 1u);
    EXPECT_EQ(host.network(), host.broadcast());
}

TEST(Cidr, RejectsJunk) {
    for (const char* junk : {"", "1.2.3.4/33", "1.2.3.4/", "/24", "1.2.3/24", "1.2.3.4/024",
                             "1.2.3.4/-1", "1.2.3.4/ 24", "1.2.3.4/24 ", " 1.2.3.4/24",
                             "1.2.3.4//24", "1.2.3.4/24/1", "256.0.0.0/8", "1.2.3.4/x"}) {
        auto parsed = Cidr::parse(junk);
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(Cidr, BareAddressOnlyWhenAllowed) {
    EXPECT_FALSE(Cidr::parse("1.2.3.4"));
    auto bare = Cidr::parse("1.2.3.4", true);
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->str(), "1.2.3.4/32");
    EXPECT_FALSE(Cidr::parse("1.2.3", true));
}

TEST(Cidr, ContainsAddress) {
    Cidr c = cidr("10.0.0.0/24");
    EXPECT_TRUE(c.contains(ip("10.0.0.0")));
    EXPECT_TRUE(c.contains(ip("10.0.0.255")));
    EXPECT_FALSE(c.contains(ip("10.0.1.0")));
    EXPECT_FALSE(c.contains(ip("9.255.255.255")));
    // Host bits in `addr` must not change what the prefix covers.
    EXPECT_TRUE(cidr("10.0.0.77/24").contains(ip("10.0.0.1")));
}

TEST(Cidr, ContainsPrefix) {
    Cidr outer = cidr("10.0.0.0/16");
    EXPECT_TRUE(outer.contains(cidr("10.0.5.0/24")));
    EXPECT_TRUE(outer.contains(outer));
    EXPECT_FALSE(outer.contains(cidr("10.0.0.0/8")));
    EXPECT_FALSE(outer.contains(cidr("10.1.0.0/24")));
    EXPECT_TRUE(outer.contains(cidr("10.0.255.255/32")));
}

TEST(Cidr, OverlapIsSymmetric) {
    struct Case {
        const char* a;
        const char* b;
        bool overlap;
    };
    for (const auto& c :
         {Case{"10.0.0.0/8", "10.1.0.0/16", true}, Case{"10.0.0.0/24", "10.0.0.128/25", true},
          Case{"10.0.0.0/24", "10.0.1.0/24", false}, Case{"172.17.0.0/16", "172.16.0.0/12", true},
          Case{"192.168.0.0/20", "192.168.16.0/20", false}, Case{"0.0.0.0/0", "1.2.3.4/32", true},
          Case{"10.0.0.5/24", "10.0.0.200/32", true}}) {
        EXPECT_EQ(cidr(c.a).overlaps(cidr(c.b)), c.overlap) << c.a << " vs " << c.b;
        EXPECT_EQ(cidr(c.b).overlaps(cidr(c.a)), c.overlap) << c.b << " vs " << c.a;
    }
}

TEST(MacAddr, FromIpv4FollowsDockerConvention) {
    EXPECT_EQ(MacAddr::from_ipv4(ip("10.0.0.2")).str(), "02:42:0a:00:00:02");
    EXPECT_EQ(MacAddr::from_ipv4(ip("172.17.255.254")).str(), "02:42:ac:11:ff:fe");
    auto mac = MacAddr::from_ipv4(ip("10.0.0.2"));
    EXPECT_FALSE(mac.is_multicast());
    EXPECT_FALSE(mac.is_zero());
}

TEST(MacAddr, ParsesAndPrintsLowercase) {
    auto mac = MacAddr::parse("02:42:AC:11:00:0A");
    ASSERT_TRUE(mac);
    EXPECT_EQ(mac->str(), "02:42:ac:11:00:0a");
    EXPECT_EQ(*mac, MacAddr::from_ipv4(ip("172.17.0.10")));
}

TEST(MacAddr, RejectsJunk) {
    for (const char* junk : {"", "02:42:ac:11:00", "02:42:ac:11:00:0", "02:42:ac:11:00:0a:",
                             "02-42-ac-11-00-0a", "02:42:ac:11:00:0g", "0242ac11000a00000",
                             " 2:42:ac:11:00:0a", "02:42:ac:11:00:+a", "02:42:ac:11:00:-1"}) {
        auto parsed = MacAddr::parse(junk);
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(MacAddr, MulticastAndZero) {
    EXPECT_TRUE(MacAddr{}.is_zero());
    EXPECT_TRUE(MacAddr::parse("01:00:5e:00:00:01")->is_multicast());
    EXPECT_TRUE(MacAddr::parse("ff:ff:ff:ff:ff:ff")->is_multicast());
    EXPECT_FALSE(MacAddr::parse("02:00:00:00:00:00")->is_multicast());
}

}  // namespace
}  // namespace bpfnet

#include <gtest/gtest.h>

#include "core/ipam.h"

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

IpamRequest with_subnet(const char* subnet) {
    IpamRequest request;
    request.subnet = cidr(subnet);
    return request;
}

IpamConfig plan_ok(const IpamRequest& request, const std::vector<Cidr>& routes = {},
                   const std::vector<Cidr>& existing = {}) {
    auto planned = plan_network_ipam(request, routes, existing);
    EXPECT_TRUE(planned) << planned.error().message;
    return planned ? *planned : IpamConfig{};
}

void expect_error(const Error& error, ErrorKind kind, const std::string& message) {
    EXPECT_EQ(error.kind, kind) << error.message;
    EXPECT_EQ(error.message, message);
}

// --- default pools -------------------------------------------------------------------------

TEST(DefaultPools, DockersOrderAndCount) {
    auto pools = default_address_pools();
    ASSERT_EQ(pools.size(), 31u);
    EXPECT_EQ(pools.front().str(), "172.17.0.0/16");
    EXPECT_EQ(pools[14].str(), "172.31.0.0/16");
    EXPECT_EQ(pools[15].str(), "192.168.0.0/20");
    EXPECT_EQ(pools[16].str(), "192.168.16.0/20");
    EXPECT_EQ(pools.back().str(), "192.168.240.0/20");
    for (size_t i = 0; i < pools.size(); ++i) {
        EXPECT_TRUE(pools[i].is_canonical()) << pools[i].str();
        for (size_t k = i + 1; k < pools.size(); ++k) EXPECT_FALSE(pools[i].overlaps(pools[k]));
    }
}

TEST(PlanNetwork, FirstDefaultPool) {
    auto ipam = plan_ok({});
    EXPECT_EQ(ipam.subnet.str(), "172.17.0.0/16");
    EXPECT_EQ(ipam.gateway.str(), "172.17.0.1");
    EXPECT_FALSE(ipam.user_subnet);
    EXPECT_FALSE(ipam.ip_range);
    EXPECT_TRUE(ipam.aux_addresses.empty());
    EXPECT_EQ(ipam.driver, "default");
}

TEST(PlanNetwork, SkipsPoolsUsedByOtherNetworks) {
    auto ipam = plan_ok({}, {}, {cidr("172.17.0.0/16"), cidr("172.18.5.0/24")});
    EXPECT_EQ(ipam.subnet.str(), "172.19.0.0/16");
    EXPECT_EQ(ipam.gateway.str(), "172.19.0.1");
}

TEST(PlanNetwork, SkipsPoolsOverlappingHostRoutesButNotTheDefaultRoute) {
    // 172.16.0.0/12 covers every 172.x pool, so the first 192.168 /20 is next.
    auto ipam = plan_ok({}, {cidr("0.0.0.0/0"), cidr("172.16.0.0/12"), cidr("192.168.0.7/32")});
    EXPECT_EQ(ipam.subnet.str(), "192.168.16.0/20");

    ipam = plan_ok({}, {cidr("0.0.0.0/0")});
    EXPECT_EQ(ipam.subnet.str(), "172.17.0.0/16");
}

TEST(PlanNetwork, ExhaustsAllDefaultPools) {
    auto planned = plan_network_ipam({}, {cidr("172.16.0.0/12")}, {cidr("192.168.0.0/16")});
    ASSERT_FALSE(planned);
    expect_error(planned.error(), ErrorKind::Exhausted,
                 "could not find an available, non-overlapping IPv4 address pool among the "
                 "defaults to assign to the network");

    // Every pool taken one by one by earlier networks.
    planned = plan_network_ipam({}, {}, default_address_pools());
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::Exhausted);
}

TEST(PlanNetwork, LastDefaultPool) {
    auto pools = default_address_pools();
    std::vector<Cidr> taken(pools.begin(), pools.end() - 1);
    EXPECT_EQ(plan_ok({}, {}, taken).subnet.str(), "192.168.240.0/20");
}

TEST(PlanNetwork, DefaultPoolRejectsGatewayRangeAndAuxWithoutSubnet) {
    IpamRequest request;
    request.gateway = ip("172.17.0.1");
    auto planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);

    request = {};
    request.ip_range = cidr("172.17.1.0/24");
    planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);

    request = {};
    request.aux_addresses["host"] = ip("172.17.0.2");
    planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
}

// --- user subnets ----------------------------------------------------------------------------

TEST(PlanNetwork, UserSubnetIsMaskedAndGatewayDefaultsToFirstHost) {
    auto ipam = plan_ok(with_subnet("10.0.0.5/24"));
    EXPECT_EQ(ipam.subnet.str(), "10.0.0.0/24");
    EXPECT_EQ(ipam.gateway.str(), "10.0.0.1");
    EXPECT_TRUE(ipam.user_subnet);
}

TEST(PlanNetwork, UserSubnetIgnoresHostRoutes) {
    // Docker only checks user subnets against other networks; the user knows their routes.
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"), {cidr("10.0.0.0/8")});
    EXPECT_EQ(ipam.subnet.str(), "10.0.0.0/24");
}

TEST(PlanNetwork, UserSubnetOverlapIsConflict) {
    auto planned = plan_network_ipam(with_subnet("10.0.0.0/24"), {}, {cidr("10.0.0.0/16")});
    ASSERT_FALSE(planned);
    expect_error(planned.error(), ErrorKind::Conflict,
                 "subnet 10.0.0.0/24 overlaps with an existing network's subnet 10.0.0.0/16");

    planned = plan_network_ipam(with_subnet("10.0.0.0/8"), {}, {cidr("10.200.0.0/24")});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::Conflict);

    EXPECT_TRUE(plan_network_ipam(with_subnet("10.0.1.0/24"), {}, {cidr("10.0.0.0/24")}));
}

TEST(PlanNetwork, SubnetSmallerThanSlash30IsRejected) {
    for (const char* tiny : {"10.0.0.0/31", "10.0.0.0/32"}) {
        auto planned = plan_network_ipam(with_subnet(tiny), {}, {});
        ASSERT_FALSE(planned) << tiny;
        EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
    }
    EXPECT_TRUE(plan_network_ipam(with_subnet("10.0.0.0/30"), {}, {}));
}

TEST(PlanNetwork, GivenGateway) {
    auto request = with_subnet("10.0.0.0/24");
    request.gateway = ip("10.0.0.254");
    EXPECT_EQ(plan_ok(request).gateway.str(), "10.0.0.254");
}

TEST(PlanNetwork, GatewayOutsideSubnet) {
    auto request = with_subnet("10.0.0.0/24");
    request.gateway = ip("10.1.0.1");
    auto planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    expect_error(planned.error(), ErrorKind::InvalidArgument,
                 "gateway 10.1.0.1 is not inside subnet 10.0.0.0/24");
}

TEST(PlanNetwork, GatewayMustBeAHostAddress) {
    for (const char* gw : {"10.0.0.0", "10.0.0.255"}) {
        auto request = with_subnet("10.0.0.0/24");
        request.gateway = ip(gw);
        auto planned = plan_network_ipam(request, {}, {});
        ASSERT_FALSE(planned) << gw;
        EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(PlanNetwork, IpRangeInsideSubnet) {
    auto request = with_subnet("10.0.0.0/16");
    request.ip_range = cidr("10.0.5.7/24");
    auto ipam = plan_ok(request);
    ASSERT_TRUE(ipam.ip_range);
    EXPECT_EQ(ipam.ip_range->str(), "10.0.5.0/24");
    // The gateway still comes from the subnet, not the range.
    EXPECT_EQ(ipam.gateway.str(), "10.0.0.1");
}

TEST(PlanNetwork, IpRangeOutsideSubnet) {
    for (const char* range : {"10.1.0.0/24", "10.0.0.0/23", "9.0.0.0/8"}) {
        auto request = with_subnet("10.0.0.0/24");
        request.ip_range = cidr(range);
        auto planned = plan_network_ipam(request, {}, {});
        ASSERT_FALSE(planned) << range;
        EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
        EXPECT_NE(planned.error().message.find("10.0.0.0/24"), std::string::npos);
    }
}

TEST(PlanNetwork, AuxAddresses) {
    auto request = with_subnet("10.0.0.0/24");
    request.aux_addresses = {{"router", ip("10.0.0.2")}, {"printer", ip("10.0.0.3")}};
    auto ipam = plan_ok(request);
    EXPECT_EQ(ipam.aux_addresses, request.aux_addresses);

    request.aux_addresses = {{"far", ip("10.9.0.2")}};
    auto planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);

    request.aux_addresses = {{"gw", ip("10.0.0.1")}};
    planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);

    request.gateway = ip("10.0.0.9");
    request.aux_addresses = {{"gw", ip("10.0.0.9")}};
    planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
}

// --- dynamic allocation --------------------------------------------------------------------

TEST(Allocate, LowestFreeAfterGateway) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"));
    std::set<Ipv4> used;
    for (const char* want : {"10.0.0.2", "10.0.0.3", "10.0.0.4"}) {
        auto got = allocate_address(ipam, used, std::nullopt, "net");
        ASSERT_TRUE(got) << got.error().message;
        EXPECT_EQ(got->str(), want);
        used.insert(*got);
    }
}

TEST(Allocate, ReusesLowestReleasedAddress) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"));
    std::set<Ipv4> used{ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4"), ip("10.0.0.5")};
    used.erase(ip("10.0.0.4"));
    used.erase(ip("10.0.0.3"));
    EXPECT_EQ(allocate_address(ipam, used, std::nullopt, "net")->str(), "10.0.0.3");
}

TEST(Allocate, GatewayNotFirstHostLeavesFirstHostUsable) {
    auto request = with_subnet("10.0.0.0/24");
    request.gateway = ip("10.0.0.254");
    auto ipam = plan_ok(request);
    EXPECT_EQ(allocate_address(ipam, {}, std::nullopt, "net")->str(), "10.0.0.1");
    EXPECT_EQ(allocate_address(ipam, {ip("10.0.0.1")}, std::nullopt, "net")->str(), "10.0.0.2");
}

TEST(Allocate, Slash30HasOneAddressAfterGateway) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/30"));
    auto first = allocate_address(ipam, {}, std::nullopt, "tiny");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->str(), "10.0.0.2");
    auto second = allocate_address(ipam, {*first}, std::nullopt, "tiny");
    ASSERT_FALSE(second);
    expect_error(second.error(), ErrorKind::Exhausted,
                 "no available IPv4 addresses on network tiny");
}

TEST(Allocate, SkipsAuxAddresses) {
    auto request = with_subnet("10.0.0.0/24");
    request.aux_addresses = {{"a", ip("10.0.0.2")}, {"b", ip("10.0.0.3")}, {"c", ip("10.0.0.5")}};
    auto ipam = plan_ok(request);
    std::set<Ipv4> used;
    for (const char* want : {"10.0.0.4", "10.0.0.6"}) {
        auto got = allocate_address(ipam, used, std::nullopt, "net");
        ASSERT_TRUE(got);
        EXPECT_EQ(got->str(), want);
        used.insert(*got);
    }
}

TEST(Allocate, IpRangeStartsAtRangeStart) {
    auto request = with_subnet("10.0.0.0/24");
    request.ip_range = cidr("10.0.0.128/25");
    auto ipam = plan_ok(request);
    auto first = allocate_address(ipam, {}, std::nullopt, "net");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->str(), "10.0.0.128");
    EXPECT_EQ(allocate_address(ipam, {*first}, std::nullopt, "net")->str(), "10.0.0.129");
}

TEST(Allocate, IpRangeSkipsSubnetReservedAddresses) {
    // The range's first address is the subnet's network address and its last is the broadcast.
    auto request = with_subnet("10.0.0.0/24");
    request.ip_range = cidr("10.0.0.0/30");
    auto ipam = plan_ok(request);
    EXPECT_EQ(allocate_address(ipam, {}, std::nullopt, "net")->str(), "10.0.0.2");

    request.ip_range = cidr("10.0.0.252/30");
    ipam = plan_ok(request);
    std::set<Ipv4> used{ip("10.0.0.252"), ip("10.0.0.253")};
    EXPECT_EQ(allocate_address(ipam, used, std::nullopt, "net")->str(), "10.0.0.254");
    used.insert(ip("10.0.0.254"));
    auto none = allocate_address(ipam, used, std::nullopt, "net");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, ErrorKind::Exhausted);
}

TEST(Allocate, IpRangeExhaustedEvenIfSubnetHasRoom) {
    auto request = with_subnet("10.0.0.0/24");
    request.ip_range = cidr("10.0.0.8/31");
    auto ipam = plan_ok(request);
    auto none = allocate_address(ipam, {ip("10.0.0.8"), ip("10.0.0.9")}, std::nullopt, "net");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, ErrorKind::Exhausted);
}

TEST(Allocate, LargeSubnetIsFast) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/8"));
    std::set<Ipv4> used;
    for (uint32_t v = ipam.subnet.network().value + 2; used.size() < 50000; ++v)
        used.insert(Ipv4{v});
    auto got = allocate_address(ipam, used, std::nullopt, "big");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->value, ipam.subnet.network().value + 2 + 50000);
}

TEST(Allocate, AddressesNearTheTopOfTheSpace) {
    auto ipam = plan_ok(with_subnet("255.255.255.252/30"));
    auto got = allocate_address(ipam, {}, std::nullopt, "top");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->str(), "255.255.255.254");
    auto none = allocate_address(ipam, {*got}, std::nullopt, "top");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().kind, ErrorKind::Exhausted);
}

TEST(Allocate, DefaultPoolNetwork) {
    auto ipam = plan_ok({});
    EXPECT_EQ(allocate_address(ipam, {}, std::nullopt, "bridge")->str(), "172.17.0.2");
}

// --- static addresses ----------------------------------------------------------------------

TEST(AllocateStatic, GrantsFreeAddressInSubnet) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"));
    auto got = allocate_address(ipam, {ip("10.0.0.2")}, ip("10.0.0.5"), "net");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->str(), "10.0.0.5");
}

TEST(AllocateStatic, MayLieOutsideIpRange) {
    auto request = with_subnet("10.0.0.0/24");
    request.ip_range = cidr("10.0.0.128/25");
    auto ipam = plan_ok(request);
    EXPECT_EQ(allocate_address(ipam, {}, ip("10.0.0.10"), "net")->str(), "10.0.0.10");
}

TEST(AllocateStatic, OnlyOnUserSubnets) {
    auto ipam = plan_ok({});
    auto got = allocate_address(ipam, {}, ip("172.17.0.9"), "bridge");
    ASSERT_FALSE(got);
    expect_error(got.error(), ErrorKind::InvalidArgument,
                 "user specified IP address is supported only when connecting to networks with "
                 "user configured subnets");
}

TEST(AllocateStatic, OutsideSubnet) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"));
    auto got = allocate_address(ipam, {}, ip("10.9.9.9"), "net");
    ASSERT_FALSE(got);
    expect_error(got.error(), ErrorKind::InvalidArgument,
                 "address 10.9.9.9 is not in subnet 10.0.0.0/24 of network net");
}

TEST(AllocateStatic, AlreadyInUse) {
    auto ipam = plan_ok(with_subnet("10.0.0.0/24"));
    auto got = allocate_address(ipam, {ip("10.0.0.5")}, ip("10.0.0.5"), "net");
    ASSERT_FALSE(got);
    expect_error(got.error(), ErrorKind::Conflict,
                 "address 10.0.0.5 is already in use on network net");
}

TEST(AllocateStatic, ReservedAddressesAreConflictsNamingTheReservation) {
    auto request = with_subnet("10.0.0.0/24");
    request.aux_addresses = {{"router", ip("10.0.0.3")}};
    auto ipam = plan_ok(request);
    struct Case {
        const char* ip;
        const char* what;
    };
    for (const auto& c : {Case{"10.0.0.0", "network address"}, Case{"10.0.0.255", "broadcast"},
                          Case{"10.0.0.1", "gateway"}, Case{"10.0.0.3", "router"}}) {
        auto got = allocate_address(ipam, {}, ip(c.ip), "net");
        ASSERT_FALSE(got) << c.ip;
        EXPECT_EQ(got.error().kind, ErrorKind::Conflict);
        EXPECT_NE(got.error().message.find(c.what), std::string::npos) << got.error().message;
        EXPECT_NE(got.error().message.find(c.ip), std::string::npos) << got.error().message;
    }
}

}  // namespace
}  // namespace bpfnet

namespace bpfnet {
namespace {

TEST(IpamLimits, SubnetsLargerThanSlash8AreRefused) {
    IpamRequest request;
    request.subnet = *Cidr::parse("0.0.0.0/0");
    auto planned = plan_network_ipam(request, {}, {});
    ASSERT_FALSE(planned);
    EXPECT_EQ(planned.error().kind, ErrorKind::InvalidArgument);
    EXPECT_NE(planned.error().message.find("too large"), std::string::npos);
    request.subnet = *Cidr::parse("10.0.0.0/8");
    EXPECT_TRUE(plan_network_ipam(request, {}, {}));
}

}  // namespace
}  // namespace bpfnet

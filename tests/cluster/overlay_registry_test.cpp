// OverlayRegistry against a real etcd (tests/cluster/etcd_test_server.h): two registries stand for
// two hosts of one cluster. Claims (VNI, subnet, address) are exclusive across hosts, Docker
// attachments and endpoints reach the other host's view through its watch, and a host's leased
// records leave with it.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "cluster/etcd_test_server.h"
#include "cluster/overlay_registry.h"

namespace bpfnet {
namespace {

using namespace std::chrono_literals;

Ipv4 ip(const char* text) {
    return *Ipv4::parse(text);
}
Cidr cidr(const char* text) {
    return *Cidr::parse(text);
}

// Waits up to 5 s for the watch to deliver what `ready` looks for.
bool eventually(const std::function<bool()>& ready) {
    for (int i = 0; i < 100; ++i) {
        if (ready()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return ready();
}

class OverlayRegistryTest : public testing::EtcdSuite {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(EtcdSuite::SetUp());
        // Each test its own network IDs and ranges: the store outlives single tests.
        suffix_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        host_a_ = start("a-" + suffix_, ip("192.0.2.1"));
        host_b_ = start("b-" + suffix_, ip("192.0.2.2"));
    }
    std::unique_ptr<OverlayRegistry> start(const std::string& host, Ipv4 vtep, int ttl = 10) {
        auto client = EtcdClient::connect({server_->url()});
        EXPECT_TRUE(client.ok()) << client.error().message;
        auto registry = std::make_unique<OverlayRegistry>(std::move(*client), host, vtep, ttl);
        auto st = registry->start(nullptr);
        EXPECT_TRUE(st.ok()) << st.error().message;
        return registry;
    }
    Network network(const std::string& id, const char* subnet) {
        Network n;
        n.id = id + "-" + suffix_;
        n.name = "net-" + n.id;
        n.driver = driver::kOverlay;
        n.ipam.subnet = cidr(subnet);
        n.ipam.gateway = Ipv4{n.ipam.subnet.network().value + 1};
        n.ipam.user_subnet = true;  // static addresses need a --subnet (Docker's rule)
        return n;
    }
    std::string suffix_;
    std::unique_ptr<OverlayRegistry> host_a_, host_b_;
};

TEST_F(OverlayRegistryTest, ASubnetIsClaimedByOneOverlayOnly) {
    const Network first = network("n1", "10.99.1.0/24");
    const Network second = network("n2", "10.99.1.0/24");
    ASSERT_TRUE(host_a_->claim_subnet(first.ipam.subnet, first.id).ok());
    auto taken = host_b_->claim_subnet(second.ipam.subnet, second.id);
    ASSERT_FALSE(taken.ok());
    EXPECT_EQ(taken.error().kind, ErrorKind::Conflict);
    EXPECT_NE(taken.error().message.find("10.99.1.0/24 is already used by overlay"),
              std::string::npos)
        << taken.error().message;
    // The holder asking again (a retried create) is no conflict.
    EXPECT_TRUE(host_a_->claim_subnet(first.ipam.subnet, first.id).ok());
    // Only the holder's release frees it.
    ASSERT_TRUE(host_b_->release_subnet(second.ipam.subnet, second.id).ok());
    EXPECT_FALSE(host_b_->claim_subnet(second.ipam.subnet, second.id).ok());
    ASSERT_TRUE(host_a_->release_subnet(first.ipam.subnet, first.id).ok());
    EXPECT_TRUE(host_b_->claim_subnet(second.ipam.subnet, second.id).ok());
    ASSERT_TRUE(host_b_->release_subnet(second.ipam.subnet, second.id).ok());
}

TEST_F(OverlayRegistryTest, AVniIsClaimedOnceAndAllocationSkipsTakenOnes) {
    auto given = host_a_->claim_vni("v1-" + suffix_, 700000);
    ASSERT_TRUE(given.ok()) << given.error().message;
    EXPECT_EQ(*given, 700000u);
    auto again = host_b_->claim_vni("v2-" + suffix_, 700000);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind, ErrorKind::Conflict);
    auto out_of_range = host_b_->claim_vni("v2-" + suffix_, 1u << 24);
    ASSERT_FALSE(out_of_range.ok());
    EXPECT_EQ(out_of_range.error().kind, ErrorKind::InvalidArgument);
    auto a = host_a_->claim_vni("v3-" + suffix_, std::nullopt);
    auto b = host_b_->claim_vni("v4-" + suffix_, std::nullopt);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_GE(*a, kOverlayVniMin);
    EXPECT_NE(*a, *b);
    for (auto [vni, id] : {std::pair{*given, "v1-"}, {*a, "v3-"}, {*b, "v4-"}})
        EXPECT_TRUE(host_a_->release_vni(vni, id + suffix_).ok());
}

TEST_F(OverlayRegistryTest, AddressesAreUniqueAcrossHosts) {
    const Network n = network("addr", "10.99.2.0/29");
    auto first = host_a_->claim_address(n, std::nullopt, "ep-a");
    auto second = host_b_->claim_address(n, std::nullopt, "ep-b");
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_NE(*first, *second);
    auto taken = host_b_->claim_address(n, *first, "ep-c");
    ASSERT_FALSE(taken.ok());
    EXPECT_EQ(taken.error().kind, ErrorKind::Conflict);
    EXPECT_NE(taken.error().message.find("already in use"), std::string::npos);
    ASSERT_TRUE(host_a_->release_address(n.id, *first, "ep-a").ok());
    auto reused = host_b_->claim_address(n, *first, "ep-c");
    EXPECT_TRUE(reused.ok());
    ASSERT_TRUE(host_a_->delete_network(n.id).ok());
}

TEST_F(OverlayRegistryTest, DockerAttachmentsAndEndpointsReachTheOtherHost) {
    const Network n = network("att", "10.99.3.0/24");
    ASSERT_TRUE(host_a_->put_network({n, 4242}).ok());
    ASSERT_TRUE(eventually([&] { return host_b_->network(n.id).has_value(); }));
    EXPECT_EQ(host_b_->network(n.id)->vni, 4242u);
    EXPECT_EQ(host_b_->network(n.id)->network.ipam.subnet, n.ipam.subnet);

    ASSERT_TRUE(host_a_->attach(n.id).ok());
    ASSERT_TRUE(host_b_->attach(n.id).ok());
    ASSERT_TRUE(eventually([&] { return host_a_->attached_hosts(n.id).size() == 2; }));
    ASSERT_TRUE(host_b_->detach(n.id).ok());
    // The detaching host sees its own detach at once; the other after its watch.
    EXPECT_EQ(host_b_->attached_hosts(n.id), std::vector<std::string>{host_a_->host_id()});
    ASSERT_TRUE(eventually([&] {
        return host_a_->attached_hosts(n.id) == std::vector<std::string>{host_a_->host_id()};
    }));

    OverlayEndpoint ep{n.id,
                       "ep-1",
                       host_a_->host_id(),
                       ip("10.99.3.5"),
                       MacAddr::from_ipv4(ip("10.99.3.5")),
                       host_a_->vtep()};
    ASSERT_TRUE(host_a_->publish_endpoint(ep).ok());
    ASSERT_TRUE(eventually([&] { return host_b_->endpoints(n.id).size() == 1; }));
    const auto seen = host_b_->endpoints(n.id).front();
    EXPECT_EQ(seen.ip, ep.ip);
    EXPECT_EQ(seen.mac, ep.mac);
    EXPECT_EQ(seen.vtep, ip("192.0.2.1"));
    EXPECT_EQ(seen.host, host_a_->host_id());
    ASSERT_TRUE(host_a_->withdraw_endpoint(n.id, "ep-1").ok());
    ASSERT_TRUE(eventually([&] { return host_b_->endpoints(n.id).empty(); }));

    ASSERT_TRUE(host_a_->delete_network(n.id).ok());
    ASSERT_TRUE(eventually([&] { return !host_b_->network(n.id).has_value(); }));
    EXPECT_TRUE(eventually([&] { return host_b_->attached_hosts(n.id).empty(); }));
}

TEST_F(OverlayRegistryTest, AHostsLeasedRecordsLeaveWithIt) {
    const Network n = network("lease", "10.99.4.0/24");
    ASSERT_TRUE(host_a_->put_network({n, 4343}).ok());
    auto short_lived = start("c-" + suffix_, ip("192.0.2.3"), 2);
    ASSERT_TRUE(short_lived->attach(n.id).ok());
    ASSERT_TRUE(short_lived
                    ->publish_endpoint({n.id, "ep-c", short_lived->host_id(), ip("10.99.4.9"),
                                        MacAddr::from_ipv4(ip("10.99.4.9")), short_lived->vtep()})
                    .ok());
    ASSERT_TRUE(eventually([&] {
        return host_a_->endpoints(n.id).size() == 1 && host_a_->attached_hosts(n.id).size() == 1;
    }));
    short_lived->stop();  // no more keep-alives: the lease (2 s) runs out
    short_lived.reset();
    for (int i = 0; i < 3 && !host_a_->endpoints(n.id).empty(); ++i)
        std::this_thread::sleep_for(2s);
    EXPECT_TRUE(eventually([&] { return host_a_->endpoints(n.id).empty(); }));
    EXPECT_TRUE(host_a_->attached_hosts(n.id).empty());
    ASSERT_TRUE(host_a_->delete_network(n.id).ok());
}

}  // namespace
}  // namespace bpfnet

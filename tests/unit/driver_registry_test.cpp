// The network drivers as the service sees them: which object serves which driver name, and the
// traits the service's generic code asks of each (no datapath or kernel: fakes and a store in a
// temporary directory).
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "agent/drivers/driver_registry.h"
#include "fake_datapath.h"
#include "store/store.h"

namespace bpfnet {
namespace {

namespace fs = std::filesystem;

class DriverRegistryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("bpfnet-drivers-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        auto store = open_sqlite_store((dir_ / "bpfnet.db").string());
        ASSERT_TRUE(store.ok()) << store.error().message;
        store_ = std::move(*store);
        graph_ = std::make_unique<DatapathGraph>(std::make_unique<FakeDatapath>(), nullptr,
                                                 "not under test", nullptr);
        drivers_ = std::make_unique<DriverRegistry>(*store_, *graph_);
    }
    void TearDown() override {
        drivers_.reset();
        graph_.reset();
        store_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    Network network_of(const char* driver_name) {
        Network n;
        n.id = std::string(64, 'a');
        n.name = "n";
        n.driver = driver_name;
        return n;
    }

    fs::path dir_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<DatapathGraph> graph_;
    std::unique_ptr<DriverRegistry> drivers_;
};

TEST_F(DriverRegistryTest, EveryDockerDriverNameHasItsObject) {
    for (const char* name : {driver::kBridge, driver::kMacvlan, driver::kIpvlan, driver::kOverlay,
                             driver::kHost, driver::kNull}) {
        auto driver = drivers_->named(name);
        ASSERT_TRUE(driver.ok()) << name;
        EXPECT_STREQ((*driver)->name(), name);
        EXPECT_EQ(&drivers_->of(network_of(name)), *driver);
    }
    // Docker's CLI calls the null driver's network "none".
    auto none = drivers_->named("none");
    ASSERT_TRUE(none.ok());
    EXPECT_STREQ((*none)->name(), driver::kNull);
}

TEST_F(DriverRegistryTest, AnUnknownDriverIsAClearError) {
    auto unknown = drivers_->named("weave");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().kind, ErrorKind::Unsupported);
    EXPECT_NE(unknown.error().message.find("\"weave\" is not supported"), std::string::npos);
}

TEST_F(DriverRegistryTest, OnlyBridgeEndpointsPublishPorts) {
    for (const char* name : {driver::kBridge, driver::kMacvlan, driver::kIpvlan, driver::kOverlay,
                             driver::kHost, driver::kNull}) {
        const NetworkDriver& d = drivers_->of(network_of(name));
        EXPECT_EQ(d.publishes_ports(), std::string(name) == driver::kBridge) << name;
        const bool child =
            std::string(name) == driver::kMacvlan || std::string(name) == driver::kIpvlan;
        const bool overlay = std::string(name) == driver::kOverlay;
        EXPECT_EQ(d.refuses_ports().has_value(), child || overlay) << name;
        EXPECT_EQ(d.has_host_end(), !child) << name;
    }
}

TEST_F(DriverRegistryTest, HostAndNoneArePredefinedRecordsThatExcludeOtherNetworks) {
    for (BuiltinDriver* builtin : drivers_->builtins()) {
        EXPECT_TRUE(builtin->predefined_only());
        EXPECT_TRUE(builtin->endpoints_are_records());
        EXPECT_FALSE(builtin->has_ipam());
        EXPECT_TRUE(builtin->excludes_other_networks().has_value());
        auto refused = builtin->check_request(CreateNetworkRequest{}, BridgeOptions{});
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().kind, ErrorKind::Conflict);
    }
    EXPECT_STREQ(drivers_->builtin_for(SandboxMode::Host).network_name(), "host");
    EXPECT_STREQ(drivers_->builtin_for(SandboxMode::None).network_name(), "none");
    // Only the host network's membership is fixed for a sandbox's life.
    EXPECT_TRUE(drivers_->builtin_for(SandboxMode::Host).fixed_membership().has_value());
    EXPECT_FALSE(drivers_->builtin_for(SandboxMode::None).fixed_membership().has_value());
}

TEST_F(DriverRegistryTest, WhoGivesADefaultRouteAndWhoIsPoliced) {
    Network bridge = network_of(driver::kBridge);
    EXPECT_TRUE(drivers_->of(bridge).routes_outside(bridge));
    bridge.internal = true;
    EXPECT_FALSE(drivers_->of(bridge).routes_outside(bridge));
    Network overlay = network_of(driver::kOverlay);
    EXPECT_FALSE(drivers_->of(overlay).routes_outside(overlay));
    // Without BPF in the graph a bridge network is the kernel layer's; an overlay passes the
    // firewall as the kernel layer's too; child links and built-ins are not policed.
    EXPECT_EQ(drivers_->of(bridge).policed_as(bridge), DatapathKind::Kernel);
    EXPECT_EQ(drivers_->of(overlay).policed_as(overlay), DatapathKind::Kernel);
    EXPECT_FALSE(
        drivers_->of(network_of(driver::kMacvlan)).policed_as(network_of(driver::kMacvlan)));
    EXPECT_FALSE(drivers_->of(network_of(driver::kHost)).policed_as(network_of(driver::kHost)));
}

TEST_F(DriverRegistryTest, OverlaysNeedTheClusterStoreAndChildLinksTheirDatapath) {
    auto overlay = drivers_->overlay().check_request(CreateNetworkRequest{}, BridgeOptions{});
    ASSERT_FALSE(overlay.ok());
    EXPECT_NE(overlay.error().message.find("--store etcd"), std::string::npos);
    auto macvlan = (*drivers_->named(driver::kMacvlan))->check_request({}, BridgeOptions{});
    ASSERT_FALSE(macvlan.ok());
    EXPECT_EQ(macvlan.error().kind, ErrorKind::Unsupported);
}

TEST_F(DriverRegistryTest, BpfRequestedWithoutBpfIsRefusedForBridges) {
    BridgeOptions options;
    options.datapath = DatapathMode::Bpf;
    auto refused = (*drivers_->named(driver::kBridge))->check_request({}, options);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("not under test"), std::string::npos);
}

}  // namespace
}  // namespace bpfnet

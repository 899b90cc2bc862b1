// macvlan/ipvlan option parsing (core/child_link_options) and the model fields these drivers add.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/child_link_options.h"
#include "core/model.h"

namespace bpfnet {
namespace {

TEST(ChildLinkOptions, DefaultsAreDockersModes) {
    auto mac = parse_child_link_options("macvlan", {{"parent", "eth0"}});
    ASSERT_TRUE(mac.ok()) << mac.error().message;
    EXPECT_EQ(mac->parent, "eth0");
    EXPECT_EQ(mac->mode, "bridge");
    EXPECT_FALSE(mac->vlan_id.has_value());
    auto ip = parse_child_link_options("ipvlan", {});
    ASSERT_TRUE(ip.ok());
    EXPECT_EQ(ip->mode, "l2");
    EXPECT_EQ(ip->parent, "");
}

TEST(ChildLinkOptions, ParentWithADotNamesAVlan) {
    auto o = parse_child_link_options("macvlan", {{"parent", "eth0.10"}});
    ASSERT_TRUE(o.ok());
    ASSERT_TRUE(o->vlan_id.has_value());
    EXPECT_EQ(*o->vlan_id, 10);
    EXPECT_EQ(o->vlan_base, "eth0");
    // A dot followed by something that is not a number is just part of a device name.
    auto plain = parse_child_link_options("macvlan", {{"parent", "br.lan"}});
    ASSERT_TRUE(plain.ok());
    EXPECT_FALSE(plain->vlan_id.has_value());
}

TEST(ChildLinkOptions, RejectsBadVlanIdsModesAndNames) {
    for (const char* parent : {"eth0.0", "eth0.4095", "eth0.99999"}) {
        auto o = parse_child_link_options("macvlan", {{"parent", parent}});
        ASSERT_FALSE(o.ok()) << parent;
        EXPECT_EQ(o.error().kind, ErrorKind::InvalidArgument);
        EXPECT_NE(o.error().message.find("VLAN ID"), std::string::npos) << o.error().message;
    }
    auto mode = parse_child_link_options("macvlan", {{"macvlan_mode", "l2"}});
    ASSERT_FALSE(mode.ok());
    EXPECT_NE(mode.error().message.find("bridge, vepa, private or passthru"), std::string::npos);
    auto ipmode = parse_child_link_options("ipvlan", {{"ipvlan_mode", "bridge"}});
    ASSERT_FALSE(ipmode.ok());
    EXPECT_NE(ipmode.error().message.find("l2, l3 or l3s"), std::string::npos);
    auto name = parse_child_link_options("macvlan", {{"parent", "a/b"}});
    ASSERT_FALSE(name.ok());
    auto too_long = parse_child_link_options("macvlan", {{"parent", "averyveryverylongname"}});
    ASSERT_FALSE(too_long.ok());
}

TEST(ChildLinkOptions, EveryKernelModeIsAccepted) {
    for (const char* m : {"bridge", "vepa", "private", "passthru"})
        EXPECT_TRUE(parse_child_link_options("macvlan", {{"macvlan_mode", m}}).ok()) << m;
    for (const char* m : {"l2", "l3", "l3s"})
        EXPECT_TRUE(parse_child_link_options("ipvlan", {{"ipvlan_mode", m}}).ok()) << m;
}

TEST(ModelDrivers, ParentAndSandboxModeRoundTrip) {
    Network n;
    n.id = std::string(64, 'a');
    n.name = "mv";
    n.driver = driver::kMacvlan;
    n.parent = "eth0.10";
    n.bridge_name = "eth0.10";
    n.state = Lifecycle::Ready;
    nlohmann::json j = n;
    Network back = *network_from_json(j);
    EXPECT_EQ(back.parent, "eth0.10");
    EXPECT_EQ(back.driver, "macvlan");

    Sandbox s;
    s.id = std::string(64, 'b');
    s.name = "h";
    s.netns_path = "/run/netns/h";
    s.mode = SandboxMode::Host;
    s.state = Lifecycle::Ready;
    nlohmann::json sj = s;
    EXPECT_EQ(sj["mode"], "host");
    EXPECT_EQ(sandbox_from_json(sj)->mode, SandboxMode::Host);
    // Records written before modes existed are sandboxes of their own.
    sj.erase("mode");
    EXPECT_EQ(sandbox_from_json(sj)->mode, SandboxMode::Own);
    sj["mode"] = "bogus";
    EXPECT_FALSE(sandbox_from_json(sj).ok());
}

}  // namespace
}  // namespace bpfnet

#include <gtest/gtest.h>

#include "core/options.h"

namespace bpfnet {
namespace {

TEST(DatapathMode, RoundTrips) {
    for (auto mode : {DatapathMode::Auto, DatapathMode::Bpf, DatapathMode::Kernel}) {
        auto parsed = parse_datapath_mode(to_string(mode));
        ASSERT_TRUE(parsed) << to_string(mode);
        EXPECT_EQ(*parsed, mode);
    }
    EXPECT_STREQ(to_string(DatapathMode::Bpf), "bpf");
}

TEST(DatapathMode, RejectsOtherSpellings) {
    for (const char* junk : {"", "BPF", "Auto", "ebpf", " kernel", "kernel "}) {
        auto parsed = parse_datapath_mode(junk);
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(ParseBool, AcceptsGoSpellings) {
    for (const char* yes : {"1", "t", "T", "TRUE", "true", "True"}) {
        auto parsed = parse_bool("k", yes);
        ASSERT_TRUE(parsed) << yes;
        EXPECT_TRUE(*parsed) << yes;
    }
    for (const char* no : {"0", "f", "F", "FALSE", "false", "False"}) {
        auto parsed = parse_bool("k", no);
        ASSERT_TRUE(parsed) << no;
        EXPECT_FALSE(*parsed) << no;
    }
}

TEST(ParseBool, RejectsEverythingElse) {
    for (const char* junk : {"", "yes", "no", "on", "tRUE", "TrUe", "2", " true", "true ", "y"}) {
        auto parsed = parse_bool("k", junk);
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
    }
    auto parsed = parse_bool(opt::kEnableIcc, "yes");
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().message,
              "invalid value \"yes\" for option com.docker.network.bridge.enable_icc: expected "
              "true or false");
}

TEST(BridgeOptions, DefaultsWhenEmpty) {
    auto parsed = parse_bridge_options({});
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->bridge_name);
    EXPECT_TRUE(parsed->enable_icc);
    EXPECT_TRUE(parsed->enable_ip_masquerade);
    EXPECT_FALSE(parsed->host_binding_ipv4);
    EXPECT_EQ(parsed->mtu, 1500);
    EXPECT_EQ(parsed->datapath, DatapathMode::Auto);
    EXPECT_EQ(parsed->endpoint_mode, EndpointMode::Auto);
}

TEST(BridgeOptions, EndpointModes) {
    for (auto mode : {EndpointMode::Auto, EndpointMode::Bridge, EndpointMode::Routed}) {
        auto parsed = parse_bridge_options({{opt::kEndpointMode, to_string(mode)}});
        ASSERT_TRUE(parsed) << parsed.error().message;
        EXPECT_EQ(parsed->endpoint_mode, mode);
    }
    for (const char* junk : {"", "Routed", "bridged", "route", "auto "}) {
        auto parsed = parse_bridge_options({{opt::kEndpointMode, junk}});
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
        EXPECT_NE(parsed.error().message.find("auto, bridge or routed"), std::string::npos);
    }
}

TEST(BridgeOptions, ParsesAllKnownKeys) {
    auto parsed = parse_bridge_options({{opt::kBridgeName, "br-test"},
                                        {opt::kEnableIcc, "false"},
                                        {opt::kEnableIpMasquerade, "0"},
                                        {opt::kHostBindingIpv4, "127.0.0.1"},
                                        {opt::kMtu, "9000"},
                                        {opt::kDatapath, "kernel"}});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->bridge_name, "br-test");
    EXPECT_FALSE(parsed->enable_icc);
    EXPECT_FALSE(parsed->enable_ip_masquerade);
    ASSERT_TRUE(parsed->host_binding_ipv4);
    EXPECT_EQ(parsed->host_binding_ipv4->str(), "127.0.0.1");
    EXPECT_EQ(parsed->mtu, 9000);
    EXPECT_EQ(parsed->datapath, DatapathMode::Kernel);
}

TEST(BridgeOptions, IgnoresKeysOfOthers) {
    auto parsed =
        parse_bridge_options({{"com.example.whatever", "!!"}, {"parent", "eth0"}, {"", ""}});
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->mtu, 1500);
}

TEST(BridgeOptions, RefusesUnknownDockerKeysByName) {
    for (const char* key : {"com.docker.network.bridge.inhibit_ipv4",
                            "com.docker.network.bridge.bogus", "com.docker.network.foo"}) {
        auto parsed = parse_bridge_options({{key, "1"}});
        ASSERT_FALSE(parsed) << key;
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
        EXPECT_NE(parsed.error().message.find(key), std::string::npos) << parsed.error().message;
    }
    // Keys the agent sets itself or Docker repeats pass.
    EXPECT_TRUE(parse_bridge_options({{opt::kDefaultBridge, "true"},
                                      {opt::kOverlayVxlanIds, "4097"},
                                      {"com.docker.network.enable_ipv6", "false"}}));
}

TEST(BridgeOptions, GatewayModes) {
    EXPECT_EQ(parse_bridge_options({})->gateway_mode, GatewayMode::Nat);
    const std::pair<const char*, GatewayMode> modes[] = {
        {"nat", GatewayMode::Nat},
        {"nat-unprotected", GatewayMode::NatUnprotected},
        {"routed", GatewayMode::Routed},
        {"isolated", GatewayMode::Isolated},
    };
    for (const auto& [text, mode] : modes) {
        auto parsed = parse_bridge_options({{opt::kGatewayModeIpv4, text}});
        ASSERT_TRUE(parsed) << text;
        EXPECT_EQ(parsed->gateway_mode, mode);
        EXPECT_STREQ(to_string(mode), text);
    }
    for (const char* junk : {"", "NAT", "direct", "nat unprotected"}) {
        auto parsed = parse_bridge_options({{opt::kGatewayModeIpv4, junk}});
        ASSERT_FALSE(parsed) << junk;
        EXPECT_NE(parsed.error().message.find(opt::kGatewayModeIpv4), std::string::npos);
    }
}

TEST(BridgeOptions, TrustedHostInterfaces) {
    auto parsed = parse_bridge_options({{opt::kTrustedHostInterfaces, "eth1:vxlan.1"}});
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->trusted_host_interfaces, (std::vector<std::string>{"eth1", "vxlan.1"}));
    // Empty names between separators are skipped, as Docker does.
    parsed = parse_bridge_options({{opt::kTrustedHostInterfaces, ":eth1::"}});
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->trusted_host_interfaces, (std::vector<std::string>{"eth1"}));
    for (const char* junk : {"eth 1", "a-name-that-is-far-too-long", "eth\"1", "eth*"}) {
        auto bad = parse_bridge_options({{opt::kTrustedHostInterfaces, junk}});
        ASSERT_FALSE(bad) << junk;
        EXPECT_NE(bad.error().message.find(opt::kTrustedHostInterfaces), std::string::npos);
    }
}

TEST(BridgeOptions, ContainerIfacePrefix) {
    EXPECT_EQ(parse_bridge_options({})->container_iface_prefix, "eth");
    EXPECT_EQ(parse_bridge_options({{opt::kContainerIfacePrefix, "ctr"}})->container_iface_prefix,
              "ctr");
    // Room for an index of up to four digits within the 15-byte name.
    EXPECT_TRUE(parse_bridge_options({{opt::kContainerIfacePrefix, "elevenchars"}}));
    for (const char* junk : {"", "twelve-chars", "a b", "a/b"}) {
        auto bad = parse_bridge_options({{opt::kContainerIfacePrefix, junk}});
        ASSERT_FALSE(bad) << junk;
        EXPECT_NE(bad.error().message.find(opt::kContainerIfacePrefix), std::string::npos);
    }
}

TEST(EndpointOptions, Ifname) {
    auto none = parse_endpoint_ifname({{"com.docker.network.portmap", "[]"}});
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    auto named = parse_endpoint_ifname({{opt::kEndpointIfname, "data0"}});
    ASSERT_TRUE(named);
    EXPECT_EQ(**named, "data0");
    for (const char* junk : {"", "a b", "sixteen-chars-xx", "a:b"}) {
        auto bad = parse_endpoint_ifname({{opt::kEndpointIfname, junk}});
        ASSERT_FALSE(bad) << junk;
        EXPECT_NE(bad.error().message.find(opt::kEndpointIfname), std::string::npos);
    }
}

TEST(BridgeOptions, MtuBounds) {
    EXPECT_EQ(parse_bridge_options({{opt::kMtu, "68"}})->mtu, 68);
    EXPECT_EQ(parse_bridge_options({{opt::kMtu, "65535"}})->mtu, 65535);
    for (const char* junk : {"67", "65536", "0", "-1500", "", "1500 ", " 1500", "1e3", "abc",
                             "1500.0", "99999999999999999999"}) {
        auto parsed = parse_bridge_options({{opt::kMtu, junk}});
        ASSERT_FALSE(parsed) << '"' << junk << '"';
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
        EXPECT_NE(parsed.error().message.find(opt::kMtu), std::string::npos);
    }
}

TEST(BridgeOptions, RejectsBadValuesOfKnownKeys) {
    std::map<std::string, std::string> cases[] = {
        {{opt::kBridgeName, "this-name-is-too-long"}},
        {{opt::kBridgeName, "br:0"}},
        {{opt::kBridgeName, ""}},
        {{opt::kEnableIcc, "yes"}},
        {{opt::kEnableIpMasquerade, "no"}},
        {{opt::kHostBindingIpv4, "1.2.3"}},
        {{opt::kHostBindingIpv4, "::1"}},
        {{opt::kDatapath, "xdp"}},
    };
    for (const auto& options : cases) {
        auto parsed = parse_bridge_options(options);
        ASSERT_FALSE(parsed) << options.begin()->first << "=" << options.begin()->second;
        EXPECT_EQ(parsed.error().kind, ErrorKind::InvalidArgument);
        // The user must be able to tell which -o was wrong.
        EXPECT_NE(parsed.error().message.find(options.begin()->first), std::string::npos)
            << parsed.error().message;
    }
}

TEST(ParseKeyValue, SplitsAtFirstEquals) {
    auto kv = parse_key_value("a=b");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->first, "a");
    EXPECT_EQ(kv->second, "b");

    kv = parse_key_value("com.example.x=a=b==");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->first, "com.example.x");
    EXPECT_EQ(kv->second, "a=b==");

    kv = parse_key_value("empty=");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->first, "empty");
    EXPECT_EQ(kv->second, "");
}

TEST(ParseKeyValue, RejectsMissingKeyOrEquals) {
    for (const char* junk : {"", "novalue", "=value", "="}) {
        auto kv = parse_key_value(junk);
        ASSERT_FALSE(kv) << '"' << junk << '"';
        EXPECT_EQ(kv.error().kind, ErrorKind::InvalidArgument);
    }
}

TEST(IfName, FollowsKernelRules) {
    for (const char* good :
         {"eth0", "br-0123456789ab", "a", "123456789012345", "veth.1_x-y", "..."}) {
        EXPECT_TRUE(is_valid_ifname(good)) << good;
    }
    for (const char* bad :
         {"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb", "a\nb", "ab\r"}) {
        EXPECT_FALSE(is_valid_ifname(bad)) << '"' << bad << '"';
    }
    EXPECT_FALSE(is_valid_ifname(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace bpfnet

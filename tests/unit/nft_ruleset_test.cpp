// Golden tests of the nftables ruleset text. The exact text matters: it is what the kernel gets,
// and tests/e2e/nft_test.cpp proves that text loads and filters. No root needed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "datapath/docker_user_chain.h"
#include "datapath/kernel_datapath.h"
#include "datapath/nft_ruleset.h"

namespace bpfnet {
namespace {

Cidr cidr(const char* text) {
    auto parsed = Cidr::parse(text);
    EXPECT_TRUE(parsed) << text;
    return parsed ? *parsed : Cidr{};
}

FirewallNetwork network(const char* bridge, const char* subnet) {
    return FirewallNetwork{.bridge = bridge, .subnet = cidr(subnet)};
}

// Every ruleset starts by deleting all of the agent's tables, so it replaces whatever exists.
const std::string kPrologue =
    "# bpfnet firewall: generated, replaced as a whole on every change\n"
    "add table ip bpfnet_t1\n"
    "delete table ip bpfnet_t1\n"
    "add table ip6 bpfnet_t1\n"
    "delete table ip6 bpfnet_t1\n"
    "add table bridge bpfnet_t1\n"
    "delete table bridge bpfnet_t1\n";

const std::string kForwardHook =
    "\t\ttype filter hook forward priority filter - 1; policy accept;\n";
// After a network's drops: what passed is marked for this agent's DOCKER-USER rule.
const std::string kAcceptMarks =
    "\t\tiifname @bridges oifname @bridges meta mark set meta mark | 0x00400000\n"
    "\t\toifname @bridges ct status dnat meta mark set meta mark | 0x00400000\n"
    "\t\toifname @bridges ct state established,related meta mark set meta mark | 0x00400000\n"
    "\t\tiifname @bridges meta oifkind != \"bridge\" meta mark set meta mark | 0x00400000\n"
    "\t\tiifname @bridges oifname @uplinks meta mark set meta mark | 0x00400000\n";
const std::string kMark = " meta mark set meta mark | 0x00400000";
const std::string kNatHook = "\t\ttype nat hook postrouting priority srcnat; policy accept;\n";

std::string rule(const std::string& text) {
    return "\t\t" + text + "\n";
}

std::string quoted(const std::string& name) {
    return "\"" + name + "\"";
}

// One `type ifname` set. An empty set has no elements line (`elements = { }` does not parse).
std::string ifname_set(const std::string& name, const std::vector<std::string>& elements) {
    std::string out = "\tset " + name + " {\n\t\ttype ifname\n";
    if (!elements.empty()) {
        std::string list;
        for (const auto& e : elements) list += (list.empty() ? "" : ", ") + quoted(e);
        out += "\t\telements = { " + list + " }\n";
    }
    return out + "\t}\n\n";
}

// The sets every filter table starts with: the bridges policed here, every bridge of the agent
// (overlays included) and the host's uplinks.
std::string filter_sets(const std::vector<std::string>& bridges,
                        const std::vector<std::string>& all_bridges,
                        const std::vector<std::string>& uplinks = {}) {
    return ifname_set("bridges", bridges) + ifname_set("all_bridges", all_bridges) +
           ifname_set("uplinks", uplinks);
}

// Without overlays every bridge of the agent is policed.
std::string filter_sets(const std::vector<std::string>& bridges) {
    return filter_sets(bridges, bridges);
}

std::string forward_chain(const std::string& rules) {
    return "\tchain forward {\n" + kForwardHook + rules + "\t}\n";
}

const std::string kLoopbackGuard =
    " ip daddr 127.0.0.0/8 counter drop comment \"bpfnet: endpoints may not reach the host's "
    "loopback\"";

// The published ports' DNAT maps with `any`/`ip` as their elements (none: no elements line), the
// loopback guard (with its twin for routed ports' groups) and the two nat chains. They are in
// every ruleset, published ports or not, so the first port published is a map element like the
// others.
std::string published_nat(bool groups = false, const std::string& any = "",
                          const std::string& ip = "") {
    const std::string lookups =
        "\t\tfib daddr type local dnat ip to ip daddr . meta l4proto . th dport map "
        "@published_ip\n"
        "\t\tfib daddr type local dnat ip to meta l4proto . th dport map @published_any\n";
    return "\n\tmap published_any {\n"
           "\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n" +
           (any.empty() ? "" : "\t\telements = { " + any + " }\n") +
           "\t}\n"
           "\n\tmap published_ip {\n"
           "\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n" +
           (ip.empty() ? "" : "\t\telements = { " + ip + " }\n") +
           "\t}\n"
           "\n\tchain loopback_guard {\n"
           "\t\ttype filter hook prerouting priority raw; policy accept;\n" +
           rule("iifname @bridges" + kLoopbackGuard) +
           (groups ? rule("iifgroup @groups" + kLoopbackGuard) : "") +
           "\t}\n"
           "\n\tchain prerouting {\n"
           "\t\ttype nat hook prerouting priority dstnat; policy accept;\n" +
           lookups +
           "\t}\n"
           "\n\tchain output {\n"
           "\t\ttype nat hook output priority -100; policy accept;\n" +
           lookups + "\t}\n";
}

// The masquerades of DNATed connections that head the postrouting chain: from the host's
// loopback, hairpin within each (subnet, bridge) given, and from other bridges (to the bridges
// and, with `groups`, to routed ports).
std::string published_masquerades(const std::vector<std::pair<std::string, std::string>>& hairpins,
                                  bool groups = false) {
    std::string out = rule(
        "ct status dnat ip saddr 127.0.0.0/8 counter masquerade comment \"bpfnet published "
        "ports: from loopback\"");
    for (const auto& [subnet, bridge] : hairpins) {
        out += rule("ct status dnat ip saddr " + subnet + " ip daddr " + subnet +
                    " counter masquerade comment \"bpfnet hairpin: " + bridge + "\"");
    }
    for (const std::string to : {"oifname @bridges", "oifgroup @groups"}) {
        if (to == "oifgroup @groups" && !groups) continue;
        out += rule("ct status dnat " + to +
                    " meta iifkind \"bridge\" iifname != @all_bridges iifname != @uplinks counter "
                    "masquerade comment \"bpfnet published ports: from other bridges\"");
    }
    return out;
}

// A whole script from the ip table's filter content (sets and forward chain), the rules of the
// postrouting chain and the ip6 table's content; the published ports' part (`groups`: with the
// routed ports' guard) goes between the first two.
std::string ruleset(const std::string& ip, const std::string& postrouting, const std::string& ip6,
                    bool groups = false) {
    return kPrologue + "table ip bpfnet_t1 {\n" + ip + published_nat(groups) +
           "\n\tchain postrouting {\n" + kNatHook + postrouting +
           "\t}\n}\ntable ip6 bpfnet_t1 {\n" + ip6 + "}\n";
}

// A network's drop of traffic into the agent's other bridges (DNATed connections, which published
// ports make, are exempt).
std::string isolation_rule(const std::string& bridge) {
    return rule("iifname " + quoted(bridge) + " oifname @bridges oifname != " + quoted(bridge) +
                " ct status ! dnat counter drop comment \"bpfnet isolation: " + bridge + "\"");
}

std::string masquerade(const std::string& subnet, const std::string& bridge) {
    return rule("ip saddr " + subnet + " oifname != " + quoted(bridge) +
                " counter masquerade comment \"bpfnet masquerade: " + bridge + "\"");
}

// nat: new connections from outside the agent's networks that were not DNATed.
const std::string kNatDirectRouting =
    "iifname != @bridges ct state != { established, related } ct status ! dnat";

// What every policed network that is not internal adds after its isolation rule: drops of
// traffic to and from other bridges (neither the agent's nor uplinks; DNATed connections exempt),
// then of connections routed straight to its containers from outside. `direct_routing` is the
// match of that last drop after the output interface; empty for nat-unprotected, which has none.
std::string outside_rules(const std::string& bridge,
                          const std::string& direct_routing = kNatDirectRouting) {
    const std::string br = quoted(bridge);
    std::string out =
        rule("iifname " + br +
             " meta oifkind \"bridge\" oifname != @all_bridges oifname != @uplinks ct status ! "
             "dnat counter drop comment \"bpfnet isolation from other bridges, outbound: " +
             bridge + "\"") +
        rule("oifname " + br +
             " meta iifkind \"bridge\" iifname != @all_bridges iifname != @uplinks ct status ! "
             "dnat counter drop comment \"bpfnet isolation from other bridges, inbound: " +
             bridge + "\"");
    if (!direct_routing.empty()) {
        out += rule("oifname " + br + " " + direct_routing +
                    " counter drop comment \"bpfnet direct routing: " + bridge + "\"");
    }
    return out;
}

TEST(NftRuleset, NoNetworksStillDeclaresAllTablesAndChains) {
    const std::string tables = filter_sets({}) + forward_chain("");
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {}, .ports = {}}),
              ruleset(tables, published_masquerades({}), tables));
}

TEST(NftRuleset, DefaultNetworkIsIsolatedAndMasqueraded) {
    const std::string tables =
        filter_sets({"bn-aaa"}) +
        forward_chain(isolation_rule("bn-aaa") + outside_rules("bn-aaa") + kAcceptMarks);
    FirewallSpec spec{
        .table = "bpfnet_t1", .networks = {network("bn-aaa", "172.18.0.0/16")}, .ports = {}};
    EXPECT_EQ(render_ruleset(spec), ruleset(tables,
                                            published_masquerades({{"172.18.0.0/16", "bn-aaa"}}) +
                                                masquerade("172.18.0.0/16", "bn-aaa"),
                                            tables));
}

TEST(NftRuleset, IccFalseDropsTrafficBetweenPortsOfTheBridge) {
    const std::string tables =
        filter_sets({"bn-aaa"}) +
        forward_chain(isolation_rule("bn-aaa") + outside_rules("bn-aaa") +
                      rule("iifname \"bn-aaa\" oifname \"bn-aaa\" counter drop comment "
                           "\"bpfnet icc=false: bn-aaa\"") +
                      kAcceptMarks);
    auto net = network("bn-aaa", "10.10.0.0/24");
    net.icc = false;
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables,
                      published_masquerades({{"10.10.0.0/24", "bn-aaa"}}) +
                          masquerade("10.10.0.0/24", "bn-aaa"),
                      tables));
}

// Only the masquerades of DNATed connections (which published ports need whatever the network's
// own masquerade) are left in the nat chain.
TEST(NftRuleset, MasqueradeFalseLeavesOnlyPublishedPortsInTheNatChain) {
    const std::string tables =
        filter_sets({"br0"}) +
        forward_chain(isolation_rule("br0") + outside_rules("br0") + kAcceptMarks);
    auto net = network("br0", "192.168.5.0/24");
    net.masquerade = false;
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables, published_masquerades({{"192.168.5.0/24", "br0"}}), tables));
}

TEST(NftRuleset, InternalNetworkDropsEverythingCrossingTheBridgeAndIsNotMasqueraded) {
    // The isolation rule is subsumed by the two internal rules and left out, as are the drops of
    // traffic to and from other bridges and of direct routing; masquerade=true is ignored because
    // nothing may leave an internal network (nor come in through a published port: no hairpin).
    const std::string tables =
        filter_sets({"bn-int"}) + forward_chain(rule("iifname \"bn-int\" oifname != \"bn-int\" "
                                                     "counter drop comment \"bpfnet internal, "
                                                     "outbound: bn-int\"") +
                                                rule("oifname \"bn-int\" iifname != \"bn-int\" "
                                                     "counter drop comment \"bpfnet internal, "
                                                     "inbound: bn-int\"") +
                                                kAcceptMarks);
    auto net = network("bn-int", "10.20.0.0/24");
    net.internal = true;
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables, published_masquerades({}), tables));
}

TEST(NftRuleset, TwoNetworksAreIsolatedFromEachOther) {
    const std::string tables =
        filter_sets({"bn-one", "bn-two"}) +
        forward_chain(isolation_rule("bn-one") + outside_rules("bn-one") +
                      isolation_rule("bn-two") + outside_rules("bn-two") + kAcceptMarks);
    FirewallSpec spec{
        .table = "bpfnet_t1",
        .networks = {network("bn-one", "10.1.0.0/16"), network("bn-two", "10.2.0.0/24")},
        .ports = {}};
    EXPECT_EQ(
        render_ruleset(spec),
        ruleset(tables,
                published_masquerades({{"10.1.0.0/16", "bn-one"}, {"10.2.0.0/24", "bn-two"}}) +
                    masquerade("10.1.0.0/16", "bn-one") + masquerade("10.2.0.0/24", "bn-two"),
                tables));
}

TEST(NftRuleset, TeardownDeletesAllTablesWhetherOrNotTheyExist) {
    EXPECT_EQ(render_teardown("bpfnet_t1"),
              "# bpfnet firewall teardown\n"
              "add table ip bpfnet_t1\n"
              "delete table ip bpfnet_t1\n"
              "add table ip6 bpfnet_t1\n"
              "delete table ip6 bpfnet_t1\n"
              "add table bridge bpfnet_t1\n"
              "delete table bridge bpfnet_t1\n");
}

TEST(NftRuleset, SubnetIsWrittenMasked) {
    FirewallSpec spec{.table = "t", .networks = {network("br0", "10.3.0.1/24")}, .ports = {}};
    EXPECT_NE(render_ruleset(spec).find("ip saddr 10.3.0.0/24 oifname"), std::string::npos);
}

TEST(NftRuleset, DuplicateBridgeAppearsOnceInTheSet) {
    FirewallSpec spec{.table = "t",
                      .networks = {network("br0", "10.3.0.0/24"), network("br0", "10.4.0.0/24")},
                      .ports = {}};
    EXPECT_NE(render_ruleset(spec).find("\t\telements = { \"br0\" }\n"), std::string::npos);
}

// Interface names may hold almost any byte. nft reads a trailing '*' as a prefix wildcard, which
// would make the rules match other devices, so it must be escaped.
TEST(NftRuleset, TrailingAsteriskIsEscapedSoItIsNotAWildcard) {
    FirewallSpec spec{.table = "t", .networks = {network("br*", "10.3.0.0/24")}, .ports = {}};
    auto text = render_ruleset(spec);
    EXPECT_NE(text.find("iifname \"br\\*\" oifname @bridges oifname != \"br\\*\" ct status ! dnat "
                        "counter drop"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("\"br*\""), std::string::npos) << text;
}

TEST(NftRuleset, OtherPunctuationIsQuotedAsIs) {
    FirewallSpec spec{
        .table = "t", .networks = {network("a$b@c#d{;}\\", "10.3.0.0/24")}, .ports = {}};
    auto text = render_ruleset(spec);
    EXPECT_NE(text.find("iifname \"a$b@c#d{;}\\\" oifname @bridges"), std::string::npos) << text;
    // Comments only carry printable characters other than quote and backslash.
    EXPECT_NE(text.find("comment \"bpfnet isolation: a$b@c#d{;}?\""), std::string::npos) << text;
}

// A '"' cannot be written inside an nft string at all (nor a trailing '*' after a backslash, nor
// in a 15-byte name). Rather than a rule that matches some other device, the script references an
// undefined variable: nft rejects the whole transaction with a message naming the problem.
TEST(NftRuleset, InexpressibleNameMakesTheScriptFailClosed) {
    for (const char* name : {"a\"b", "a\\b*", "abcdefghijklmn*"}) {
        FirewallSpec spec{.table = "t", .networks = {network(name, "10.3.0.0/24")}, .ports = {}};
        auto text = render_ruleset(spec);
        EXPECT_NE(text.find("iifname $interface_name_not_expressible_in_nftables oifname @bridges"),
                  std::string::npos)
            << text;
        EXPECT_NE(text.find("elements = { $interface_name_not_expressible_in_nftables }"),
                  std::string::npos)
            << text;
    }
    // 14 bytes plus the escaped '*' still fit.
    FirewallSpec spec{
        .table = "t", .networks = {network("abcdefghijklm*", "10.3.0.0/24")}, .ports = {}};
    EXPECT_NE(render_ruleset(spec).find("\"abcdefghijklm\\*\""), std::string::npos);
}

// The parser rejects this before anything talks to the kernel, so it needs no root and changes
// nothing on the host.
TEST(NftRunner, SyntaxErrorBecomesInternalErrorWithNftsMessage) {
    NftRunner runner;
    auto status = runner.run("this is not an nft script\n");
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, ErrorKind::Internal);
    EXPECT_EQ(status.error().message.rfind("nftables: ", 0), 0u) << status.error().message;
    EXPECT_NE(status.error().message.find("Error: syntax error"), std::string::npos)
        << status.error().message;
    EXPECT_EQ(status.error().message.find('\n'), std::string::npos) << status.error().message;
}

}  // namespace
}  // namespace bpfnet

namespace bpfnet {
namespace {

TEST(NftRuleset, PublishedPortsBecomeDnatMapsWithHairpinAndLoopbackHandling) {
    FirewallNetwork net{.bridge = "bn-web", .subnet = *Cidr::parse("10.5.0.0/24")};
    FirewallSpec spec{.table = "bpfnet_t1",
                      .networks = {net},
                      .ports = {FirewallPort{.proto = IpProto::Tcp,
                                             .host_ip = {},
                                             .host_port = 8080,
                                             .endpoint_ip = *Ipv4::parse("10.5.0.2"),
                                             .endpoint_port = 80},
                                FirewallPort{.proto = IpProto::Udp,
                                             .host_ip = *Ipv4::parse("127.0.0.1"),
                                             .host_port = 5353,
                                             .endpoint_ip = *Ipv4::parse("10.5.0.3"),
                                             .endpoint_port = 53}}};
    const std::string out = render_ruleset(spec);
    const std::string nat = published_nat(false, "tcp . 8080 : 10.5.0.2 . 80",
                                          "127.0.0.1 . udp . 5353 : 10.5.0.3 . 53");
    EXPECT_NE(out.find(nat), std::string::npos) << out;
    EXPECT_NE(out.find("\t\tct status dnat ip saddr 127.0.0.0/8 counter masquerade"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("\t\tct status dnat ip saddr 10.5.0.0/24 ip daddr 10.5.0.0/24 counter "
                       "masquerade comment \"bpfnet hairpin: bn-web\"\n"),
              std::string::npos)
        << out;
    // From another bridge (which may not masquerade): the answer must come back through the host.
    EXPECT_NE(out.find("\t\tct status dnat oifname @bridges meta iifkind \"bridge\" iifname != "
                       "@all_bridges iifname != @uplinks counter masquerade comment \"bpfnet "
                       "published ports: from other bridges\"\n"),
              std::string::npos)
        << out;
    // Published ports are reachable across networks: DNATed flows are exempt from isolation.
    EXPECT_NE(out.find("iifname \"bn-web\" oifname @bridges oifname != \"bn-web\" ct status ! dnat "
                       "counter drop"),
              std::string::npos)
        << out;
    // The NAT lives in the ip table only.
    EXPECT_EQ(out.find("published_any", out.find("table ip6 bpfnet_t1 {")), std::string::npos);
}

TEST(NftRuleset, PortElementsAddAndDeleteExactlyTheirMapAndSetEntries) {
    PortElements change{.add = true,
                        .ports = {FirewallPort{.proto = IpProto::Tcp,
                                               .host_ip = {},
                                               .host_port = 8080,
                                               .endpoint_ip = *Ipv4::parse("10.5.0.2"),
                                               .endpoint_port = 80},
                                  FirewallPort{.proto = IpProto::Tcp,
                                               .host_ip = {},
                                               .host_port = 8081,
                                               .endpoint_ip = *Ipv4::parse("10.5.0.2"),
                                               .endpoint_port = 81},
                                  FirewallPort{.proto = IpProto::Udp,
                                               .host_ip = *Ipv4::parse("127.0.0.1"),
                                               .host_port = 5353,
                                               .endpoint_ip = *Ipv4::parse("10.5.0.3"),
                                               .endpoint_port = 53}},
                        .routed_ports = {FirewallOpenPort{.proto = IpProto::Sctp,
                                                          .endpoint_ip = *Ipv4::parse("10.6.0.2"),
                                                          .endpoint_port = 3868}}};
    // The elements are written as render_ruleset writes them in the maps' declarations.
    EXPECT_EQ(render_port_elements("bpfnet_t1", change),
              "add element ip bpfnet_t1 published_any { tcp . 8080 : 10.5.0.2 . 80, tcp . 8081 : "
              "10.5.0.2 . 81 }\n"
              "add element ip bpfnet_t1 published_ip { 127.0.0.1 . udp . 5353 : 10.5.0.3 . 53 }\n"
              "add element ip bpfnet_t1 routed_open { 10.6.0.2 . sctp . 3868 }\n");
    // Deleting names keys only; a kind with nothing to change has no line.
    change.add = false;
    change.routed_ports.clear();
    EXPECT_EQ(render_port_elements("bpfnet_t1", change),
              "delete element ip bpfnet_t1 published_any { tcp . 8080, tcp . 8081 }\n"
              "delete element ip bpfnet_t1 published_ip { 127.0.0.1 . udp . 5353 }\n");
    EXPECT_EQ(render_port_elements("bpfnet_t1", PortElements{}), "");
}

}  // namespace
}  // namespace bpfnet

namespace bpfnet {
namespace {

TEST(NetworkIfgroup, FirstEightHexDigitsOfTheIdNeverZero) {
    EXPECT_EQ(network_ifgroup("6270a1b2c3d4e5f6"), 0x6270a1b2u);
    // 31 bits (iproute2 shows groups as signed numbers).
    EXPECT_EQ(network_ifgroup("FFFFFFFF00"), 0x7fffffffu);
    // Group 0 is every interface's default: never a network's.
    EXPECT_EQ(network_ifgroup("00000000abcdef"), 1u);
    EXPECT_EQ(network_ifgroup("80000000abcdef"), 1u);
    // Not hex (hand-made IDs in tests): still stable and not 0.
    EXPECT_EQ(network_ifgroup("net-one"), network_ifgroup("net-one"));
    EXPECT_NE(network_ifgroup("net-one"), 0u);
    EXPECT_NE(network_ifgroup("net-one"), network_ifgroup("net-two"));
}

TEST(DockerUserChain, RuleAcceptsThePacketsTheFirewallMarkedAndNamesItsAgent) {
    EXPECT_EQ(docker_user_rule("abc123"),
              (std::vector<std::string>{
                  "-m", "mark", "--mark", "0x400000/0x400000", "-m", "comment", "--comment",
                  "bpfnet abc123: accepted by the bpfnet firewall", "-j", "ACCEPT"}));
}

TEST(NftRuleset, OverlayBridgeIsOnlyMarkedNotPoliced) {
    FirewallNetwork overlay = network("bo-ov", "10.8.0.0/24");
    overlay.overlay = true;
    const std::string text = render_ruleset(FirewallSpec{
        .table = "bpfnet_t1", .networks = {network("bn-a", "10.7.0.0/24"), overlay}, .ports = {}});
    EXPECT_NE(text.find("\t\tiifname \"bo-ov\" oifname \"bo-ov\" meta mark set meta mark | "
                        "0x00400000\n"),
              std::string::npos)
        << text;
    // Not in `bridges` (policed), but in `all_bridges`: it is no "other bridge" to the networks
    // policed here.
    const std::string sets = filter_sets({"bn-a"}, {"bn-a", "bo-ov"});
    EXPECT_NE(text.find(sets), std::string::npos) << text;
    EXPECT_NE(text.find(sets, text.find("table ip6 bpfnet_t1 {")), std::string::npos) << text;
    // Only the mark and all_bridges name it: no isolation, masquerade or other rule of its own.
    size_t mentions = 0;
    for (size_t at = text.find("bo-ov"); at != std::string::npos; at = text.find("bo-ov", at + 1))
        ++mentions;
    EXPECT_EQ(mentions, 6u) << text;  // iifname + oifname + all_bridges, in the ip and ip6 tables
    EXPECT_EQ(text.find("10.8.0.0"), std::string::npos) << text;
}

TEST(NftRuleset, RoutedPortGroupsAreMarkedLikeTheirBridge) {
    FirewallNetwork net = network("bn-r", "10.9.0.0/24");
    net.group = 7;
    const std::string text =
        render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}});
    for (const char* rule : {"iifgroup @groups oifname @bridges meta mark set",
                             "iifname @bridges oifgroup @groups meta mark set",
                             "oifgroup @groups ct status dnat meta mark set",
                             "iifgroup @groups meta oifkind != \"bridge\" meta mark set"}) {
        EXPECT_NE(text.find(rule), std::string::npos) << rule << "\n" << text;
    }
}

// nat: direct routing to the containers is dropped except from the trusted interfaces, whose
// connections are then marked so Docker's FORWARD DROP lets them through too.
TEST(NftRuleset, NatWithTrustedInterfacesLetsDirectRoutingInFromThemOnly) {
    const std::string filter =
        isolation_rule("bn-aaa") +
        outside_rules("bn-aaa",
                      "iifname != @bridges iifname != { \"eth1\", \"vx.1\" } ct state != { "
                      "established, related } ct status ! dnat") +
        kAcceptMarks + rule("iifname { \"eth1\", \"vx.1\" } oifname \"bn-aaa\"" + kMark);
    const std::string tables = filter_sets({"bn-aaa"}) + forward_chain(filter);
    auto net = network("bn-aaa", "172.18.0.0/16");
    net.trusted = {"eth1", "vx.1"};
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables,
                      published_masquerades({{"172.18.0.0/16", "bn-aaa"}}) +
                          masquerade("172.18.0.0/16", "bn-aaa"),
                      tables));
}

// nat-unprotected: no direct-routing drop, and whatever reaches the network is marked; still
// masqueraded.
TEST(NftRuleset, NatUnprotectedLetsDirectRoutingInAndMarksIt) {
    const std::string filter = isolation_rule("bn-aaa") + outside_rules("bn-aaa", "") +
                               kAcceptMarks + rule("oifname \"bn-aaa\"" + kMark);
    const std::string tables = filter_sets({"bn-aaa"}) + forward_chain(filter);
    auto net = network("bn-aaa", "172.18.0.0/16");
    net.gateway_mode = GatewayMode::NatUnprotected;
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables,
                      published_masquerades({{"172.18.0.0/16", "bn-aaa"}}) +
                          masquerade("172.18.0.0/16", "bn-aaa"),
                      tables));
}

// routed: from outside only ICMP and the published container ports (the IPv4 set routed_open,
// declared in the ip table only) get in, what gets in is marked, and nothing is masqueraded.
TEST(NftRuleset, RoutedNetworkOpensOnlyIcmpAndItsPublishedPortsAndIsNotMasqueraded) {
    const std::string routed_open =
        "\tset routed_open {\n"
        "\t\ttype ipv4_addr . inet_proto . inet_service\n"
        "\t\telements = { 10.30.0.2 . tcp . 80, 10.30.0.3 . udp . 53 }\n"
        "\t}\n"
        "\n";
    const std::string direct =
        "iifname != @bridges ct state != { established, related } ct status ! dnat";
    const std::string ip =
        filter_sets({"bn-r"}) + routed_open +
        forward_chain(isolation_rule("bn-r") +
                      outside_rules("bn-r", direct +
                                                " meta l4proto != icmp ip daddr . meta l4proto . "
                                                "th dport != @routed_open") +
                      kAcceptMarks + rule("oifname \"bn-r\"" + kMark));
    const std::string ip6 =
        filter_sets({"bn-r"}) +
        forward_chain(isolation_rule("bn-r") +
                      outside_rules("bn-r", direct + " meta l4proto != ipv6-icmp") + kAcceptMarks +
                      rule("oifname \"bn-r\"" + kMark));
    auto net = network("bn-r", "10.30.0.0/24");
    net.gateway_mode = GatewayMode::Routed;
    FirewallSpec spec{.table = "bpfnet_t1",
                      .networks = {net},
                      .ports = {},
                      .routed_ports = {FirewallOpenPort{.proto = IpProto::Tcp,
                                                        .endpoint_ip = *Ipv4::parse("10.30.0.2"),
                                                        .endpoint_port = 80},
                                       FirewallOpenPort{.proto = IpProto::Udp,
                                                        .endpoint_ip = *Ipv4::parse("10.30.0.3"),
                                                        .endpoint_port = 53}}};
    EXPECT_EQ(render_ruleset(spec),
              ruleset(ip, published_masquerades({{"10.30.0.0/24", "bn-r"}}), ip6));
}

// An uplink that is a bridge (the host's NIC enslaved to br0) carries the way out: it is in the
// uplinks set, which the drops of other bridges spare and egress is marked to.
TEST(NftRuleset, UplinksAreDeclaredSoAnUplinkBridgeIsNotAnotherNetwork) {
    const std::string tables =
        filter_sets({"bn-aaa"}, {"bn-aaa"}, {"br0"}) +
        forward_chain(isolation_rule("bn-aaa") + outside_rules("bn-aaa") + kAcceptMarks);
    FirewallSpec spec{.table = "bpfnet_t1",
                      .networks = {network("bn-aaa", "172.18.0.0/16")},
                      .ports = {},
                      .uplinks = {"br0"}};
    EXPECT_EQ(render_ruleset(spec), ruleset(tables,
                                            published_masquerades({{"172.18.0.0/16", "bn-aaa"}}) +
                                                masquerade("172.18.0.0/16", "bn-aaa"),
                                            tables));
}

// A network's routed ports (interface group 7) belong to it as its bridge does: every new rule
// about the bridge has a twin for the group, and the groups set is spared like all_bridges.
TEST(NftRuleset, RoutedPortGroupGetsTwinsOfTheOtherBridgeDirectRoutingAndMarkRules) {
    const std::string groups =
        "\tset groups {\n"
        "\t\ttypeof meta iifgroup\n"
        "\t\telements = { 7 }\n"
        "\t}\n"
        "\n";
    const std::string filter =
        "\t\tiifname \"bn-g\" oifname @bridges oifname != \"bn-g\" ct status ! dnat counter drop "
        "comment \"bpfnet isolation: bn-g\"\n"
        "\t\tiifname \"bn-g\" oifgroup @groups oifgroup != 7 ct status ! dnat counter drop "
        "comment \"bpfnet isolation: bn-g\"\n"
        "\t\tiifgroup 7 oifname @bridges oifname != \"bn-g\" ct status ! dnat counter drop "
        "comment \"bpfnet isolation: bn-g\"\n"
        "\t\tiifgroup 7 oifgroup @groups oifgroup != 7 ct status ! dnat counter drop "
        "comment \"bpfnet isolation: bn-g\"\n"
        "\t\tiifname \"bn-g\" meta oifkind \"bridge\" oifname != @all_bridges oifname != @uplinks "
        "ct status ! dnat counter drop comment \"bpfnet isolation from other bridges, outbound: "
        "bn-g\"\n"
        "\t\tiifgroup 7 meta oifkind \"bridge\" oifname != @all_bridges oifname != @uplinks ct "
        "status ! dnat counter drop comment \"bpfnet isolation from other bridges, outbound: "
        "bn-g\"\n"
        "\t\toifname \"bn-g\" meta iifkind \"bridge\" iifname != @all_bridges iifname != @uplinks "
        "ct status ! dnat counter drop comment \"bpfnet isolation from other bridges, inbound: "
        "bn-g\"\n"
        "\t\toifgroup 7 meta iifkind \"bridge\" iifname != @all_bridges iifname != @uplinks ct "
        "status ! dnat counter drop comment \"bpfnet isolation from other bridges, inbound: "
        "bn-g\"\n"
        "\t\toifname \"bn-g\" iifname != @bridges iifgroup != @groups iifname != { \"eth1\" } "
        "ct state != { established, related } ct status ! dnat counter drop comment \"bpfnet "
        "direct routing: bn-g\"\n"
        "\t\toifgroup 7 iifname != @bridges iifgroup != @groups iifname != { \"eth1\" } ct "
        "state != { established, related } ct status ! dnat counter drop comment \"bpfnet direct "
        "routing: bn-g\"\n" +
        rule("iifname @bridges oifname @bridges" + kMark) +
        rule("iifname @bridges oifgroup @groups" + kMark) +
        rule("iifgroup @groups oifname @bridges" + kMark) +
        rule("iifgroup @groups oifgroup @groups" + kMark) +
        rule("oifname @bridges ct status dnat" + kMark) +
        rule("oifname @bridges ct state established,related" + kMark) +
        rule("oifgroup @groups ct status dnat" + kMark) +
        rule("oifgroup @groups ct state established,related" + kMark) +
        rule("iifname @bridges meta oifkind != \"bridge\"" + kMark) +
        rule("iifname @bridges oifname @uplinks" + kMark) +
        rule("iifgroup @groups meta oifkind != \"bridge\"" + kMark) +
        rule("iifgroup @groups oifname @uplinks" + kMark) +
        rule("iifname { \"eth1\" } oifname \"bn-g\"" + kMark) +
        rule("iifname { \"eth1\" } oifgroup 7" + kMark);
    const std::string tables = filter_sets({"bn-g"}) + groups + forward_chain(filter);
    auto net = network("bn-g", "10.9.0.0/24");
    net.group = 7;
    net.trusted = {"eth1"};
    EXPECT_EQ(render_ruleset(FirewallSpec{.table = "bpfnet_t1", .networks = {net}, .ports = {}}),
              ruleset(tables,
                      published_masquerades({{"10.9.0.0/24", "bn-g"}}, true) +
                          rule("ip saddr 10.9.0.0/24 oifname != \"bn-g\" oifgroup != 7 counter "
                               "masquerade comment \"bpfnet masquerade: bn-g\""),
                      tables, true));
}

TEST(NftRuleset, LoggedDropsCarryTheReasonForTheMonitor) {
    auto net = network("bn-aaa", "172.18.0.0/16");
    FirewallSpec spec{.table = "bpfnet_t1", .networks = {net}, .ports = {}};
    spec.log_drops = true;
    const std::string out = render_ruleset(spec);
    EXPECT_NE(
        out.find("ct status ! dnat counter log prefix \"bpfnet:other-bridge:bn-aaa \" group "
                 "2470 drop comment \"bpfnet isolation from other bridges, outbound: bn-aaa\""),
        std::string::npos)
        << out;
    EXPECT_NE(out.find("counter log prefix \"bpfnet:unpublished:bn-aaa \" group 2470 drop comment "
                       "\"bpfnet direct routing: bn-aaa\""),
              std::string::npos)
        << out;
    // Without the kernel's NFLOG the same rules only count.
    spec.log_drops = false;
    EXPECT_EQ(render_ruleset(spec).find(" log "), std::string::npos);
}

TEST(NftRuleset, LogProbeDeclaresAndDeletesItsTable) {
    const std::string probe = render_log_probe("bpfnet_t1_logprobe");
    EXPECT_NE(probe.find("log prefix \"bpfnet:probe \" group 2470 drop"), std::string::npos);
    EXPECT_NE(probe.find("delete table ip bpfnet_t1_logprobe"), std::string::npos);
}

}  // namespace
}  // namespace bpfnet

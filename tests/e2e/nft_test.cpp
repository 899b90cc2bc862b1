// Privileged tests of the nftables firewall against the real kernel. Each test forks a child that
// moves into fresh network and mount namespaces, so the host's ruleset, links and /run are never
// touched; the child reports problems on stderr and its exit status is the verdict.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

#include "common/privileged.h"
#include "datapath/nft_ruleset.h"

namespace bpfnet {
namespace {

// GoogleTest assertions in the forked child would only update the child's copy of the results, so
// the child uses this and turns the first failure into a non-zero exit.
#define CHILD_CHECK(cond, what)                                                         \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::cerr << __FILE__ << ":" << __LINE__ << ": " << #cond << ": " << (what) \
                      << std::endl;                                                     \
            return false;                                                               \
        }                                                                               \
    } while (0)

// Runs `body` in a child in new network and mount namespaces; the test fails unless it returns
// true.
void run_in_fresh_netns(const std::function<bool()>& body) {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);  // buffered output would otherwise be written twice
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
        if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
            std::perror("unshare");
            _exit(2);
        }
        // A private tmpfs on /run gives `ip netns add` a /run/netns that vanishes with the child.
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount("bpfnet-nft-test", "/run", "tmpfs", 0, nullptr) != 0) {
            std::perror("mount");
            _exit(2);
        }
        bool ok = body();
        std::cout.flush();
        std::cerr.flush();
        _exit(ok ? 0 : 1);  // _exit: no GoogleTest or static teardown in the child
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's checks failed (see its stderr above)";
}

bool sh(const std::string& command) {
    return std::system(command.c_str()) == 0;
}

std::string capture(const std::string& command) {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    pclose(pipe);
    return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

Cidr cidr(const char* text) {
    return *Cidr::parse(text);
}

const char* const kTable = "bpfnet_nfttest";

FirewallSpec sample_spec() {
    return FirewallSpec{
        .table = kTable,
        .networks =
            {
                FirewallNetwork{.bridge = "bnt-def", .subnet = cidr("10.77.1.0/24")},
                FirewallNetwork{
                    .bridge = "bnt-noicc", .subnet = cidr("10.77.2.0/24"), .icc = false},
                FirewallNetwork{
                    .bridge = "bnt-nomasq", .subnet = cidr("10.77.3.0/24"), .masquerade = false},
                FirewallNetwork{
                    .bridge = "bnt-int", .subnet = cidr("10.77.4.0/24"), .internal = true},
                // Must match only the device literally named "bnt-x*", not every "bnt-x..." device.
                FirewallNetwork{.bridge = "bnt-x*", .subnet = cidr("10.77.5.0/24")},
                // Every gateway mode's rules must load too.
                FirewallNetwork{.bridge = "bnt-trust",
                                .subnet = cidr("10.77.6.0/24"),
                                .trusted = {"eth9", "vx.1"}},
                FirewallNetwork{.bridge = "bnt-unprot",
                                .subnet = cidr("10.77.7.0/24"),
                                .gateway_mode = GatewayMode::NatUnprotected},
                FirewallNetwork{.bridge = "bnt-routed",
                                .subnet = cidr("10.77.8.0/24"),
                                .gateway_mode = GatewayMode::Routed},
            },
        // Published ports: the kernel must accept the DNAT maps and chains for every protocol.
        .ports =
            {
                FirewallPort{.proto = IpProto::Tcp,
                             .host_ip = {},
                             .host_port = 8080,
                             .endpoint_ip = *Ipv4::parse("10.77.1.2"),
                             .endpoint_port = 80},
                FirewallPort{.proto = IpProto::Udp,
                             .host_ip = *Ipv4::parse("127.0.0.1"),
                             .host_port = 5353,
                             .endpoint_ip = *Ipv4::parse("10.77.1.3"),
                             .endpoint_port = 53},
                FirewallPort{.proto = IpProto::Sctp,
                             .host_ip = {},
                             .host_port = 3868,
                             .endpoint_ip = *Ipv4::parse("10.77.2.2"),
                             .endpoint_port = 3868},
            },
        .routed_ports = {FirewallOpenPort{.proto = IpProto::Tcp,
                                          .endpoint_ip = *Ipv4::parse("10.77.8.2"),
                                          .endpoint_port = 80},
                         FirewallOpenPort{.proto = IpProto::Udp,
                                          .endpoint_ip = *Ipv4::parse("10.77.8.2"),
                                          .endpoint_port = 53}},
        .uplinks = {"eth9", "br-up"},
        // The drops `bpfnet monitor` shows go to NFLOG: the kernel must take those rules too.
        .log_drops = true};
}

TEST(NftRuleset, ApplyReplacesIdempotentlyAndTeardownRemovesTables) {
    BPFNET_REQUIRE_PRIVILEGED();
    run_in_fresh_netns([] {
        NftRunner nft;
        const std::string ruleset = render_ruleset(sample_spec());
        // Twice: the second run must replace the tables, not fail or add duplicate rules.
        for (int i = 0; i < 2; ++i) {
            auto st = nft.run(ruleset);
            CHILD_CHECK(st.ok(), st.error().message);
        }
        const std::string ip = capture(std::string("nft list table ip ") + kTable);
        const std::string ip6 = capture(std::string("nft list table ip6 ") + kTable);
        // The kernel took the published-port maps and NAT chains, every protocol included.
        CHILD_CHECK(contains(ip, "sctp . 3868 : 10.77.2.2 . 3868"), ip);
        CHILD_CHECK(contains(ip, "127.0.0.1 . udp . 5353 : 10.77.1.3 . 53"), ip);
        CHILD_CHECK(contains(ip,
                             "fib daddr type local dnat ip to meta l4proto . th dport map "
                             "@published_any"),
                    ip);
        CHILD_CHECK(contains(ip, "ct status dnat ip saddr 10.77.1.0/24 ip daddr 10.77.1.0/24"), ip);
        for (const std::string& listing : {ip, ip6}) {
            CHILD_CHECK(
                contains(listing, "type filter hook forward priority filter - 1; policy accept;"),
                listing);
            // DNATed flows (published ports) are exempt from isolation.
            CHILD_CHECK(contains(listing,
                                 "iifname \"bnt-def\" oifname @bridges oifname != \"bnt-def\" "
                                 "ct status ! dnat counter packets 0 bytes 0 drop"),
                        listing);
            CHILD_CHECK(contains(listing,
                                 "iifname \"bnt-noicc\" oifname \"bnt-noicc\" counter packets 0 "
                                 "bytes 0 drop comment \"bpfnet icc=false: bnt-noicc\""),
                        listing);
            CHILD_CHECK(contains(listing,
                                 "iifname \"bnt-int\" oifname != \"bnt-int\" counter packets 0 "
                                 "bytes 0 drop"),
                        listing);
            CHILD_CHECK(contains(listing,
                                 "oifname \"bnt-int\" iifname != \"bnt-int\" counter packets 0 "
                                 "bytes 0 drop"),
                        listing);
            // nft lists a literal trailing asterisk escaped, a wildcard without the backslash.
            CHILD_CHECK(contains(listing, "iifname \"bnt-x\\*\" oifname @bridges"), listing);
            // One rule per line in the listing: count the isolation rules of bnt-def.
            size_t count = 0;
            for (size_t at = 0;
                 (at = listing.find("bpfnet isolation: bnt-def", at)) != std::string::npos; ++at)
                ++count;
            CHILD_CHECK(count == 1, listing);
        }
        CHILD_CHECK(contains(ip,
                             "ip saddr 10.77.1.0/24 oifname != \"bnt-def\" counter packets 0 bytes "
                             "0 masquerade"),
                    ip);
        CHILD_CHECK(contains(ip, "ip saddr 10.77.2.0/24 oifname != \"bnt-noicc\""), ip);
        // masquerade=false: no outbound masquerade (the hairpin rule for published ports stays).
        CHILD_CHECK(!contains(ip, "ip saddr 10.77.3.0/24 oifname"), ip);
        CHILD_CHECK(!contains(ip, "ip saddr 10.77.4.0/24"), ip);  // internal
        CHILD_CHECK(!contains(ip6, "postrouting"), ip6);
        // Gateway modes: the kernel took each mode's rules as rendered.
        // (How nft lists the negated ct state set is nft's business: checked around it.)
        CHILD_CHECK(contains(ip, "oifname \"bnt-def\" iifname != @bridges ct state"), ip);
        CHILD_CHECK(contains(ip,
                             "ct status ! dnat counter packets 0 bytes 0 log prefix "
                             "\"bpfnet:unpublished:bnt-def \" group 2470 drop comment \"bpfnet "
                             "direct routing: bnt-def\""),
                    ip);
        CHILD_CHECK(contains(ip, "iifname != { \"eth9\", \"vx.1\" }") ||
                        contains(ip, "iifname != { \"vx.1\", \"eth9\" }"),
                    ip);
        CHILD_CHECK(!contains(ip, "direct routing: bnt-unprot"), ip);
        CHILD_CHECK(contains(ip,
                             "meta l4proto != icmp ip daddr . meta l4proto . th dport != "
                             "@routed_open"),
                    ip);
        CHILD_CHECK(contains(ip, "10.77.8.2 . tcp . 80"), ip);
        CHILD_CHECK(!contains(ip, "ip saddr 10.77.8.0/24 oifname"), ip);  // routed: no NAT
        const std::string uplinks = ip.substr(ip.find("set uplinks"), 120);
        CHILD_CHECK(contains(uplinks, "\"br-up\"") && contains(uplinks, "\"eth9\""), ip);
        CHILD_CHECK(contains(ip,
                             "meta oifkind \"bridge\" oifname != @all_bridges oifname != "
                             "@uplinks ct status ! dnat counter packets 0 bytes 0 log prefix "
                             "\"bpfnet:other-bridge:bnt-def \" group 2470 drop"),
                    ip);

        // A smaller desired state replaces the old one entirely.
        FirewallSpec smaller = sample_spec();
        smaller.networks.resize(1);
        auto st = nft.run(render_ruleset(smaller));
        CHILD_CHECK(st.ok(), st.error().message);
        const std::string after = capture(std::string("nft list ruleset"));
        CHILD_CHECK(contains(after, "bnt-def"), after);
        CHILD_CHECK(!contains(after, "bnt-noicc") && !contains(after, "bnt-int"), after);

        for (int i = 0; i < 2; ++i) {
            auto down = nft.run(render_teardown(kTable));
            CHILD_CHECK(down.ok(), down.error().message);
        }
        const std::string tables = capture("nft list tables");
        CHILD_CHECK(tables.empty(), tables);
        return true;
    });
}

// Published ports come and go as element edits on the applied ruleset: the kernel takes them,
// the listing shows exactly the ports of the last edit, and a delete of a port that is not there
// fails without changing anything (the agent then syncs the whole ruleset).
TEST(NftRuleset, PortElementEditsChangeOnlyTheirPorts) {
    BPFNET_REQUIRE_PRIVILEGED();
    run_in_fresh_netns([] {
        NftRunner nft;
        auto st = nft.run(render_ruleset(sample_spec()));
        CHILD_CHECK(st.ok(), st.error().message);
        PortElements added{
            .add = true,
            .ports = {FirewallPort{.proto = IpProto::Tcp,
                                   .host_ip = {},
                                   .host_port = 9090,
                                   .endpoint_ip = *Ipv4::parse("10.77.1.4"),
                                   .endpoint_port = 90},
                      FirewallPort{.proto = IpProto::Udp,
                                   .host_ip = *Ipv4::parse("127.0.0.2"),
                                   .host_port = 9091,
                                   .endpoint_ip = *Ipv4::parse("10.77.1.4"),
                                   .endpoint_port = 91}},
            .routed_ports = {FirewallOpenPort{.proto = IpProto::Tcp,
                                              .endpoint_ip = *Ipv4::parse("10.77.8.3"),
                                              .endpoint_port = 443}}};
        st = nft.run(render_port_elements(kTable, added));
        CHILD_CHECK(st.ok(), st.error().message);
        std::string ip = capture(std::string("nft list table ip ") + kTable);
        for (const char* element :
             {"tcp . 9090 : 10.77.1.4 . 90", "127.0.0.2 . udp . 9091 : 10.77.1.4 . 91",
              "10.77.8.3 . tcp . 443", "tcp . 8080 : 10.77.1.2 . 80"})
            CHILD_CHECK(contains(ip, element), ip);

        PortElements removed = added;
        removed.add = false;
        st = nft.run(render_port_elements(kTable, removed));
        CHILD_CHECK(st.ok(), st.error().message);
        ip = capture(std::string("nft list table ip ") + kTable);
        CHILD_CHECK(!contains(ip, "9090") && !contains(ip, "9091") && !contains(ip, "443"), ip);
        // The ports the ruleset was rendered with are untouched.
        CHILD_CHECK(contains(ip, "tcp . 8080 : 10.77.1.2 . 80"), ip);
        CHILD_CHECK(contains(ip, "10.77.8.2 . tcp . 80"), ip);

        // Deleting again: the transaction fails as a whole and leaves the ruleset as it was.
        st = nft.run(render_port_elements(kTable, removed));
        CHILD_CHECK(!st.ok(), "deleting absent elements succeeded");
        CHILD_CHECK(capture(std::string("nft list table ip ") + kTable) == ip, "ruleset changed");
        st = nft.run(render_teardown(kTable));
        CHILD_CHECK(st.ok(), st.error().message);
        return true;
    });
}

// Networks with routed endpoint ports (interface groups): the kernel takes the group set and every
// twin rule, and the network's own group is never "elsewhere".
TEST(NftRuleset, RoutedPortGroupsAreMatchedLikeTheirBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    run_in_fresh_netns([] {
        NftRunner nft;
        FirewallSpec spec = sample_spec();
        spec.networks = {
            FirewallNetwork{
                .bridge = "bnt-r1", .subnet = cidr("10.77.6.0/24"), .group = 0x77010001},
            FirewallNetwork{.bridge = "bnt-r2",
                            .subnet = cidr("10.77.7.0/24"),
                            .icc = false,
                            .group = 0x77010002},
            FirewallNetwork{.bridge = "bnt-r3",
                            .subnet = cidr("10.77.8.0/24"),
                            .internal = true,
                            .group = 0x77010003},
            FirewallNetwork{.bridge = "bnt-plain", .subnet = cidr("10.77.9.0/24")},
        };
        auto st = nft.run(render_ruleset(spec));
        CHILD_CHECK(st.ok(), st.error().message);
        const std::string ip = capture(std::string("nft list table ip ") + kTable);
        const std::string g1 = std::to_string(0x77010001), g2 = std::to_string(0x77010002),
                          g3 = std::to_string(0x77010003);
        CHILD_CHECK(contains(ip, "elements = { " + g1), ip);
        CHILD_CHECK(contains(ip, "iifgroup " + g1 + " oifgroup @groups oifgroup != " + g1 +
                                     " ct status ! dnat counter packets 0 bytes 0 drop"),
                    ip);
        CHILD_CHECK(contains(ip, "iifname \"bnt-r1\" oifgroup @groups oifgroup != " + g1), ip);
        CHILD_CHECK(contains(ip, "iifgroup " + g1 + " oifname @bridges oifname != \"bnt-r1\""), ip);
        CHILD_CHECK(contains(ip, "iifgroup " + g2 + " oifgroup " + g2 + " counter"), ip);
        CHILD_CHECK(contains(ip, "iifname \"bnt-r2\" oifgroup " + g2 + " counter"), ip);
        CHILD_CHECK(
            contains(ip, "iifname \"bnt-r3\" oifname != \"bnt-r3\" oifgroup != " + g3 + " counter"),
            ip);
        CHILD_CHECK(contains(ip, "oifgroup " + g3 + " iifname != \"bnt-r3\" iifgroup != " + g3),
                    ip);
        CHILD_CHECK(contains(ip, "iifgroup @groups ip daddr 127.0.0.0/8"), ip);
        CHILD_CHECK(contains(ip, "ip saddr 10.77.6.0/24 oifname != \"bnt-r1\" oifgroup != " + g1 +
                                     " counter"),
                    ip);
        CHILD_CHECK(contains(ip, "ip saddr 10.77.9.0/24 oifname != \"bnt-plain\" counter"), ip);
        // Routed ports have route_localnet on whether or not anything is published: the guard
        // stays without published ports, as do the (empty) maps the next port is added to.
        spec.ports.clear();
        st = nft.run(render_ruleset(spec));
        CHILD_CHECK(st.ok(), st.error().message);
        const std::string unpublished = capture(std::string("nft list table ip ") + kTable);
        CHILD_CHECK(contains(unpublished, "iifgroup @groups ip daddr 127.0.0.0/8"), unpublished);
        CHILD_CHECK(contains(unpublished, "map published_any"), unpublished);
        CHILD_CHECK(!contains(unpublished, " : 10.77."), unpublished);
        auto down = nft.run(render_teardown(kTable));
        CHILD_CHECK(down.ok(), down.error().message);
        return true;
    });
}

TEST(NftRuleset, FailedApplyLeavesThePreviousRulesetInPlace) {
    BPFNET_REQUIRE_PRIVILEGED();
    run_in_fresh_netns([] {
        NftRunner nft;
        auto st = nft.run(render_ruleset(sample_spec()));
        CHILD_CHECK(st.ok(), st.error().message);
        // A '"' cannot be written in an nft string: the script must fail as a whole.
        FirewallSpec bad = sample_spec();
        bad.networks.resize(1);
        bad.networks.push_back(
            FirewallNetwork{.bridge = "q\"uote", .subnet = cidr("10.77.9.0/24")});
        auto failed = nft.run(render_ruleset(bad));
        CHILD_CHECK(!failed.ok(), "a ruleset naming an inexpressible interface was accepted");
        CHILD_CHECK(failed.error().kind == ErrorKind::Internal, failed.error().message);
        CHILD_CHECK(
            contains(failed.error().message, "nftables: ") &&
                contains(failed.error().message, "interface_name_not_expressible_in_nftables"),
            failed.error().message);
        const std::string listing = capture(std::string("nft list table ip ") + kTable);
        CHILD_CHECK(contains(listing, "bnt-noicc") && contains(listing, "bnt-int"), listing);
        return true;
    });
}

// Real traffic through real bridges. Topology inside the child's namespace (the "host"):
//   bnt-a (10.77.1.1/24, icc=false): containers a1 .2, a2 .3 (plus fd77:1::2/3 for IPv6)
//   bnt-b (10.77.2.1/24, default):   container b1 .2
//   bnt-c (10.77.3.1/24, internal):  containers c1 .2, c2 .3
//   h-out (10.77.9.1/30) <-> netns "out" (10.77.9.2/30), which has no route back to the
//   container subnets, so a reply reaches a container only if its traffic was masqueraded.
bool build_topology() {
    std::string script =
        "set -e\n"
        "ip link set lo up\n"
        "sysctl -qw net.ipv4.ip_forward=1\n"
        "ip netns add out\n"
        "ip link add h-out type veth peer name eth0 netns out\n"
        "ip addr add 10.77.9.1/30 dev h-out\n"
        "ip link set h-out up\n"
        "ip -n out addr add 10.77.9.2/30 dev eth0\n"
        "ip -n out link set eth0 up\n";
    for (const char* br : {"a", "b", "c"}) {
        const std::string n = br[0] == 'a' ? "1" : br[0] == 'b' ? "2" : "3";
        script += std::string("ip link add bnt-") + br + " type bridge\n";
        script += std::string("ip addr add 10.77.") + n + ".1/24 dev bnt-" + br + "\n";
        script += std::string("ip link set bnt-") + br + " up\n";
    }
    struct Container {
        const char *name, *bridge, *ip, *gw, *ip6;
    };
    for (const Container& c : {Container{"a1", "bnt-a", "10.77.1.2", "10.77.1.1", "fd77:1::2"},
                               Container{"a2", "bnt-a", "10.77.1.3", "10.77.1.1", "fd77:1::3"},
                               Container{"b1", "bnt-b", "10.77.2.2", "10.77.2.1", nullptr},
                               Container{"c1", "bnt-c", "10.77.3.2", "10.77.3.1", nullptr},
                               Container{"c2", "bnt-c", "10.77.3.3", "10.77.3.1", nullptr}}) {
        const std::string name = c.name;
        script += "ip netns add " + name + "\n";
        script += "ip link add h-" + name + " type veth peer name eth0 netns " + name + "\n";
        script += "ip link set h-" + name + " master " + c.bridge + " up\n";
        script += "ip -n " + name + " link set lo up\n";
        script += "ip -n " + name + " addr add " + c.ip + "/24 dev eth0\n";
        if (c.ip6) script += "ip -n " + name + " -6 addr add " + c.ip6 + "/64 dev eth0 nodad\n";
        script += "ip -n " + name + " link set eth0 up\n";
        script += "ip -n " + name + " route add default via " + c.gw + "\n";
    }
    FILE* shell = popen("sh", "w");
    if (!shell) return false;
    fputs(script.c_str(), shell);
    return pclose(shell) == 0;
}

// Expected successes get a few tries (first-packet ARP/neighbour resolution); expected failures
// get one, with a short timeout.
bool ping(const std::string& from, const std::string& to, bool expect) {
    const std::string cmd =
        "ip netns exec " + from + " ping -q -c 1 -W 1 " + to + " >/dev/null 2>&1";
    for (int attempt = 0; attempt < (expect ? 3 : 1); ++attempt)
        if (sh(cmd)) return true;
    return false;
}

#define CHILD_CHECK_PING(from, to, expect)  \
    CHILD_CHECK(                            \
        ping(from, to, expect) == (expect), \
        std::string(from) + " -> " + (to) + ((expect) ? " should work" : " should be blocked"))

TEST(NftRuleset, TrafficFollowsTheRuleset) {
    BPFNET_REQUIRE_PRIVILEGED();
    run_in_fresh_netns([] {
        CHILD_CHECK(build_topology(), "could not build the test topology");
        // Without a ruleset: everything is reachable, and nothing is masqueraded.
        CHILD_CHECK_PING("a1", "10.77.1.3", true);
        CHILD_CHECK_PING("a1", "fd77:1::3", true);
        CHILD_CHECK_PING("a1", "10.77.2.2", true);
        CHILD_CHECK_PING("b1", "10.77.9.2", false);

        FirewallSpec spec{
            .table = kTable,
            .networks =
                {
                    FirewallNetwork{
                        .bridge = "bnt-a", .subnet = cidr("10.77.1.0/24"), .icc = false},
                    FirewallNetwork{.bridge = "bnt-b", .subnet = cidr("10.77.2.0/24")},
                    FirewallNetwork{
                        .bridge = "bnt-c", .subnet = cidr("10.77.3.0/24"), .internal = true},
                },
            .ports = {}};
        NftRunner nft;
        auto st = nft.run(render_ruleset(spec));
        CHILD_CHECK(st.ok(), st.error().message);

        // icc=false: endpoints cannot talk (IPv4 or IPv6), the gateway and the outside still work.
        CHILD_CHECK_PING("a1", "10.77.1.3", false);
        CHILD_CHECK_PING("a1", "fd77:1::3", false);
        CHILD_CHECK_PING("a1", "10.77.1.1", true);
        CHILD_CHECK_PING("a1", "10.77.9.2", true);
        // Isolation between networks, both ways.
        CHILD_CHECK_PING("a1", "10.77.2.2", false);
        CHILD_CHECK_PING("b1", "10.77.1.2", false);
        // Masquerade: the outside answers although it has no route to the containers.
        CHILD_CHECK_PING("b1", "10.77.9.2", true);
        // Internal: its endpoints reach each other and the gateway, nothing beyond.
        CHILD_CHECK_PING("c1", "10.77.3.3", true);
        CHILD_CHECK_PING("c1", "10.77.3.1", true);
        CHILD_CHECK_PING("c1", "10.77.9.2", false);
        CHILD_CHECK_PING("b1", "10.77.3.2", false);

        // The counters show which rule dropped what (used by `status`).
        const std::string listing = capture(std::string("nft list table ip ") + kTable);
        for (const char* rule : {"bpfnet icc=false: bnt-a", "bpfnet isolation: bnt-a",
                                 "bpfnet internal, outbound: bnt-c"}) {
            const size_t at = listing.find(rule);
            CHILD_CHECK(at != std::string::npos, listing);
            const size_t line = listing.rfind('\n', at);
            CHILD_CHECK(!contains(listing.substr(line, at - line), "counter packets 0 "),
                        std::string(rule) + " counted nothing:\n" + listing);
        }

        // Re-rendering with masquerade off takes effect.
        spec.networks[1].masquerade = false;
        st = nft.run(render_ruleset(spec));
        CHILD_CHECK(st.ok(), st.error().message);
        CHILD_CHECK_PING("b1", "10.77.9.2", false);

        // Teardown restores plain bridging and routing.
        st = nft.run(render_teardown(kTable));
        CHILD_CHECK(st.ok(), st.error().message);
        CHILD_CHECK_PING("a1", "10.77.1.3", true);
        CHILD_CHECK_PING("a1", "10.77.2.2", true);
        return true;
    });
}

}  // namespace
}  // namespace bpfnet

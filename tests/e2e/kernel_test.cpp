// The netlink, network namespace and sysctl wrappers against the real kernel. Needs root.
//
// Isolation: every test makes its own namespaces in a private temporary directory (never
// /run/netns), names its links "bnt" + random suffix, picks a 10.211.x.0/24 subnet no host route
// overlaps, and only sends traffic to addresses inside namespaces it created. The fixture removes
// everything in TearDown, also when an assertion failed halfway.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/privileged.h"
#include "kernel/host_watch.h"
#include "kernel/neighbours.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"
#include "kernel/routed_port.h"
#include "kernel/sysctl.h"

namespace bpfnet::kernel {
namespace {

// Works for both Status and Result<T>; the message is only evaluated on failure.
#define ASSERT_OK(r) ASSERT_TRUE((r).ok()) << (r).error().message
#define EXPECT_OK(r) EXPECT_TRUE((r).ok()) << (r).error().message

std::mt19937& rng() {
    static std::mt19937 gen{std::random_device{}()};
    return gen;
}

std::string random_hex(int digits) {
    std::uniform_int_distribution<int> dist(0, 15);
    std::string out;
    for (int i = 0; i < digits; ++i) out += "0123456789abcdef"[dist(rng())];
    return out;
}

ino_t inode_of(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Retries a few times: the first packet may be spent on ARP or on the port becoming ready.
bool ping_ok(const std::string& from_netns, Ipv4 target) {
    std::string prefix = from_netns.empty() ? "" : fmt::format("nsenter --net={} ", from_netns);
    std::string cmd = fmt::format("{}ping -c1 -W1 -q {} >/dev/null 2>&1", prefix, target.str());
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (std::system(cmd.c_str()) == 0) return true;
    }
    return false;
}

class KernelTest : public ::testing::Test {
  protected:
    void SetUp() override {
        BPFNET_REQUIRE_PRIVILEGED();
        char tmpl[] = "/tmp/bnt-k-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        auto sock = NlSocket::open();
        ASSERT_OK(sock);
        host_.emplace(std::move(sock).value());
        pick_subnet();
    }

    void TearDown() override {
        // Host links first: deleting a veth's host end also removes its peer from the sandbox.
        if (host_) {
            for (const auto& name : links_) EXPECT_OK(delete_link(*host_, name));
        }
        for (const auto& path : netns_) EXPECT_OK(delete_named_netns(path));
        if (!dir_.empty()) {
            // create_named_netns turned the directory into a (shared) bind mount of itself.
            umount2(dir_.c_str(), MNT_DETACH);
            EXPECT_EQ(rmdir(dir_.c_str()), 0) << dir_;
        }
    }

    NlSocket& host() { return *host_; }

    // A fresh host link name, registered for cleanup before the test creates it.
    std::string new_link(char tag) {
        std::string name = fmt::format("bnt{}{}", tag, random_hex(8));  // 12 chars < IFNAMSIZ
        links_.push_back(name);
        return name;
    }
    // A name for links made inside a sandbox; they vanish with their namespace.
    static std::string sandbox_link(char tag) { return fmt::format("bnt{}{}", tag, random_hex(8)); }

    std::string new_netns_name() { return fmt::format("bnt-k-{}-{}", getpid(), netns_counter_++); }
    Result<std::string> new_netns() {
        std::string name = new_netns_name();
        netns_.push_back(dir_ + "/" + name);
        return create_named_netns(name, dir_);
    }

    // 10.211.<octet>.<host>/24 in this test's subnet.
    Cidr addr(uint8_t host_byte) const {
        return Cidr{Ipv4{(10u << 24) | (211u << 16) | (octet_ << 8) | host_byte}, 24};
    }

    std::string dir_;
    std::optional<NlSocket> host_;
    std::vector<std::string> links_;
    std::vector<std::string> netns_;
    int netns_counter_ = 0;
    uint32_t octet_ = 0;

  private:
    // A /24 no existing host route overlaps, so a concurrent run (or anything else on the host
    // using 10.211/16) cannot make routing ambiguous.
    void pick_subnet() {
        auto routes = list_ipv4_route_destinations(host());
        ASSERT_OK(routes);
        std::uniform_int_distribution<uint32_t> dist(0, 255);
        for (int attempt = 0; attempt < 256; ++attempt) {
            octet_ = dist(rng());
            Cidr candidate = addr(0).masked();
            if (std::none_of(routes->begin(), routes->end(),
                             [&](const Cidr& r) { return r.overlaps(candidate); })) {
                return;
            }
        }
        FAIL() << "no free /24 in 10.211.0.0/16";
    }
};

bool contains(const std::vector<Cidr>& list, const Cidr& c) {
    return std::find(list.begin(), list.end(), c) != list.end();
}

// -------------------------------------------------------------------------------------------------
// Links and addresses
// -------------------------------------------------------------------------------------------------

TEST_F(KernelTest, BridgeWithAddressIsCreatedAndListed) {
    std::string br = new_link('b');
    ASSERT_OK(create_bridge(host(), br, 1400, "bpfnet-test"));

    auto found = find_link(host(), br);
    ASSERT_OK(found);
    ASSERT_TRUE(found->has_value());
    const LinkInfo& info = **found;
    EXPECT_GT(info.ifindex, 0);
    EXPECT_EQ(info.name, br);
    EXPECT_EQ(info.kind, "bridge");
    EXPECT_EQ(info.alias, "bpfnet-test");
    EXPECT_TRUE(info.up);
    EXPECT_EQ(info.mtu, 1400u);
    EXPECT_EQ(info.master_ifindex, 0);
    EXPECT_FALSE(info.mac.is_zero());
    EXPECT_FALSE(info.mac.is_multicast());
    EXPECT_TRUE(info.mac.bytes[0] & 0x02) << info.mac.str();  // locally administered

    ASSERT_OK(add_address(host(), br, addr(1)));
    EXPECT_OK(add_address(host(), br, addr(1)));  // the same address again is success
    auto addrs = list_addresses(host(), br);
    ASSERT_OK(addrs);
    EXPECT_EQ(*addrs, std::vector<Cidr>{addr(1)});
    // The whole namespace's addresses in one dump include it, with its link.
    auto all = list_all_ipv4_addresses(host());
    ASSERT_OK(all);
    EXPECT_EQ(std::count_if(all->begin(), all->end(),
                            [&](const InterfaceAddress& a) {
                                return a.ifindex == info.ifindex && a.address == addr(1);
                            }),
              1);

    auto links = list_links(host());
    ASSERT_OK(links);
    auto it =
        std::find_if(links->begin(), links->end(), [&](const LinkInfo& l) { return l.name == br; });
    ASSERT_NE(it, links->end());
    EXPECT_EQ(it->ifindex, info.ifindex);
    EXPECT_EQ(it->kind, "bridge");
    EXPECT_EQ(it->alias, "bpfnet-test");

    Status again = create_bridge(host(), br, 1400, "other");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(again.error().message, fmt::format("create bridge {}: File exists", br));

    // A failed create must not have touched the existing bridge.
    auto after = find_link(host(), br);
    ASSERT_OK(after);
    ASSERT_TRUE(after->has_value());
    EXPECT_EQ((*after)->alias, "bpfnet-test");
}

// A bridge without STP still announces each port forward_delay after it joins: bpfnet's bridges
// have none, and one made with the kernel's default (15 s) gets it zeroed.
TEST_F(KernelTest, BridgesHaveNoForwardDelay) {
    auto forward_delay = [](const std::string& br) {
        std::string out;
        FILE* pipe = popen(("ip -d link show dev " + br).c_str(), "r");
        char buf[1024];
        while (pipe && fgets(buf, sizeof buf, pipe)) out += buf;
        if (pipe) pclose(pipe);
        const size_t at = out.find("forward_delay ");
        return at == std::string::npos ? out : out.substr(at, out.find(' ', at + 14) - at);
    };
    std::string ours = new_link('b');
    ASSERT_OK(create_bridge(host(), ours, 1500, ""));
    EXPECT_EQ(forward_delay(ours), "forward_delay 0");

    std::string made_elsewhere = new_link('b');
    ASSERT_EQ(std::system(("ip link add " + made_elsewhere + " type bridge").c_str()), 0);
    EXPECT_EQ(forward_delay(made_elsewhere), "forward_delay 1500");
    ASSERT_OK(zero_bridge_forward_delay(host(), made_elsewhere));
    EXPECT_EQ(forward_delay(made_elsewhere), "forward_delay 0");
}

// An endpoint's host end (host_ipv6 = false) never carries IPv6: no link-local address and so no
// route of it in the host's IPv6 FIB, which the kernel walks on every link down. Another veth keeps
// the kernel's default.
TEST_F(KernelTest, VethHostEndWithoutIpv6HasNoIpv6) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string without = new_link('v');
    std::string with = new_link('w');
    VethSpec spec{without, "", "", "eth0", *ns, MacAddr{}, 1500};
    spec.host_ipv6 = false;
    ASSERT_OK(create_veth(host(), spec));
    ASSERT_OK(create_veth(host(), VethSpec{with, "", "", "eth1", *ns, MacAddr{}, 1500}));
    auto off = read_sysctl("net/ipv6/conf/" + without + "/disable_ipv6");
    ASSERT_OK(off);
    EXPECT_EQ(*off, "1");
    auto on = read_sysctl("net/ipv6/conf/" + with + "/disable_ipv6");
    ASSERT_OK(on);
    EXPECT_EQ(*on, "0");
    auto link = find_link(host(), without);
    ASSERT_OK(link);
    ASSERT_TRUE(link->has_value());
    EXPECT_TRUE((*link)->up);  // off before it went up, and up all the same
}

TEST_F(KernelTest, LinkAliasAndMasterCanBeChanged) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string br = new_link('b');
    std::string veth = new_link('v');
    ASSERT_OK(create_bridge(host(), br, 1500, ""));
    ASSERT_OK(create_veth(host(), VethSpec{veth, "", "", "eth0", *ns, MacAddr{}, 1500}));

    ASSERT_OK(set_link_alias(host(), veth, "bpfnet-ep"));
    ASSERT_OK(set_link_master(host(), veth, br));
    auto bridge = find_link(host(), br);
    auto port = find_link(host(), veth);
    ASSERT_OK(bridge);
    ASSERT_OK(port);
    ASSERT_TRUE(bridge->has_value() && port->has_value());
    EXPECT_EQ((*port)->alias, "bpfnet-ep");
    EXPECT_EQ((*port)->master_ifindex, (*bridge)->ifindex);

    ASSERT_OK(set_link_master(host(), veth, ""));  // empty master detaches
    port = find_link(host(), veth);
    ASSERT_OK(port);
    ASSERT_TRUE(port->has_value());
    EXPECT_EQ((*port)->master_ifindex, 0);

    Status missing = set_link_up(host(), new_link('x'));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);
}

// A Linux bridge numbers its ports in 10 bits: the 1,024th is refused as a full network (the
// datapath then routes the endpoint, see RoutedPortTakesTheBridgesMacGroupRouteAndNeighbour).
// Inside a namespace of its own: 2,048 links never show up on the host.
TEST_F(KernelTest, FullBridgeIsAFullNetwork) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    auto inner = NlSocket::open_in_netns(*ns);
    ASSERT_OK(inner);
    ASSERT_OK(create_bridge(*inner, "br-full", 1500, ""));
    for (int i = 0; i < kMaxBridgePorts; ++i) {
        ASSERT_OK(create_veth(*inner, VethSpec{fmt::format("p{}", i), "", "br-full",
                                               fmt::format("q{}", i), "", MacAddr{}, 1500}));
    }
    ASSERT_OK(create_veth(*inner, VethSpec{"over", "", "", "over-peer", "", MacAddr{}, 1500}));
    Status full = set_link_master(*inner, "over", "br-full");
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().kind, ErrorKind::Exhausted);
    EXPECT_NE(full.error().message.find("the network is full: its bridge br-full already has 1023 "
                                        "ports"),
              std::string::npos)
        << full.error().message;
    // A port already there is no new request: no error from a full bridge.
    EXPECT_OK(set_link_master(*inner, "p0", "br-full"));
}

TEST_F(KernelTest, RoutedPortTakesTheBridgesMacGroupRouteAndNeighbour) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string br = new_link('b');
    std::string veth = new_link('v');
    ASSERT_OK(create_bridge(host(), br, 1500, ""));
    ASSERT_OK(add_address(host(), br, addr(1)));
    ASSERT_OK(create_veth(host(), VethSpec{veth, "", br, "eth0", *ns, MacAddr{}, 1500}));
    const MacAddr endpoint_mac = MacAddr::from_ipv4(addr(7).addr);
    const RoutedPortSpec spec{.ifname = veth,
                              .bridge = br,
                              .group = 0x62700042,
                              .endpoint_ip = addr(7).addr,
                              .endpoint_mac = endpoint_mac,
                              .gateway = addr(1).addr};
    // Twice: idempotent, and the second run starts from a routed port, not a bridge port.
    for (int i = 0; i < 2; ++i) ASSERT_OK(make_routed_port(host(), spec));
    auto bridge = find_link(host(), br);
    auto port = find_link(host(), veth);
    ASSERT_OK(bridge);
    ASSERT_OK(port);
    ASSERT_TRUE(bridge->has_value() && port->has_value());
    EXPECT_EQ((*port)->master_ifindex, 0);
    EXPECT_EQ((*port)->group, 0x62700042u);
    EXPECT_EQ((*port)->mac, (*bridge)->mac);
    EXPECT_TRUE((*port)->up);
    EXPECT_TRUE(is_routed_port(**port, 0x62700042));
    EXPECT_FALSE(is_routed_port(**port, 0x62700043));
    auto routes = list_ipv4_route_destinations(host());
    ASSERT_OK(routes);
    EXPECT_TRUE(contains(*routes, Cidr{addr(7).addr, 32}));
    auto proxy_arp = read_sysctl("net/ipv4/conf/" + veth + "/proxy_arp");
    ASSERT_OK(proxy_arp);
    EXPECT_EQ(*proxy_arp, "1");
    ASSERT_OK(delete_link(host(), veth));
    routes = list_ipv4_route_destinations(host());
    ASSERT_OK(routes);
    EXPECT_FALSE(contains(*routes, Cidr{addr(7).addr, 32})) << "the route outlived its link";
}

TEST_F(KernelTest, DeleteLinkIsIdempotent) {
    std::string br = new_link('b');
    ASSERT_OK(create_bridge(host(), br, 1500, ""));
    ASSERT_OK(delete_link(host(), br));
    auto found = find_link(host(), br);
    ASSERT_OK(found);
    EXPECT_FALSE(found->has_value());
    EXPECT_OK(delete_link(host(), br));
}

// An endpoint's permanent neighbour entry on its bridge goes with one request naming the bridge;
// the other entries stay, and deleting what is not there is success.
TEST_F(KernelTest, NeighbourOnABridgeIsDeletedByDeviceAndAddress) {
    std::string br = new_link('b');
    ASSERT_OK(create_bridge(host(), br, 1500, ""));
    auto bridge = find_link(host(), br);
    ASSERT_OK(bridge);
    ASSERT_TRUE(bridge->has_value());
    const int ifindex = (*bridge)->ifindex;
    const MacAddr mac_a = MacAddr::from_ipv4(addr(2).addr);
    const MacAddr mac_b = MacAddr::from_ipv4(addr(3).addr);
    ASSERT_OK(replace_permanent_neighbour(host(), ifindex, addr(2).addr, mac_a));
    ASSERT_OK(replace_permanent_neighbour(host(), ifindex, addr(3).addr, mac_b));
    auto listing = [&] {
        std::string out;
        FILE* pipe = popen(("ip -4 neigh show dev " + br).c_str(), "r");
        char buf[512];
        while (pipe && fgets(buf, sizeof buf, pipe)) out += buf;
        if (pipe) pclose(pipe);
        return out;
    };
    ASSERT_NE(listing().find(addr(2).addr.str() + " "), std::string::npos) << listing();

    ASSERT_OK(delete_neighbour(host(), ifindex, addr(2).addr));
    EXPECT_EQ(listing().find(addr(2).addr.str() + " "), std::string::npos) << listing();
    EXPECT_NE(listing().find(addr(3).addr.str() + " "), std::string::npos) << listing();
    EXPECT_OK(delete_neighbour(host(), ifindex, addr(2).addr));  // already gone
    // The search over the whole table finds the other one by address and MAC.
    ASSERT_OK(delete_permanent_neighbours(host(), addr(3).addr, mac_b));
    EXPECT_EQ(listing().find(addr(3).addr.str() + " "), std::string::npos) << listing();
}

TEST_F(KernelTest, FindMissingLinkIsNullopt) {
    auto found = find_link(host(), new_link('x'));
    ASSERT_OK(found);
    EXPECT_FALSE(found->has_value());

    auto invalid = find_link(host(), "bnt-name-too-long-for-linux");
    ASSERT_FALSE(invalid.ok());
    EXPECT_EQ(invalid.error().kind, ErrorKind::InvalidArgument);
}

// -------------------------------------------------------------------------------------------------
// veth pairs into namespaces
// -------------------------------------------------------------------------------------------------

TEST_F(KernelTest, VethPeerIsCreatedInsideNetnsAndReachable) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string br = new_link('b');
    ASSERT_OK(create_bridge(host(), br, 1500, "bpfnet-test"));
    ASSERT_OK(add_address(host(), br, addr(1)));
    auto before = find_link(host(), br);
    ASSERT_OK(before);
    ASSERT_TRUE(before->has_value());
    MacAddr bridge_mac = (*before)->mac;

    std::string veth = new_link('v');
    VethSpec spec{veth, "bpfnet-test-ep", br, "eth0", *ns, MacAddr::from_ipv4(addr(2).addr), 1500};
    ASSERT_OK(create_veth(host(), spec));

    auto bridge = find_link(host(), br);
    auto host_end = find_link(host(), veth);
    ASSERT_OK(bridge);
    ASSERT_OK(host_end);
    ASSERT_TRUE(bridge->has_value() && host_end->has_value());
    EXPECT_EQ((*host_end)->kind, "veth");
    EXPECT_EQ((*host_end)->alias, "bpfnet-test-ep");
    EXPECT_EQ((*host_end)->master_ifindex, (*bridge)->ifindex);
    EXPECT_TRUE((*host_end)->up);
    EXPECT_EQ((*host_end)->mtu, 1500u);
    // The bridge keeps its own MAC when ports join (a gateway MAC that changed would leave stale
    // ARP entries in every sandbox).
    EXPECT_EQ((*bridge)->mac, bridge_mac);

    // The peer never existed on the host: no host link carries its MAC.
    auto host_links = list_links(host());
    ASSERT_OK(host_links);
    for (const auto& l : *host_links) EXPECT_NE(l.mac, spec.peer_mac) << l.name;

    auto sandbox = NlSocket::open_in_netns(*ns);
    ASSERT_OK(sandbox);
    auto peer = find_link(*sandbox, "eth0");
    ASSERT_OK(peer);
    ASSERT_TRUE(peer->has_value());
    EXPECT_EQ((*peer)->kind, "veth");
    EXPECT_EQ((*peer)->mac, spec.peer_mac);
    EXPECT_EQ((*peer)->mtu, 1500u);
    EXPECT_FALSE((*peer)->up);  // left down for the caller

    ASSERT_OK(set_link_up(*sandbox, "eth0"));
    ASSERT_OK(add_address(*sandbox, "eth0", addr(2)));
    ASSERT_OK(replace_default_route(*sandbox, "eth0", addr(1).addr));
    auto gw_if = default_route_ifname(*sandbox);
    ASSERT_OK(gw_if);
    EXPECT_EQ(*gw_if, std::optional<std::string>{"eth0"});

    EXPECT_TRUE(ping_ok("", addr(2).addr)) << "host -> sandbox " << addr(2).str();
    EXPECT_TRUE(ping_ok(*ns, addr(1).addr)) << "sandbox -> bridge " << addr(1).str();
}

TEST_F(KernelTest, VethWithMissingBridgeCreatesNothing) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string veth = new_link('v');
    std::string missing_bridge = new_link('b');
    Status st =
        create_veth(host(), VethSpec{veth, "a", missing_bridge, "eth0", *ns, MacAddr{}, 1500});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().kind, ErrorKind::NotFound);
    EXPECT_NE(st.error().message.find(missing_bridge), std::string::npos) << st.error().message;

    auto found = find_link(host(), veth);
    ASSERT_OK(found);
    EXPECT_FALSE(found->has_value());
}

TEST_F(KernelTest, VethFailingAfterCreationIsRolledBack) {
    auto ns1 = new_netns();
    auto ns2 = new_netns();
    ASSERT_OK(ns1);
    ASSERT_OK(ns2);
    std::string first = new_link('v');
    ASSERT_OK(create_veth(host(), VethSpec{first, "", "", "eth0", *ns1, MacAddr{}, 1500}));

    // A veth cannot be a master, so the pair is created and then attaching it fails.
    std::string second = new_link('v');
    Status st = create_veth(host(), VethSpec{second, "a", first, "eth0", *ns2, MacAddr{}, 1500});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().kind, ErrorKind::Internal);
    EXPECT_NE(st.error().message.find("attach veth " + second), std::string::npos)
        << st.error().message;

    auto host_end = find_link(host(), second);
    ASSERT_OK(host_end);
    EXPECT_FALSE(host_end->has_value());
    auto sandbox = NlSocket::open_in_netns(*ns2);
    ASSERT_OK(sandbox);
    auto peer = find_link(*sandbox, "eth0");
    ASSERT_OK(peer);
    EXPECT_FALSE(peer->has_value());
}

TEST_F(KernelTest, VethNameClashesAreConflicts) {
    auto ns1 = new_netns();
    auto ns2 = new_netns();
    ASSERT_OK(ns1);
    ASSERT_OK(ns2);
    std::string veth = new_link('v');
    ASSERT_OK(create_veth(host(), VethSpec{veth, "", "", "eth0", *ns1, MacAddr{}, 1500}));

    // Host name taken.
    Status host_clash = create_veth(host(), VethSpec{veth, "", "", "eth0", *ns2, MacAddr{}, 1500});
    ASSERT_FALSE(host_clash.ok());
    EXPECT_EQ(host_clash.error().kind, ErrorKind::Conflict);

    // Peer name taken inside the namespace; the new host end must not be left behind.
    std::string other = new_link('v');
    Status peer_clash = create_veth(host(), VethSpec{other, "", "", "eth0", *ns1, MacAddr{}, 1500});
    ASSERT_FALSE(peer_clash.ok());
    EXPECT_EQ(peer_clash.error().kind, ErrorKind::Conflict);
    auto found = find_link(host(), other);
    ASSERT_OK(found);
    EXPECT_FALSE(found->has_value());
}

// -------------------------------------------------------------------------------------------------
// Routes
// -------------------------------------------------------------------------------------------------

TEST_F(KernelTest, DefaultRouteLifecycleInNetns) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    auto sandbox = NlSocket::open_in_netns(*ns);
    ASSERT_OK(sandbox);

    auto none = default_route_ifname(*sandbox);
    ASSERT_OK(none);
    EXPECT_EQ(*none, std::nullopt);
    EXPECT_OK(delete_default_route(*sandbox));  // nothing to delete is fine

    // A bridge inside the sandbox is a device whose routes touch nothing on the host.
    std::string br = sandbox_link('r');
    ASSERT_OK(create_bridge(*sandbox, br, 1500, ""));
    ASSERT_OK(add_address(*sandbox, br, addr(1)));
    ASSERT_OK(replace_default_route(*sandbox, br, addr(254).addr));
    ASSERT_OK(replace_default_route(*sandbox, br, addr(253).addr));  // replaces, no EEXIST

    auto gw_if = default_route_ifname(*sandbox);
    ASSERT_OK(gw_if);
    EXPECT_EQ(*gw_if, std::optional<std::string>{br});

    auto dests = list_ipv4_route_destinations(*sandbox);
    ASSERT_OK(dests);
    EXPECT_EQ(*dests, std::vector<Cidr>{addr(0).masked()});  // default route excluded

    // A gateway outside every connected subnet is refused, with the kernel's reason.
    Status unreachable = replace_default_route(*sandbox, br, Ipv4{(10u << 24) | (211u << 16) | 1u});
    if (octet_ != 0) {
        ASSERT_FALSE(unreachable.ok());
        EXPECT_NE(unreachable.error().message.find("replace default route"), std::string::npos);
    }

    ASSERT_OK(delete_default_route(*sandbox));
    auto gone = default_route_ifname(*sandbox);
    ASSERT_OK(gone);
    EXPECT_EQ(*gone, std::nullopt);
    EXPECT_OK(delete_default_route(*sandbox));
}

TEST_F(KernelTest, RouteDestinationsContainBridgeSubnet) {
    std::string br = new_link('b');
    ASSERT_OK(create_bridge(host(), br, 1500, ""));
    ASSERT_OK(add_address(host(), br, addr(1)));
    auto dests = list_ipv4_route_destinations(host());
    ASSERT_OK(dests);
    EXPECT_TRUE(contains(*dests, addr(0).masked())) << addr(0).masked().str();
    for (const auto& d : *dests) EXPECT_NE(d.prefix_len, 0) << d.str();
}

// -------------------------------------------------------------------------------------------------
// Named namespaces and thread switching
// -------------------------------------------------------------------------------------------------

TEST_F(KernelTest, NamedNetnsLifecycle) {
    std::string name = new_netns_name();
    std::string expected = dir_ + "/" + name;
    netns_.push_back(expected);
    auto path = create_named_netns(name, dir_);
    ASSERT_OK(path);
    EXPECT_EQ(*path, expected);
    EXPECT_TRUE(netns_exists(*path));
    EXPECT_OK(NetnsFd::open(*path));

    auto again = create_named_netns(name, dir_);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind, ErrorKind::Conflict);
    EXPECT_TRUE(netns_exists(*path));  // the failed attempt left the existing one alone

    // Loopback comes up with the namespace.
    auto sandbox = NlSocket::open_in_netns(*path);
    ASSERT_OK(sandbox);
    auto lo = find_link(*sandbox, "lo");
    ASSERT_OK(lo);
    ASSERT_TRUE(lo->has_value());
    EXPECT_TRUE((*lo)->up);

    ASSERT_OK(delete_named_netns(*path));
    EXPECT_FALSE(netns_exists(*path));
    EXPECT_NE(access(path->c_str(), F_OK), 0);
    EXPECT_OK(delete_named_netns(*path));

    auto bad = create_named_netns("a/b", dir_);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind, ErrorKind::InvalidArgument);
    EXPECT_FALSE(netns_exists(dir_ + "/absent"));
    EXPECT_FALSE(netns_exists(dir_));
    auto missing = NetnsFd::open(dir_ + "/absent");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);
}

TEST_F(KernelTest, RunInNetnsSwitchesBackAndPropagatesFailure) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    const std::string self = "/proc/thread-self/ns/net";
    ino_t before = inode_of(self);
    ASSERT_NE(before, 0u);

    ino_t inside = 0;
    Status st = run_in_netns(*ns, [&]() -> Status {
        inside = inode_of(self);
        return fail(ErrorKind::Conflict, "body failed");
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(st.error().message, "body failed");
    EXPECT_EQ(inside, inode_of(*ns));
    EXPECT_EQ(inode_of(self), before);

    Status missing = run_in_netns(dir_ + "/absent", [] { return Status{}; });
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);
    EXPECT_EQ(inode_of(self), before);
}

// -------------------------------------------------------------------------------------------------
// sysctl
// -------------------------------------------------------------------------------------------------

TEST_F(KernelTest, SysctlReadsAndWritesPerNamespace) {
    auto host_value = read_sysctl("net.ipv4.ip_forward");
    ASSERT_OK(host_value);
    EXPECT_TRUE(*host_value == "0" || *host_value == "1") << *host_value;

    auto range = read_sysctl("net.ipv4.ip_local_port_range");
    ASSERT_OK(range);
    EXPECT_NE(range->find('\t'), std::string::npos);
    EXPECT_NE(range->back(), '\n');

    // /proc/sys/net follows the reading thread's namespace, so writing inside a sandbox leaves
    // the host alone.
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::string inside;
    ASSERT_OK(run_in_netns(*ns, [&]() -> Status {
        BPFNET_TRY(write_sysctl("net.ipv4.ip_forward", "1"));
        BPFNET_ASSIGN_OR_RETURN(inside, read_sysctl("net.ipv4.ip_forward"));
        return {};
    }));
    EXPECT_EQ(inside, "1");
    auto host_after = read_sysctl("net.ipv4.ip_forward");
    ASSERT_OK(host_after);
    EXPECT_EQ(*host_after, *host_value);

    auto absent = read_sysctl("net.ipv4.bpfnet_does_not_exist");
    ASSERT_FALSE(absent.ok());
    EXPECT_EQ(absent.error().kind, ErrorKind::NotFound);
    for (const char* bad : {"", "net..ipv4", "..", "net/../../etc/passwd", ".net"}) {
        auto r = read_sysctl(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error().kind, ErrorKind::InvalidArgument) << bad;
    }
    ASSERT_OK(run_in_netns(*ns, [&]() -> Status {
        Status bad_value = write_sysctl("net.ipv4.ip_forward", "not-a-number");
        EXPECT_FALSE(bad_value.ok());
        if (!bad_value.ok()) {
            EXPECT_EQ(bad_value.error().kind, ErrorKind::InvalidArgument);
        }
        return {};
    }));
}

}  // namespace
// -------------------------------------------------------------------------------------------------
// Host watch
// -------------------------------------------------------------------------------------------------

// Endpoints joining bridges (the veth's own messages and the bridge port's AF_BRIDGE ones) are
// the agent's doing and must not cost a survey of the host; an address is a change to report.
TEST_F(KernelTest, HostWatchIgnoresBridgePortsAndReportsAddresses) {
    auto ns = new_netns();
    ASSERT_OK(ns);
    std::atomic<int> changes{0};
    std::unique_ptr<HostWatch> watch;
    const auto settle = std::chrono::milliseconds(20);
    ASSERT_OK(run_in_netns(*ns, [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(watch, HostWatch::start([&] { ++changes; }, settle));
        BPFNET_ASSIGN_OR_RETURN(auto sock, NlSocket::open());
        BPFNET_TRY(create_bridge(sock, "br0", 1500, "bpfnet:test"));
        BPFNET_TRY(set_link_up(sock, "br0"));
        for (int i = 0; i < 3; ++i) {
            BPFNET_TRY(create_veth(sock, VethSpec{fmt::format("port{}", i), "", "br0",
                                                  fmt::format("peer{}", i), "", MacAddr{}, 1500}));
        }
        return {};
    }));
    // An absence: give the watch many times its settle time to (wrongly) report the ports.
    std::this_thread::sleep_for(settle * 25);
    EXPECT_EQ(changes.load(), 0);

    ASSERT_OK(run_in_netns(*ns, [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(auto sock, NlSocket::open());
        return add_address(sock, "br0",
                           Cidr{Ipv4{(10u << 24) | (211u << 16) | (250u << 8) | 1u}, 24});
    }));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (changes.load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(settle);
    }
    EXPECT_EQ(changes.load(), 1);
    watch.reset();
}

}  // namespace bpfnet::kernel

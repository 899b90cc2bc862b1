// Which of the host's interfaces are uplinks and which are other container networks' bridges.
#include <gtest/gtest.h>

#include <net/if_arp.h>

#include "kernel/host_interfaces.h"

namespace bpfnet::kernel {
namespace {

LinkInfo link(int ifindex, const char* name, const char* kind, const char* alias = "") {
    LinkInfo l;
    l.ifindex = ifindex;
    l.name = name;
    l.kind = kind;
    l.alias = alias;
    l.up = true;
    l.arptype = ARPHRD_ETHER;
    return l;
}

InterfaceAddress address(int ifindex, const char* cidr, bool global = true) {
    return InterfaceAddress{.ifindex = ifindex, .address = *Cidr::parse(cidr), .global = global};
}

// A host as Docker and libvirt leave it: eth0 with the default route, eth1 on a second LAN,
// docker0 and virbr0, a bpfnet bridge of this agent and one of another agent, a container veth,
// loopback and a WireGuard tunnel.
HostInterfaceFacts typical_host() {
    HostInterfaceFacts facts;
    facts.links = {link(1, "lo", ""),
                   link(2, "eth0", ""),
                   link(3, "eth1", ""),
                   link(4, "docker0", "bridge"),
                   link(5, "virbr0", "bridge"),
                   link(6, "bn-mine", "bridge", "bpfnet:aaaa:net:1"),
                   link(7, "bn-theirs", "bridge", "bpfnet:bbbb:net:2"),
                   link(8, "vethabc", "veth"),
                   link(9, "wg0", "wireguard")};
    facts.links[0].loopback = true;
    facts.links[0].arptype = ARPHRD_LOOPBACK;
    facts.links[8].arptype = ARPHRD_NONE;
    facts.addresses = {address(1, "127.0.0.1/8", false), address(2, "192.0.2.10/24"),
                       address(3, "198.51.100.7/24"),    address(4, "172.17.0.1/16"),
                       address(5, "192.168.122.1/24"),   address(6, "10.9.0.1/24"),
                       address(7, "10.8.0.1/24"),        address(9, "100.64.0.1/32")};
    facts.routed_ifindexes = {2, 3, 4, 5, 6, 7, 9};
    facts.default_route_ifname = "eth0";
    return facts;
}

TEST(HostInterfaces, AutoTakesEthernetDevicesWithGlobalAddressesAndRoutes) {
    auto host = classify_host_interfaces(typical_host(), {"auto"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.uplinks, (std::map<std::string, std::string>{{"eth0", "default route"},
                                                                {"eth1", "global address"}}));
    EXPECT_TRUE(host.auto_note.empty());
}

TEST(HostInterfaces, EachUplinkHasItsFirstGlobalAddressForEgress) {
    auto facts = typical_host();
    // A second address on eth0 and a link-local one before it: the first global one counts.
    facts.addresses.insert(facts.addresses.begin(), address(2, "169.254.1.1/16", false));
    facts.addresses.push_back(address(2, "192.0.2.11/24"));
    auto host = classify_host_interfaces(facts, {"auto", "wg0"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.uplink_addresses,
              (std::map<std::string, Ipv4>{{"eth0", *Ipv4::parse("192.0.2.10")},
                                           {"eth1", *Ipv4::parse("198.51.100.7")},
                                           {"wg0", *Ipv4::parse("100.64.0.1")}}));
}

TEST(HostInterfaces, OtherBridgesAreEveryBridgeButThisAgentsAndUplinks) {
    auto host = classify_host_interfaces(typical_host(), {"auto"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.foreign_subnets,
              (std::map<Cidr, std::string>{{*Cidr::parse("172.17.0.0/16"), "docker0"},
                                           {*Cidr::parse("192.168.122.0/24"), "virbr0"},
                                           {*Cidr::parse("10.8.0.0/24"), "bn-theirs"}}));
}

TEST(HostInterfaces, ABridgeWithTheDefaultRouteIsAnUplinkNotAnotherNetwork) {
    auto facts = typical_host();
    facts.links[1].master_ifindex = 10;  // eth0 enslaved to br0, which holds the address
    facts.links.push_back(link(10, "br0", "bridge"));
    facts.addresses[1].ifindex = 10;
    facts.routed_ifindexes.push_back(10);
    facts.default_route_ifname = "br0";
    auto host = classify_host_interfaces(facts, {"auto"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.uplinks.count("br0"), 1u);
    EXPECT_EQ(host.uplinks.count("eth0"), 0u);  // no address of its own any more
    for (const auto& [subnet, bridge] : host.foreign_subnets) EXPECT_NE(bridge, "br0");
}

TEST(HostInterfaces, ConfiguredNamesAreUplinksWhetherOrNotTheyExistAndAutoIsNotImplied) {
    auto host = classify_host_interfaces(typical_host(), {"virbr0", "later0"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.uplinks,
              (std::map<std::string, std::string>{{"virbr0", "--uplink"}, {"later0", "--uplink"}}));
    // Named as an uplink, virbr0 is the way out, not another network.
    for (const auto& [subnet, bridge] : host.foreign_subnets) EXPECT_NE(bridge, "virbr0");
}

TEST(HostInterfaces, DownDevicesAndDevicesWithoutRoutesAreNotUplinks) {
    auto facts = typical_host();
    facts.links[2].up = false;  // eth1
    facts.routed_ifindexes = {2};
    facts.default_route_ifname = "";
    auto host = classify_host_interfaces(facts, {"auto"}, "bpfnet:aaaa:");
    EXPECT_EQ(host.uplinks, (std::map<std::string, std::string>{{"eth0", "global address"}}));
    facts.routed_ifindexes = {};
    host = classify_host_interfaces(facts, {"auto"}, "bpfnet:aaaa:");
    EXPECT_TRUE(host.uplinks.empty());
    EXPECT_FALSE(host.auto_note.empty());
}

TEST(HostInterfaces, NoUplinksConfiguredMeansNone) {
    auto host = classify_host_interfaces(typical_host(), {}, "bpfnet:aaaa:");
    EXPECT_TRUE(host.uplinks.empty());
    EXPECT_TRUE(host.auto_note.empty());
    EXPECT_EQ(host.foreign_subnets.size(), 3u);
}

}  // namespace
}  // namespace bpfnet::kernel

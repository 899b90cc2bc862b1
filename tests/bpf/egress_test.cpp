// Egress in BPF (bpf/lib/egress.h): an endpoint's flows to the outside are routed with
// bpf_fib_lookup, source-NATed to the uplink's address (or routed untranslated) and sent out of
// the uplink; the uplink program (TC and XDP) takes the answers back into the sandbox. Each case
// checks the verdict, the exact bytes out (built independently with packet_builder.h), both
// conntrack entries and the NAT counters.
//
// bpf_fib_lookup needs real devices and routes, so the test runs happen inside a namespace this
// suite builds: an uplink veth `up0` (192.0.2.1/24, the next hop 192.0.2.254 with a permanent
// neighbour entry, the default route through it, 203.0.113.0/24 through 192.0.2.253, which has
// no neighbour entry), the endpoint's host veth `ep0`, and `other0`, a device with a route that is
// no uplink. Test runs on a named ifindex build the skb on that device.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "bpf/frame_fuzz.h"
#include "bpf/nat_fixture.h"
#include "bpf/test_netns.h"
#include "maps/uplink_maps.h"

namespace bpfnet {
namespace {

using namespace nat_testing;
using testing::InNetns;
using testing::sh;

const char* const kEgEp = "10.216.1.3";  // the endpoint that starts flows (host veth ep0)
const char* const kEgEpMac = "02:42:0a:d8:01:03";
const char* const kServer = "198.51.100.7";
const char* const kNoNeighServer = "203.0.113.9";  // routed through 192.0.2.253: no neighbour
const char* const kNoNeighHop = "192.0.2.253";
const char* const kOtherRouteDst = "198.18.5.5";  // routed out of other0, which is no uplink
const char* const kNextHopMac = "02:00:00:00:00:bb";
constexpr uint16_t kFirst = 61000, kLast = 65535;

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class EgressProg : public NatProg {
  protected:
    static void SetUpTestSuite() {
        ns_ = "bnt-eg-" + std::to_string(getpid());
        const std::string in = "ip -n " + ns_ + " ";
        ready_ = sh("ip netns add " + ns_) == 0 && sh(in + "link set lo up") == 0 &&
                 sh(in + "link add up0 address 02:00:00:00:00:aa type veth peer name up0p") == 0 &&
                 sh(in + "addr add 192.0.2.1/24 dev up0") == 0 && sh(in + "link set up0 up") == 0 &&
                 sh(in + "link set up0p up") == 0 &&
                 sh(in + "neigh replace 192.0.2.254 lladdr " + kNextHopMac +
                    " dev up0 nud permanent") == 0 &&
                 sh(in + "route add default via 192.0.2.254") == 0 &&
                 sh(in + "route add 203.0.113.0/24 via " + kNoNeighHop) == 0 &&
                 sh(in + "link add ep0 type veth peer name ep0p") == 0 &&
                 sh(in + "link set ep0 up") == 0 && sh(in + "link set ep0p up") == 0 &&
                 sh(in + "link add other0 type veth peer name other0p") == 0 &&
                 sh(in + "addr add 198.18.0.1/24 dev other0") == 0 &&
                 sh(in + "link set other0 up") == 0 && sh(in + "link set other0p up") == 0 &&
                 sh(in +
                    "neigh replace 198.18.0.2 lladdr 02:00:00:00:00:cc dev other0 nud "
                    "permanent") == 0 &&
                 sh(in + "route add 198.18.5.0/24 via 198.18.0.2") == 0 &&
                 sh("ip netns exec " + ns_ + " sysctl -qw net.ipv4.ip_forward=1") == 0;
    }
    static void TearDownTestSuite() { sh("ip netns del " + ns_); }

    void SetUp() override {
        NatProg::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        ASSERT_TRUE(ready_) << "could not build the test namespace " << ns_;
        {
            InNetns in(ns_);
            ASSERT_TRUE(in.ok());
            up0_ = if_nametoindex("up0");
            ep0_ = if_nametoindex("ep0");
        }
        ASSERT_NE(up0_, 0u);
        ASSERT_NE(ep0_, 0u);
        set_network(BPFNET_NET_ICC | BPFNET_NET_EGRESS | BPFNET_NET_MASQUERADE);
        set_egress_endpoint(false);
        set_uplink(kFirst, kLast);
    }

    void set_network(uint32_t flags) {
        const Status put = NetworkMaps(bpf_map__fd(uplink_->maps.bpfnet_net),
                                       bpf_map__fd(uplink_->maps.bpfnet_subnets))
                               .put(NetworkEntry{.id = kNet,
                                                 .subnet = *Cidr::parse("10.216.1.0/24"),
                                                 .gateway = ip("10.216.1.1"),
                                                 .flags = flags,
                                                 .gateway_mac = mac(kGwMac)});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    void set_egress_endpoint(bool xdp_target) {
        const EndpointEntry ep{.ifindex = ep0_,
                               .network = kNet,
                               .ip = ip(kEgEp),
                               .mac = mac(kEgEpMac),
                               .xdp_target = xdp_target};
        const Status src = endpoints().put_source(ep);
        ASSERT_TRUE(src.ok()) << src.error().message;
        const Status dst = endpoints().put_destination(ep);
        ASSERT_TRUE(dst.ok()) << dst.error().message;
    }
    void set_uplink(uint16_t first, uint16_t last) {
        UplinkMaps uplinks(bpf_map__fd(endpoint_->maps.bpfnet_uplinks));
        const Status put = uplinks.sync(
            {{static_cast<int>(up0_), UplinkEgress{ip(kHost), PortRange{first, last}}}});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    // A live IN entry holding (remote, host:port): another flow's answers come back under it.
    void hold_port(const char* remote, uint16_t remote_port, uint16_t port, uint64_t expires_ns) {
        const bpfnet_ct_key key = ct_key(remote, kHost, remote_port, port, kTcp, BPFNET_CT_DIR_IN);
        bpfnet_ct_entry e{};
        e.expires_ns = expires_ns;
        e.nat_addr = be(kEp);
        e.nat_port = htons(9);
        e.ifindex = kLo;
        e.network = kNet;
        ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &key, &e, BPF_ANY), 0);
    }

    // Test runs on the namespace's devices.
    RunOutput from_egress_ep(const std::vector<uint8_t>& in) const {
        InNetns ns(ns_);
        EXPECT_TRUE(ns.ok());
        return testing::run_test(ep_fd_, in, true, ep0_);
    }
    RunOutput on_uplink(const std::vector<uint8_t>& in) const {
        InNetns ns(ns_);
        EXPECT_TRUE(ns.ok());
        return testing::run_test(tc_fd_, in, true, up0_);
    }

    // The endpoint's TCP segment to the server and how it leaves the uplink (translated to
    // `port`), and the server's answer as it arrives and as the endpoint receives it.
    static std::vector<uint8_t> ep_tcp(uint16_t sport, uint8_t flags, const char* dst = kServer) {
        return tcp_frame(kEgEpMac, kGwMac, kEgEp, dst, sport, 443, flags);
    }
    static std::vector<uint8_t> wire_tcp(uint16_t port, uint8_t flags, const char* src = kHost) {
        return tcp_frame(kUplinkMac, kNextHopMac, src, kServer, port, 443, flags, 63);
    }
    static std::vector<uint8_t> answer_tcp(uint16_t port, uint8_t flags, const char* to = kHost) {
        return tcp_frame(kNextHopMac, kUplinkMac, kServer, to, 443, port, flags);
    }
    static std::vector<uint8_t> answer_at_ep(uint16_t sport, uint8_t flags) {
        return tcp_frame(kGwMac, kEgEpMac, kServer, kEgEp, 443, sport, flags, 63);
    }

    std::optional<bpfnet_ct_entry> reply_entry(uint16_t sport, uint16_t dport = 443,
                                               const char* dst = kServer,
                                               uint8_t proto = kTcp) const {
        return ct(ct_key(kEgEp, dst, sport, dport, proto, BPFNET_CT_DIR_REPLY));
    }

    static inline std::string ns_;
    static inline bool ready_ = false;
    uint32_t up0_ = 0, ep0_ = 0;
};

TEST_F(EgressProg, SynIsSourceNatedOutOfTheUplinkWithBothEntries) {
    // The endpoint's port is in the SNAT range, so it is kept.
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpSyn)), TC_ACT_REDIRECT,
                      wire_tcp(61005, kTcpSyn));

    const auto reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->nat_addr, be(kHost));
    EXPECT_EQ(reply->nat_port, htons(61005));
    EXPECT_EQ(reply->ifindex, up0_);
    EXPECT_EQ(reply->network, kNet);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_EGRESS | BPFNET_CT_F_SYN);
    EXPECT_EQ(std::memcmp(reply->smac, mac(kUplinkMac).bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(reply->dmac, mac(kNextHopMac).bytes.data(), 6), 0);
    const auto in = ct(ct_key(kServer, kHost, 443, 61005, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->nat_addr, be(kEgEp));
    EXPECT_EQ(in->nat_port, htons(61005));
    EXPECT_EQ(in->ifindex, ep0_);
    EXPECT_EQ(in->flags, BPFNET_CT_F_EGRESS | BPFNET_CT_F_SYN);
    EXPECT_EQ(std::memcmp(in->smac, mac(kGwMac).bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(in->dmac, mac(kEgEpMac).bytes.data(), 6), 0);
    // Unanswered, it lives as long as a SYN does.
    EXPECT_LE(reply->expires_ns, monotonic_ns() + BPFNET_CT_TCP_SYN_TIMEOUT * 1000000000ull);
    EXPECT_EQ(ct_size(), 2u);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT), 1u);
}

TEST_F(EgressProg, AnswersGoBackIntoTheSandboxAndTheFlowIsEstablished) {
    ASSERT_EQ(from_egress_ep(ep_tcp(61005, kTcpSyn)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    expect_translated(on_uplink(answer_tcp(61005, kTcpSyn | kTcpAck)), TC_ACT_REDIRECT,
                      answer_at_ep(61005, kTcpSyn | kTcpAck));
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpAck)), TC_ACT_REDIRECT,
                      wire_tcp(61005, kTcpAck));

    const auto reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_EGRESS | BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED);
    EXPECT_GT(reply->expires_ns, monotonic_ns() + BPFNET_CT_TCP_SYN_TIMEOUT * 1000000000ull);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT), 2u);
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_REPLY), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT), 0u);
}

TEST_F(EgressProg, APortAnotherFlowHoldsIsNotShared) {
    // A client at the server's address and port holds host:61005 (a published port's flow).
    hold_port(kServer, 443, 61005, monotonic_ns() + 60 * 1000000000ull);
    const auto out = from_egress_ep(ep_tcp(61005, kTcpSyn));
    const auto reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    const uint16_t port = ntohs(reply->nat_port);
    EXPECT_NE(port, 61005);
    EXPECT_GE(port, kFirst);
    EXPECT_LE(port, kLast);
    expect_translated(out, TC_ACT_REDIRECT, wire_tcp(port, kTcpSyn));
    // The other flow keeps its entry; the new one has its own.
    const auto held = ct(ct_key(kServer, kHost, 443, 61005, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(held);
    EXPECT_EQ(held->nat_addr, be(kEp));
    const auto in = ct(ct_key(kServer, kHost, 443, port, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->nat_addr, be(kEgEp));
    // Its answers come back under the new port.
    expect_translated(on_uplink(answer_tcp(port, kTcpSyn | kTcpAck)), TC_ACT_REDIRECT,
                      answer_at_ep(61005, kTcpSyn | kTcpAck));
}

TEST_F(EgressProg, NoFreePortLeavesTheFlowToTheStackUntilOneDies) {
    set_uplink(61000, 61001);
    const uint64_t alive = monotonic_ns() + 60 * 1000000000ull;
    hold_port(kServer, 443, 61000, alive);
    hold_port(kServer, 443, 61001, alive);
    // A privileged source port is never kept: the range it is.
    const auto syn = ep_tcp(999, kTcpSyn);
    expect_passed(from_egress_ep(syn), syn);
    EXPECT_FALSE(reply_entry(999));
    EXPECT_EQ(counter(BPFNET_NAT_SNAT_EXHAUSTED), 1u);

    // A dead entry's port is free again.
    hold_port(kServer, 443, 61001, 1);
    expect_translated(from_egress_ep(syn), TC_ACT_REDIRECT, wire_tcp(61001, kTcpSyn));
    const auto in = ct(ct_key(kServer, kHost, 443, 61001, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->nat_addr, be(kEgEp));
    EXPECT_EQ(in->nat_port, htons(999));
}

TEST_F(EgressProg, TheEndpointKeepsItsPortUnlessAHostSocketHasTheTuple) {
    // As the kernel's masquerade does: an ephemeral port outside the range is kept.
    expect_translated(from_egress_ep(ep_tcp(40000, kTcpSyn)), TC_ACT_REDIRECT,
                      wire_tcp(40000, kTcpSyn));

    // A host socket listening on the uplink's address and port 40001 would take the answers'
    // tuple: that flow gets a port of the range.
    int listener = -1;
    {
        InNetns ns(ns_);
        ASSERT_TRUE(ns.ok());
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(listener, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(40001);
        addr.sin_addr.s_addr = be(kHost);
        ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        ASSERT_EQ(listen(listener, 1), 0);
    }
    const auto out = from_egress_ep(ep_tcp(40001, kTcpSyn));
    close(listener);
    const auto reply = reply_entry(40001);
    ASSERT_TRUE(reply);
    const uint16_t port = ntohs(reply->nat_port);
    EXPECT_GE(port, kFirst);
    EXPECT_LE(port, kLast);
    expect_translated(out, TC_ACT_REDIRECT, wire_tcp(port, kTcpSyn));
}

TEST_F(EgressProg, UdpFlowAndAnIcmpErrorAboutIt) {
    const auto query = udp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 61010, 53);
    expect_translated(from_egress_ep(query), TC_ACT_REDIRECT,
                      udp_frame(kUplinkMac, kNextHopMac, kHost, kServer, 61010, 53, 63));
    expect_translated(on_uplink(udp_frame(kNextHopMac, kUplinkMac, kServer, kHost, 53, 61010)),
                      TC_ACT_REDIRECT, udp_frame(kGwMac, kEgEpMac, kServer, kEgEp, 53, 61010, 63));

    // A router on the way says the query was too big: about the packet as it left the host.
    const auto sent = udp_frame(kUplinkMac, kNextHopMac, kHost, kServer, 61010, 53, 63);
    const auto as_sent_by_ep = udp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 61010, 53, 63);
    expect_translated(on_uplink(icmp_error(kNextHopMac, kUplinkMac, kRouter, kHost, 3, 4, sent)),
                      TC_ACT_REDIRECT,
                      icmp_error(kGwMac, kEgEpMac, kRouter, kEgEp, 3, 4, as_sent_by_ep, 63));
    EXPECT_EQ(counter(BPFNET_NAT_ICMP_IN), 1u);
}

TEST_F(EgressProg, IcmpEchoGetsAnIdentifierOfTheRange) {
    auto ping = [](const char* smac, const char* dmac, const char* src, const char* dst,
                   uint16_t id, bool reply, uint8_t ttl) {
        return PacketBuilder()
            .eth(mac(smac), mac(dmac))
            .ipv4(ip(src), ip(dst), ttl)
            .icmp_echo(id, 7, reply)
            .payload("ping")
            .build();
    };
    const auto out = from_egress_ep(ping(kEgEpMac, kGwMac, kEgEp, kServer, 0x1234, false, 64));
    const auto reply = reply_entry(0x1234, 0, kServer, 1);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_EGRESS);
    const uint16_t id = ntohs(reply->nat_port);
    EXPECT_GE(id, kFirst);
    expect_translated(out, TC_ACT_REDIRECT,
                      ping(kUplinkMac, kNextHopMac, kHost, kServer, id, false, 63));
    EXPECT_LE(reply->expires_ns, monotonic_ns() + BPFNET_CT_ICMP_TIMEOUT * 1000000000ull);

    expect_translated(on_uplink(ping(kNextHopMac, kUplinkMac, kServer, kHost, id, true, 64)),
                      TC_ACT_REDIRECT, ping(kGwMac, kEgEpMac, kServer, kEgEp, 0x1234, true, 63));
    // A reply nobody asked for is the host's.
    const auto stray = ping(kNextHopMac, kUplinkMac, kServer, kHost, id + 1, true, 64);
    expect_passed(on_uplink(stray), stray);
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_REPLY), 1u);
}

TEST_F(EgressProg, ResetAgesTheFlowAndANewSynStartsAnother) {
    ASSERT_EQ(from_egress_ep(ep_tcp(61005, kTcpSyn)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    ASSERT_EQ(on_uplink(answer_tcp(61005, kTcpSyn | kTcpAck)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpRst | kTcpAck)), TC_ACT_REDIRECT,
                      wire_tcp(61005, kTcpRst | kTcpAck));
    auto reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    EXPECT_TRUE(reply->flags & BPFNET_CT_F_RST);
    EXPECT_LE(reply->expires_ns, monotonic_ns() + BPFNET_CT_TCP_CLOSE_TIMEOUT * 1000000000ull);
    const auto in = ct(ct_key(kServer, kHost, 443, 61005, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(in);
    EXPECT_TRUE(in->flags & BPFNET_CT_F_RST);

    // The same 4-tuple again: a new flow (the closed one's port is taken over).
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpSyn)), TC_ACT_REDIRECT,
                      wire_tcp(61005, kTcpSyn));
    reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_EGRESS | BPFNET_CT_F_SYN);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT_NEW), 2u);
}

TEST_F(EgressProg, NetworkThatDoesNotMasqueradeIsRoutedUntranslated) {
    set_network(BPFNET_NET_ICC | BPFNET_NET_EGRESS);
    expect_translated(from_egress_ep(ep_tcp(40000, kTcpSyn)), TC_ACT_REDIRECT,
                      wire_tcp(40000, kTcpSyn, kEgEp));
    const auto reply = reply_entry(40000);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->nat_addr, be(kEgEp));
    EXPECT_EQ(reply->nat_port, htons(40000));
    // The answer to the container's own address passes the direct-routing block: it is the
    // flow's; a connection the container did not start does not.
    expect_translated(on_uplink(answer_tcp(40000, kTcpSyn | kTcpAck, kEgEp)), TC_ACT_REDIRECT,
                      answer_at_ep(40000, kTcpSyn | kTcpAck));
    EXPECT_EQ(on_uplink(answer_tcp(40001, kTcpSyn, kEgEp)).retval,
              static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_ROUTED), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_SNAT), 0u);
}

TEST_F(EgressProg, NextHopWithoutNeighbourGoesThroughTheKernelsResolution) {
    // bpf_redirect_neigh fills in the MACs when the packet leaves: the program leaves them.
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpSyn, kNoNeighServer)), TC_ACT_REDIRECT,
                      tcp_frame(kEgEpMac, kGwMac, kHost, kNoNeighServer, 61005, 443, kTcpSyn, 63));
    const auto reply = reply_entry(61005, 443, kNoNeighServer);
    ASSERT_TRUE(reply);
    EXPECT_TRUE(reply->flags & BPFNET_CT_F_NEIGH);
    EXPECT_EQ(reply->nexthop, be(kNoNeighHop));
    EXPECT_EQ(reply->ifindex, up0_);
    // Later packets of the flow go the same way.
    expect_translated(from_egress_ep(ep_tcp(61005, kTcpAck, kNoNeighServer)), TC_ACT_REDIRECT,
                      tcp_frame(kEgEpMac, kGwMac, kHost, kNoNeighServer, 61005, 443, kTcpAck, 63));
}

TEST_F(EgressProg, WhatBpfDoesNotRouteGoesToTheStack) {
    const std::vector<std::vector<uint8_t>> to_stack = {
        ep_tcp(40000, kTcpSyn, kOtherRouteDst),  // route out of no uplink
        ep_tcp(40000, kTcpSyn, kHost),           // the host itself
        ep_tcp(40000, kTcpAck),                  // a flow the kernel has
        tcp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 40000, 443, kTcpSyn, 1),  // TTL 1
    };
    for (const auto& frame : to_stack) expect_passed(from_egress_ep(frame), frame);
    auto fragment = udp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 40000, 53);
    set_frag(fragment, 0x2000);  // more fragments
    expect_passed(from_egress_ep(fragment), fragment);
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_STACK), 5u);
    EXPECT_EQ(ct_size(), 0u);

    // A network without a way out (an overlay, an internal one) never routes egress here.
    set_network(BPFNET_NET_ICC | BPFNET_NET_MASQUERADE);
    const auto syn = ep_tcp(40000, kTcpSyn);
    expect_passed(from_egress_ep(syn), syn);
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_STACK), 5u);
    EXPECT_EQ(ct_size(), 0u);
}

TEST_F(EgressProg, XdpTakesTheAnswersOfAnEndpointItCanReach) {
    set_egress_endpoint(true);
    ASSERT_EQ(from_egress_ep(ep_tcp(61005, kTcpSyn)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto reply = reply_entry(61005);
    ASSERT_TRUE(reply);
    EXPECT_TRUE(reply->flags & BPFNET_CT_F_XDP);
    expect_translated(uplink_xdp(answer_tcp(61005, kTcpSyn | kTcpAck)), XDP_REDIRECT,
                      answer_at_ep(61005, kTcpSyn | kTcpAck));
    EXPECT_EQ(counter(BPFNET_NAT_EGRESS_REPLY), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_XDP), 1u);
    EXPECT_TRUE(reply_entry(61005)->flags & BPFNET_CT_F_REPLIED);
}

// Hostile frames from the endpoint (new flows of every kind, mutated) and on the uplink (answers to
// the flows they created, mutated): only the verdicts the programs may give, and the maps only the
// agent writes stay as they were.
TEST_F(EgressProg, FuzzedFramesGetOnlyAllowedVerdictsAndLeaveTheConfigAlone) {
    auto ping = PacketBuilder()
                    .eth(mac(kEgEpMac), mac(kGwMac))
                    .ipv4(ip(kEgEp), ip(kServer))
                    .icmp_echo(0x1234, 1)
                    .build();
    auto fragment = udp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 40000, 53);
    set_frag(fragment, 0x2000);
    const std::vector<std::vector<uint8_t>> from_ep = {
        ep_tcp(61005, kTcpSyn),
        ep_tcp(40000, kTcpSyn),
        ep_tcp(40000, kTcpAck),
        udp_frame(kEgEpMac, kGwMac, kEgEp, kServer, 61010, 53),
        ping,
        fragment,
        ep_tcp(61005, kTcpSyn, kNoNeighServer),
        ep_tcp(40000, kTcpSyn, kOtherRouteDst)};
    const std::vector<std::vector<uint8_t>> on_up = {
        answer_tcp(61005, kTcpSyn | kTcpAck),
        udp_frame(kNextHopMac, kUplinkMac, kServer, kHost, 53, 61010),
        icmp_error(kNextHopMac, kUplinkMac, kRouter, kHost, 3, 4,
                   udp_frame(kUplinkMac, kNextHopMac, kHost, kServer, 61010, 53, 63))};
    auto config = [&] {
        return std::tuple{testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_net), 4,
                                                sizeof(bpfnet_net_info)),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_ep_by_if), 4,
                                                sizeof(bpfnet_endpoint)),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_ep_by_ip),
                                                sizeof(bpfnet_ep_key), sizeof(bpfnet_ep_dest)),
                          testing::map_contents(bpf_map__fd(endpoint_->maps.bpfnet_uplinks), 4,
                                                sizeof(bpfnet_uplink))};
    };
    const auto before = config();
    InNetns in(ns_);
    ASSERT_TRUE(in.ok());
    size_t redirected = 0;
    for (const auto& [seeds, prog, ifindex] :
         {std::tuple{&from_ep, ep_fd_, ep0_}, std::tuple{&on_up, tc_fd_, up0_}}) {
        for (const auto& frame : testing::mutated_frames(*seeds, 5000, 0xe9e55)) {
            const RunOutput out = testing::run_test(prog, frame, true, ifindex);
            if (testing::test_run_refuses(frame)) {
                EXPECT_TRUE(out.err == 0 || out.err == -EINVAL) << out.err;
                continue;
            }
            ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err) << " for a frame of "
                                  << frame.size() << " bytes";
            ASSERT_TRUE(out.retval == TC_ACT_OK || out.retval == TC_ACT_SHOT ||
                        out.retval == TC_ACT_REDIRECT)
                << "verdict " << out.retval;
            redirected += out.retval == TC_ACT_REDIRECT;
        }
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    EXPECT_GT(redirected, 0u);  // the corpus got past the parsers into the NAT paths
    EXPECT_GT(counter(BPFNET_NAT_SNAT_NEW), 0u);
}

}  // namespace
}  // namespace bpfnet

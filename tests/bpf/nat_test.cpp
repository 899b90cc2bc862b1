// Published ports from outside in BPF: the uplink program (bpf/uplink.bpf.c, TC and XDP) and the
// endpoint program's reverse NAT, through BPF_PROG_TEST_RUN with crafted frames. Each case checks
// the verdict, the exact output bytes (built independently with packet_builder.h, so every
// incrementally updated checksum must equal a full recomputation), the conntrack entries and the
// NAT counters.
//
// Both skeletons are loaded without pinning; the endpoint program is given the uplink object's
// maps (bpf_map__reuse_fd by name), as pinning by name gives them in production, so a flow the
// uplink program creates is found by the endpoint program. Test runs put the skb on loopback
// (ifindex 1): that is the uplink for the uplink program and the endpoint's host veth for the
// endpoint program.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "bpf/nat_fixture.h"
#include "bpf/test_netns.h"
#include "core/fd.h"

namespace bpfnet {
namespace {

using namespace nat_testing;

TEST_F(NatProg, NewConnectionIsDnatedIntoTheSandboxWithBothEntries) {
    expect_translated(uplink_tc(client_syn()), TC_ACT_REDIRECT, syn_at_endpoint());

    const auto in = ct(ct_key(kClient, kHost, 40000, 8080, kTcp, BPFNET_CT_DIR_IN));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->nat_addr, be(kEp));
    EXPECT_EQ(in->nat_port, htons(80));
    EXPECT_EQ(in->ifindex, kLo);
    EXPECT_EQ(in->network, kNet);
    EXPECT_EQ(in->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(in->packets, 1u);
    EXPECT_EQ(std::memcmp(in->smac, mac(kGwMac).bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(in->dmac, mac(kEpMac).bytes.data(), 6), 0);
    const auto reply = ct(ct_key(kEp, kClient, 80, 40000, kTcp, BPFNET_CT_DIR_REPLY));
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->nat_addr, be(kHost));
    EXPECT_EQ(reply->nat_port, htons(8080));
    EXPECT_EQ(reply->ifindex, kLo);  // the uplink the request came in on
    EXPECT_EQ(std::memcmp(reply->smac, mac(kUplinkMac).bytes.data(), 6), 0);
    EXPECT_EQ(std::memcmp(reply->dmac, mac(kClientMac).bytes.data(), 6), 0);
    // The entry lives for the SYN timeout.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const uint64_t now_ns = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + now.tv_nsec;
    EXPECT_GT(in->expires_ns, now_ns + (BPFNET_CT_TCP_SYN_TIMEOUT - 2) * 1000000000ull);
    EXPECT_LE(in->expires_ns, now_ns + BPFNET_CT_TCP_SYN_TIMEOUT * 1000000000ull);
    EXPECT_EQ(ct_size(), 2u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT), 1u);
}

TEST_F(NatProg, LaterPacketsReuseTheFlow) {
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto ack = tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080, kTcpAck);
    expect_translated(uplink_tc(ack), TC_ACT_REDIRECT,
                      tcp_frame(kGwMac, kEpMac, kClient, kEp, 40000, 80, kTcpAck, 63));
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT), 2u);
    EXPECT_EQ(ct(ct_key(kClient, kHost, 40000, 8080, kTcp, BPFNET_CT_DIR_IN))->packets, 2u);
    EXPECT_EQ(ct_size(), 2u);
}

TEST_F(NatProg, EndpointRepliesAreReverseNatedOutOfTheUplink) {
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto synack = tcp_frame(kEpMac, kGwMac, kEp, kClient, 80, 40000, kTcpSyn | kTcpAck);
    expect_translated(
        from_endpoint(synack), TC_ACT_REDIRECT,
        tcp_frame(kUplinkMac, kClientMac, kHost, kClient, 8080, 40000, kTcpSyn | kTcpAck, 63));
    EXPECT_EQ(counter(BPFNET_NAT_REPLY), 1u);
    // The flow is answered now: both entries say so, and live for the established timeout.
    const auto in = ct(ct_key(kClient, kHost, 40000, 8080, kTcp, BPFNET_CT_DIR_IN));
    const auto reply = ct(ct_key(kEp, kClient, 80, 40000, kTcp, BPFNET_CT_DIR_REPLY));
    ASSERT_TRUE(in && reply);
    EXPECT_TRUE(in->flags & BPFNET_CT_F_REPLIED);
    EXPECT_TRUE(reply->flags & BPFNET_CT_F_REPLIED);
    EXPECT_EQ(in->expires_ns, reply->expires_ns);
    EXPECT_EQ(reply->packets, 1u);
}

TEST_F(NatProg, TwoPublishedPortsToOneContainerPortDoNotShareAReplyKey) {
    // Host ports 8080 and 8081 both lead to the container's port 80; one client port reaching
    // both would give the two flows one REPLY key. The second is refused (left to the kernel),
    // and the first keeps its answers.
    publish(0, 8081, kTcp, 80);
    expect_translated(uplink_tc(client_syn()), TC_ACT_REDIRECT, syn_at_endpoint());
    const auto second = tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8081, kTcpSyn);
    expect_passed(uplink_tc(second), second);
    EXPECT_EQ(counter(BPFNET_NAT_CT_FAILED), 1u);
    EXPECT_FALSE(ct(ct_key(kClient, kHost, 40000, 8081, kTcp, BPFNET_CT_DIR_IN)));
    const auto reply = ct(ct_key(kEp, kClient, 80, 40000, kTcp, BPFNET_CT_DIR_REPLY));
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->nat_port, htons(8080));
    expect_translated(
        from_endpoint(tcp_frame(kEpMac, kGwMac, kEp, kClient, 80, 40000, kTcpSyn | kTcpAck)),
        TC_ACT_REDIRECT,
        tcp_frame(kUplinkMac, kClientMac, kHost, kClient, 8080, 40000, kTcpSyn | kTcpAck, 63));
}

TEST_F(NatProg, TcpWithoutSynStartsNoFlow) {
    // A SYN-ACK to a published port: an answer to a connection the host masqueraded, whose
    // source port happens to be published. It is the host's, not the container's.
    const auto synack =
        tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 443, 8080, kTcpSyn | kTcpAck);
    expect_passed(uplink_tc(synack), synack);
    EXPECT_EQ(uplink_xdp(synack).retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(ct_size(), 0u);
}

// A UDP socket bound to addr:port.
Fd udp_socket_at(const char* addr, uint16_t port) {
    Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = be(addr);
    if (s.get() < 0 || bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return Fd(-1);
    return s;
}

// The host's own stack sent from the published UDP port 5353 to the client (a socket of the
// host's, or a container's connection the kernel masqueraded and gave that port): the client's
// answer belongs to that connection, not to a new flow to the container. netfilter's conntrack
// has the connection, and the uplink programs ask it (lib/host_ct.h). The connection is made for
// real in a namespace of the test's own (a rule that reads conntrack turns it on there), where the
// test runs the programs: their skb's device is that namespace's loopback.
TEST_F(NatProg, AnswerToAConnectionOfTheHostsOwnIsLeftToTheHost) {
    const std::string ns = "bnbt-hostct-" + std::to_string(getpid());
    const std::string in_ns = "ip netns exec " + ns + " ";
    struct Remove {
        std::string ns;
        ~Remove() { testing::sh("ip netns del " + ns); }
    } remove{ns};
    ASSERT_EQ(testing::sh("ip netns add " + ns), 0);
    ASSERT_EQ(testing::sh(in_ns + "ip link set lo up"), 0);
    ASSERT_EQ(testing::sh(in_ns + "ip addr add " + kHost + "/32 dev lo"), 0);
    ASSERT_EQ(testing::sh(in_ns + "ip addr add " + kClient + "/32 dev lo"), 0);
    ASSERT_EQ(testing::sh(in_ns + "nft 'add table ip bnbt; add chain ip bnbt out "
                                  "{ type filter hook output priority 0; }; "
                                  "add rule ip bnbt out ct state new counter'"),
              0);
    testing::InNetns inside(ns);
    ASSERT_TRUE(inside.ok());

    Fd client = udp_socket_at(kClient, 4000);  // listening: no port unreachable ends the flow
    Fd host = udp_socket_at(kHost, 5353);
    ASSERT_GE(client.get(), 0);
    ASSERT_GE(host.get(), 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(4000);
    to.sin_addr.s_addr = be(kClient);
    ASSERT_EQ(sendto(host.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
    char got = 0;
    ASSERT_EQ(recv(client.get(), &got, 1, 0), 1);  // the connection exists now

    const auto answer = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 4000, 5353);
    expect_passed(uplink_tc(answer), answer);
    EXPECT_EQ(counter(BPFNET_NAT_PASS_HOST_FLOW), 1u);
    const RunOutput at_xdp = uplink_xdp(answer);
    EXPECT_EQ(at_xdp.retval, static_cast<uint32_t>(XDP_PASS));  // the TC program counts it
    EXPECT_EQ(at_xdp.data, answer);
    EXPECT_EQ(ct_size(), 0u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 0u);

    // Another client port is a new flow to the published port, as before.
    expect_translated(uplink_tc(udp_frame(kClientMac, kUplinkMac, kClient, kHost, 4001, 5353)),
                      TC_ACT_REDIRECT, udp_frame(kGwMac, kEpMac, kClient, kEp, 4001, 53, 63));
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 1u);
    EXPECT_EQ(counter(BPFNET_NAT_PASS_HOST_FLOW), 1u);
}

TEST_F(NatProg, TrafficWithoutAFlowIsLeftAlone) {
    // The endpoint talking to the outside on its own: the host routes (and masquerades) it.
    const auto out = tcp_frame(kEpMac, kGwMac, kEp, kClient, 80, 40000, kTcpSyn);
    expect_passed(from_endpoint(out), out);
    // Ports nobody published, any-address bindings on foreign addresses, exact bindings elsewhere.
    for (const auto& in :
         {tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8081, kTcpSyn),
          tcp_frame(kClientMac, kUplinkMac, kClient, "203.0.113.5", 40000, 8080, kTcpSyn),
          tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 9090, kTcpSyn),
          udp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080)})
        expect_passed(uplink_tc(in), in);
    EXPECT_EQ(ct_size(), 0u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT), 0u);
}

TEST_F(NatProg, ExactHostAddressBindingNeedsNoLocalAddressEntry) {
    const auto in = tcp_frame(kClientMac, kUplinkMac, kClient, kOtherHost, 40000, 9090, kTcpSyn);
    expect_translated(uplink_tc(in), TC_ACT_REDIRECT,
                      tcp_frame(kGwMac, kEpMac, kClient, kEp, 40000, 90, kTcpSyn, 63));
    EXPECT_EQ(ct(ct_key(kEp, kClient, 90, 40000, kTcp, BPFNET_CT_DIR_REPLY))->nat_addr,
              be(kOtherHost));
}

TEST_F(NatProg, UdpWithAndWithoutChecksum) {
    expect_translated(uplink_tc(udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353)),
                      TC_ACT_REDIRECT, udp_frame(kGwMac, kEpMac, kClient, kEp, 41000, 53, 63));
    // "No checksum" (0) must stay 0 through the address and port change.
    auto in = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41001, 5353);
    auto expected = udp_frame(kGwMac, kEpMac, kClient, kEp, 41001, 53, 63);
    const size_t csum = testing::kEthHdrLen + testing::kIpv4HdrLen + 6;
    in[csum] = in[csum + 1] = 0;
    expected[csum] = expected[csum + 1] = 0;
    expect_translated(uplink_tc(in), TC_ACT_REDIRECT, expected);
    // The answer goes back translated, the UDP way.
    expect_translated(from_endpoint(udp_frame(kEpMac, kGwMac, kEp, kClient, 53, 41000)),
                      TC_ACT_REDIRECT,
                      udp_frame(kUplinkMac, kClientMac, kHost, kClient, 5353, 41000, 63));
    EXPECT_EQ(ct_size(), 4u);
}

TEST_F(NatProg, SctpIsNatedOnlyWhereThePortStaysTheSame) {
    const auto in = raw_ipv4(kClientMac, kUplinkMac, kClient, kHost, kSctp, sctp_l4(5000, 3868));
    // Addresses are not in SCTP's CRC32c: only the IP header (and MACs, TTL) change.
    expect_translated(uplink_tc(in), TC_ACT_REDIRECT,
                      raw_ipv4(kGwMac, kEpMac, kClient, kEp, kSctp, sctp_l4(5000, 3868), 63));
    const auto other = raw_ipv4(kClientMac, kUplinkMac, kClient, kHost, kSctp, sctp_l4(5000, 3869));
    expect_passed(uplink_tc(other), other);
    EXPECT_EQ(counter(BPFNET_NAT_PASS_SCTP), 1u);
    EXPECT_EQ(ct_size(), 2u);
}

TEST_F(NatProg, FragmentsAreLeftToTheKernelNat) {
    auto first = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353);
    set_frag(first, 0x2000);  // more fragments follow
    auto later = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353);
    set_frag(later, 185);  // offset 1480 bytes: no UDP header in it
    expect_passed(uplink_tc(first), first);
    expect_passed(uplink_tc(later), later);
    EXPECT_EQ(counter(BPFNET_NAT_PASS_FRAG), 2u);
    EXPECT_EQ(ct_size(), 0u);
}

// A fragmented answer from the endpoint (a DNS reply larger than the path's MTU): the kernel
// never saw the flow, so BPF translates the fragments. The first one's UDP checksum, which covers
// the whole datagram, must be the translated datagram's; the later one gets the host's address.
TEST_F(NatProg, FragmentedRepliesLeaveWithTheHostAddressAndPort) {
    ASSERT_EQ(uplink_tc(udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    const std::vector<uint8_t> payload(24, 0x7a);
    auto l4_of = [&](const char* src, uint16_t sport) {  // the whole datagram's UDP part
        const auto whole = PacketBuilder()
                               .eth(mac(kEpMac), mac(kGwMac))
                               .ipv4(ip(src), ip(kClient))
                               .udp(sport, 41000)
                               .payload(payload)
                               .build();
        return std::vector<uint8_t>(whole.begin() + testing::kEthHdrLen + testing::kIpv4HdrLen,
                                    whole.end());
    };
    const auto sent = l4_of(kEp, 53), translated = l4_of(kHost, 5353);
    const auto head = [](const std::vector<uint8_t>& l4) {  // UDP header and 16 bytes: 3 units
        return std::vector<uint8_t>(l4.begin(), l4.begin() + 24);
    };
    const auto tail = [](const std::vector<uint8_t>& l4) {
        return std::vector<uint8_t>(l4.begin() + 24, l4.end());
    };
    auto first = raw_ipv4(kEpMac, kGwMac, kEp, kClient, kUdp, head(sent));
    set_frag(first, 0x2000);  // more fragments follow
    auto first_out = raw_ipv4(kUplinkMac, kClientMac, kHost, kClient, kUdp, head(translated), 63);
    set_frag(first_out, 0x2000);
    auto later = raw_ipv4(kEpMac, kGwMac, kEp, kClient, kUdp, tail(sent));
    set_frag(later, 3);  // offset 24 bytes, the last fragment
    auto later_out = raw_ipv4(kUplinkMac, kClientMac, kHost, kClient, kUdp, tail(sent), 63);
    set_frag(later_out, 3);

    auto out = from_endpoint(first);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, first_out);
    out = from_endpoint(later);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, later_out);
    EXPECT_EQ(counter(BPFNET_NAT_FRAG_OUT), 2u);
    // A later fragment whose first one never came (another datagram ID) is the stack's.
    auto stray = later;
    stray[testing::kEthHdrLen + 5] = 0x99;
    set_frag(stray, 3);
    expect_passed(from_endpoint(stray), stray);
    EXPECT_EQ(counter(BPFNET_NAT_FRAG_OUT), 2u);
}

TEST_F(NatProg, TruncatedHeadersPassWithoutHarm) {
    const auto full = client_syn();
    // Cut inside the TCP header: ports half there, and ports there but flags and checksum not.
    // (Test runs refuse frames shorter than an IPv4 header; the parser's bounds checks for those
    // are the verifier's business.)
    for (size_t len : {testing::kEthHdrLen + testing::kIpv4HdrLen + 2,
                       testing::kEthHdrLen + testing::kIpv4HdrLen + 10}) {
        const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(len));
        expect_passed(uplink_tc(cut), cut);
        const auto x = uplink_xdp(cut);
        ASSERT_EQ(x.err, 0) << libbpf_error_text(x.err);
        EXPECT_EQ(x.retval, static_cast<uint32_t>(XDP_PASS));
    }
    // A header length below 20 bytes.
    auto bad_ihl = full;
    bad_ihl[testing::kEthHdrLen] = 0x44;
    expect_passed(uplink_tc(bad_ihl), bad_ihl);
    EXPECT_EQ(ct_size(), 0u);
}

TEST_F(NatProg, ExpiringTtlAndOtherProtocolsPass) {
    const auto ttl1 = tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080, kTcpSyn, 1);
    expect_passed(uplink_tc(ttl1), ttl1);
    EXPECT_EQ(counter(BPFNET_NAT_TTL_EXPIRED), 1u);
    const auto arp = testing::arp_request(mac(kClientMac), ip(kClient), ip(kHost));
    expect_passed(uplink_tc(arp), arp);
    const auto v6 = PacketBuilder()
                        .eth(mac(kClientMac), mac(kUplinkMac))
                        .ipv6(testing::ip6("2001:db8::7"), testing::ip6("2001:db8::1"))
                        .udp(1, 8080)
                        .build();
    expect_passed(uplink_tc(v6), v6);
    const auto ping = PacketBuilder()
                          .eth(mac(kClientMac), mac(kUplinkMac))
                          .ipv4(ip(kClient), ip(kHost))
                          .icmp_echo(1, 1)
                          .build();
    expect_passed(uplink_tc(ping), ping);
    EXPECT_EQ(ct_size(), 0u);
}

TEST_F(NatProg, IcmpErrorFromTheEndpointIsTranslatedBack) {
    ASSERT_EQ(uplink_tc(udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353)).retval,
              static_cast<uint32_t>(TC_ACT_REDIRECT));
    // Nothing listens in the sandbox: port unreachable about the DNATed datagram.
    const auto received = udp_frame(kGwMac, kEpMac, kClient, kEp, 41000, 53, 63);
    const auto unreachable = icmp_error(kEpMac, kGwMac, kEp, kClient, 3, 3, received);
    // The client must see it about the datagram it sent (to host:5353), from the host; the quoted
    // UDP checksum follows the quoted addresses and port, as the kernel's NAT does it.
    const auto sent = udp_frame(kGwMac, kEpMac, kClient, kHost, 41000, 5353, 63);
    expect_translated(from_endpoint(unreachable), TC_ACT_REDIRECT,
                      icmp_error(kUplinkMac, kClientMac, kHost, kClient, 3, 3, sent, 63));
    EXPECT_EQ(counter(BPFNET_NAT_ICMP_OUT), 1u);
}

TEST_F(NatProg, IcmpErrorAboutAReplyIsTranslatedToTheEndpoint) {
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    // A router on the way back to the client says "time exceeded" about the host's reply.
    const auto reply =
        tcp_frame(kUplinkMac, kClientMac, kHost, kClient, 8080, 40000, kTcpSyn | kTcpAck, 63);
    const auto exceeded = icmp_error(kClientMac, kUplinkMac, kRouter, kHost, 11, 0, reply);
    // The endpoint must see it about its own reply (from ep:80).
    const auto own =
        tcp_frame(kUplinkMac, kClientMac, kEp, kClient, 80, 40000, kTcpSyn | kTcpAck, 63);
    expect_translated(uplink_tc(exceeded), TC_ACT_REDIRECT,
                      icmp_error(kGwMac, kEpMac, kRouter, kEp, 11, 0, own, 63));
    EXPECT_EQ(counter(BPFNET_NAT_ICMP_IN), 1u);
    // An error about a flow nobody tracks is the host's.
    const auto stranger =
        icmp_error(kClientMac, kUplinkMac, kRouter, kHost, 11, 0,
                   tcp_frame(kUplinkMac, kClientMac, kHost, kClient, 8080, 40001, kTcpAck, 63));
    expect_passed(uplink_tc(stranger), stranger);
}

TEST_F(NatProg, ClosedAndExpiredFlowsStartOver) {
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto key = ct_key(kClient, kHost, 40000, 8080, kTcp, BPFNET_CT_DIR_IN);
    const auto rst = tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080, kTcpRst);
    ASSERT_EQ(uplink_tc(rst).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto closed = ct(key);
    ASSERT_TRUE(closed);
    EXPECT_TRUE(closed->flags & BPFNET_CT_F_RST);
    EXPECT_TRUE(ct(ct_key(kEp, kClient, 80, 40000, kTcp, BPFNET_CT_DIR_REPLY))->flags &
                BPFNET_CT_F_RST);
    // A new SYN on the closed tuple is a new connection.
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 2u);
    EXPECT_EQ(ct(key)->flags, BPFNET_CT_F_SYN);
    // An entry past its lifetime is dead: a segment of it is the stack's (a TCP flow starts
    // with a SYN, so an answer to a masqueraded connection is never taken for one), and the next
    // SYN makes a new flow.
    auto expired = *ct(key);
    expired.expires_ns = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &key, &expired, BPF_EXIST),
              0);
    const auto ack = tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080, kTcpAck);
    expect_passed(uplink_tc(ack), ack);
    const auto x = uplink_xdp(ack);
    EXPECT_EQ(x.retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 2u);
    ASSERT_EQ(uplink_tc(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_NEW), 3u);
    EXPECT_GT(ct(key)->expires_ns, 1u);
    // A dead REPLY entry is not used either.
    const auto reply_key = ct_key(kEp, kClient, 80, 40000, kTcp, BPFNET_CT_DIR_REPLY);
    auto dead = *ct(reply_key);
    dead.expires_ns = 1;
    ASSERT_EQ(
        bpf_map_update_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &reply_key, &dead, BPF_EXIST), 0);
    const auto late = tcp_frame(kEpMac, kGwMac, kEp, kClient, 80, 40000, kTcpAck);
    expect_passed(from_endpoint(late), late);
}

TEST_F(NatProg, XdpTranslatesFlowsToEndpointsThatTakeXdpFrames) {
    set_endpoint(true);
    const auto out = uplink_xdp(client_syn());
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_REDIRECT));
    EXPECT_EQ(out.data, syn_at_endpoint());
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_XDP), 1u);
    EXPECT_TRUE(ct(ct_key(kClient, kHost, 40000, 8080, kTcp, BPFNET_CT_DIR_IN))->flags &
                BPFNET_CT_F_XDP);
    // UDP too, "no checksum" included.
    auto udp = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353);
    auto expected = udp_frame(kGwMac, kEpMac, kClient, kEp, 41000, 53, 63);
    const size_t csum = testing::kEthHdrLen + testing::kIpv4HdrLen + 6;
    udp[csum] = udp[csum + 1] = expected[csum] = expected[csum + 1] = 0;
    const auto u = uplink_xdp(udp);
    EXPECT_EQ(u.retval, static_cast<uint32_t>(XDP_REDIRECT));
    EXPECT_EQ(u.data, expected);
}

TEST_F(NatProg, XdpPassesWhatItDoesNotHandle) {
    // An endpoint without NAPI: the flow is made, but TC forwards it.
    const auto out = uplink_xdp(client_syn());
    EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(out.data, client_syn());
    EXPECT_EQ(ct_size(), 2u);
    EXPECT_EQ(counter(BPFNET_NAT_DNAT_XDP), 0u);
    // SCTP, fragments, unpublished ports: the TC program's (or the host's) business.
    set_endpoint(true);
    auto frag = udp_frame(kClientMac, kUplinkMac, kClient, kHost, 41000, 5353);
    set_frag(frag, 0x2000);
    for (const auto& in :
         {raw_ipv4(kClientMac, kUplinkMac, kClient, kHost, kSctp, sctp_l4(5000, 3868)), frag,
          tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8081, kTcpSyn)}) {
        const auto x = uplink_xdp(in);
        EXPECT_EQ(x.retval, static_cast<uint32_t>(XDP_PASS));
        EXPECT_EQ(x.data, in);
    }
}

}  // namespace
}  // namespace bpfnet

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
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "bpf/ct_key.h"
#include "bpf/endpoint.skel.h"
#include "bpf/packet_builder.h"
#include "bpf/test_run.h"
#include "bpf/uplink.skel.h"
#include "bpfnet/abi.h"
#include "common/privileged.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"
#include "maps/published_port_maps.h"

namespace bpfnet {
namespace {

using testing::checksum_errors;
using testing::ct_key;
using testing::inet_checksum;
using testing::ip;
using testing::kTcpAck;
using testing::kTcpRst;
using testing::kTcpSyn;
using testing::mac;
using testing::PacketBuilder;
using testing::RunOutput;

constexpr uint32_t kLo = 1;
constexpr uint32_t kNet = 1201;  // the endpoint's network (datapath ID)
constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132;

const char* const kHost = "192.0.2.1";        // the host's address on the uplink
const char* const kOtherHost = "192.0.2.10";  // an address with an exact binding only
const char* const kClient = "198.51.100.7";
const char* const kRouter = "203.0.113.1";
const char* const kEp = "10.216.1.2";
const char* const kGwMac = "02:42:0a:d8:01:01";
const char* const kEpMac = "02:42:0a:d8:01:02";
const char* const kUplinkMac = "02:00:00:00:00:aa";
const char* const kClientMac = "02:00:00:00:00:bb";

uint32_t be(const char* addr) {
    return ip(addr).network_order();
}

// Frames the way they look on the wire at each point.
std::vector<uint8_t> tcp_frame(const char* smac, const char* dmac, const char* src, const char* dst,
                               uint16_t sport, uint16_t dport, uint8_t flags, uint8_t ttl = 64) {
    return PacketBuilder()
        .eth(mac(smac), mac(dmac))
        .ipv4(ip(src), ip(dst), ttl)
        .tcp(sport, dport, flags, 1000, flags & kTcpAck ? 2000 : 0)
        .payload("nat")
        .build();
}
std::vector<uint8_t> udp_frame(const char* smac, const char* dmac, const char* src, const char* dst,
                               uint16_t sport, uint16_t dport, uint8_t ttl = 64) {
    return PacketBuilder()
        .eth(mac(smac), mac(dmac))
        .ipv4(ip(src), ip(dst), ttl)
        .udp(sport, dport)
        .payload("query")
        .build();
}

// Sets the IPv4 fragment field and fixes the header checksum.
void set_frag(std::vector<uint8_t>& f, uint16_t frag_off) {
    f[testing::kEthHdrLen + 6] = static_cast<uint8_t>(frag_off >> 8);
    f[testing::kEthHdrLen + 7] = static_cast<uint8_t>(frag_off);
    f[testing::kEthHdrLen + 10] = 0;
    f[testing::kEthHdrLen + 11] = 0;
    const uint16_t sum = inet_checksum(f.data() + testing::kEthHdrLen, testing::kIpv4HdrLen);
    f[testing::kEthHdrLen + 10] = static_cast<uint8_t>(sum >> 8);
    f[testing::kEthHdrLen + 11] = static_cast<uint8_t>(sum);
}

// Ethernet + IPv4 (protocol `proto`) + `l4` bytes, with the IP header checksum filled in.
std::vector<uint8_t> raw_ipv4(const char* smac, const char* dmac, const char* src, const char* dst,
                              uint8_t proto, const std::vector<uint8_t>& l4, uint8_t ttl = 64) {
    std::vector<uint8_t> f;
    const auto s = mac(smac), d = mac(dmac);
    f.insert(f.end(), d.bytes.begin(), d.bytes.end());
    f.insert(f.end(), s.bytes.begin(), s.bytes.end());
    f.push_back(0x08);
    f.push_back(0x00);
    const size_t tot = testing::kIpv4HdrLen + l4.size();
    const uint32_t sa = ip(src).value, da = ip(dst).value;
    const uint8_t hdr[20] = {0x45,
                             0,
                             static_cast<uint8_t>(tot >> 8),
                             static_cast<uint8_t>(tot),
                             0,
                             0,
                             0x40,
                             0,
                             ttl,
                             proto,
                             0,
                             0,
                             static_cast<uint8_t>(sa >> 24),
                             static_cast<uint8_t>(sa >> 16),
                             static_cast<uint8_t>(sa >> 8),
                             static_cast<uint8_t>(sa),
                             static_cast<uint8_t>(da >> 24),
                             static_cast<uint8_t>(da >> 16),
                             static_cast<uint8_t>(da >> 8),
                             static_cast<uint8_t>(da)};
    f.insert(f.end(), hdr, hdr + 20);
    const uint16_t sum = inet_checksum(f.data() + 14, 20);
    f[24] = static_cast<uint8_t>(sum >> 8);
    f[25] = static_cast<uint8_t>(sum);
    f.insert(f.end(), l4.begin(), l4.end());
    return f;
}

// An SCTP common header (ports, verification tag, CRC32c as given) and a 4-byte chunk: the program
// never recomputes the CRC, so its value only has to come through unchanged.
std::vector<uint8_t> sctp_l4(uint16_t sport, uint16_t dport) {
    return {static_cast<uint8_t>(sport >> 8),
            static_cast<uint8_t>(sport),
            static_cast<uint8_t>(dport >> 8),
            static_cast<uint8_t>(dport),
            0xde,
            0xad,
            0xbe,
            0xef,
            0x12,
            0x34,
            0x56,
            0x78,
            0x0a,
            0x00,
            0x00,
            0x04};
}

// An ICMP error (type/code) quoting the first 28 bytes of `about`'s IP packet (header + 8).
std::vector<uint8_t> icmp_error(const char* smac, const char* dmac, const char* src,
                                const char* dst, uint8_t type, uint8_t code,
                                const std::vector<uint8_t>& about, uint8_t ttl = 64) {
    std::vector<uint8_t> l4 = {type, code, 0, 0, 0, 0, 0, 0};
    l4.insert(l4.end(), about.begin() + testing::kEthHdrLen,
              about.begin() + testing::kEthHdrLen + 28);
    const uint16_t sum = inet_checksum(l4.data(), l4.size());
    l4[2] = static_cast<uint8_t>(sum >> 8);
    l4[3] = static_cast<uint8_t>(sum);
    return raw_ipv4(smac, dmac, src, dst, 1, l4, ttl);
}

class NatProg : public ::testing::Test {
  protected:
    void SetUp() override {
        BPFNET_REQUIRE_PRIVILEGED();
        ASSERT_TRUE(uplink_.open().ok());
        bpf_map* map = nullptr;
        bpf_object__for_each_map(map, uplink_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
        }
        const Status loaded = uplink_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;

        ASSERT_TRUE(endpoint_.open().ok());
        bpf_object__for_each_map(map, endpoint_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
            // Share every map the uplink object has too (conntrack, counters, endpoints).
            if (bpf_map* same = bpf_object__find_map_by_name(uplink_->obj, bpf_map__name(map))) {
                ASSERT_EQ(bpf_map__reuse_fd(map, bpf_map__fd(same)), 0) << bpf_map__name(map);
            }
        }
        const Status ep_loaded = endpoint_.load();
        ASSERT_TRUE(ep_loaded.ok()) << ep_loaded.error().message;
        tc_fd_ = bpf_program__fd(uplink_->progs.bpfnet_from_uplink);
        xdp_fd_ = bpf_program__fd(uplink_->progs.bpfnet_up_xdp);
        ep_fd_ = bpf_program__fd(endpoint_->progs.bpfnet_from_ep);

        // The endpoint's network and the endpoint (whose host veth is lo in test runs).
        // Filled through the agent's own typed maps (userspace/maps/).
        const Status net = NetworkMaps(bpf_map__fd(uplink_->maps.bpfnet_net),
                                       bpf_map__fd(uplink_->maps.bpfnet_subnets))
                               .put(NetworkEntry{.id = kNet,
                                                 .subnet = *Cidr::parse("10.216.1.0/24"),
                                                 .gateway = ip("10.216.1.1"),
                                                 .flags = BPFNET_NET_ICC,
                                                 .gateway_mac = mac(kGwMac)});
        ASSERT_TRUE(net.ok()) << net.error().message;
        set_endpoint(false);
        const Status src = endpoints().put_source(the_endpoint(false));
        ASSERT_TRUE(src.ok()) << src.error().message;

        const Status local = published().sync_local_ips({be(kHost)});
        ASSERT_TRUE(local.ok()) << local.error().message;
        publish(0, 8080, kTcp, 80);
        publish(0, 5353, kUdp, 53);
        publish(0, 3868, kSctp, 3868);
        publish(0, 3869, kSctp, 3870);
        publish(be(kOtherHost), 9090, kTcp, 90);
    }

    EndpointMaps endpoints() const {
        return EndpointMaps(bpf_map__fd(uplink_->maps.bpfnet_ep_by_if),
                            bpf_map__fd(uplink_->maps.bpfnet_ep_by_ip),
                            bpf_map__fd(uplink_->maps.bpfnet_ep_stats));
    }
    PublishedPortMaps published() const {
        return PublishedPortMaps(bpf_map__fd(uplink_->maps.bpfnet_pub_port),
                                 bpf_map__fd(uplink_->maps.bpfnet_local_ip));
    }
    // The endpoint, whose host veth is lo in test runs.
    static EndpointEntry the_endpoint(bool xdp_target) {
        return EndpointEntry{.ifindex = kLo,
                             .network = kNet,
                             .ip = ip(kEp),
                             .mac = mac(kEpMac),
                             .xdp_target = xdp_target};
    }
    void set_endpoint(bool xdp_target) {
        const Status put = endpoints().put_destination(the_endpoint(xdp_target));
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    void publish(uint32_t host_ip, uint16_t port, uint8_t proto, uint16_t target_port) {
        PublishedPort p;
        p.binding = PortBinding{.proto = static_cast<IpProto>(proto),
                                .host_ip = Ipv4::from_network_order(host_ip),
                                .host_port = port,
                                .container_port = target_port};
        p.endpoint_ip = ip(kEp);
        p.network = kNet;
        const Status put = published().put({p});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }

    std::optional<bpfnet_ct_entry> ct(const bpfnet_ct_key& key) const {
        bpfnet_ct_entry e{};
        if (bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &key, &e) != 0)
            return std::nullopt;
        return e;
    }
    size_t ct_size() const {
        size_t n = 0;
        bpfnet_ct_key key{}, next{};
        const void* prev = nullptr;
        while (bpf_map_get_next_key(bpf_map__fd(uplink_->maps.bpfnet_ct), prev, &next) == 0) {
            ++n;
            key = next;
            prev = &key;
        }
        return n;
    }
    uint64_t counter(uint32_t which) const {
        std::vector<bpfnet_nat_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        EXPECT_EQ(
            bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_nat_cnt), &which, per_cpu.data()),
            0);
        uint64_t n = 0;
        for (const auto& s : per_cpu) n += s.packets;
        return n;
    }

    RunOutput uplink_tc(const std::vector<uint8_t>& in) const {
        return testing::run_test(tc_fd_, in);
    }
    RunOutput uplink_xdp(const std::vector<uint8_t>& in) const {
        return testing::run_test(xdp_fd_, in, false);
    }
    RunOutput from_endpoint(const std::vector<uint8_t>& in) const {
        return testing::run_test(ep_fd_, in);
    }

    void expect_translated(const RunOutput& out, uint32_t verdict,
                           const std::vector<uint8_t>& expected) const {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, verdict);
        EXPECT_EQ(checksum_errors(expected), "");
        EXPECT_EQ(out.data, expected);
    }
    void expect_passed(const RunOutput& out, const std::vector<uint8_t>& in) const {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
        EXPECT_EQ(out.data, in);
    }

    // The client's SYN to host:8080 and what the endpoint must receive.
    static std::vector<uint8_t> client_syn() {
        return tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 40000, 8080, kTcpSyn);
    }
    static std::vector<uint8_t> syn_at_endpoint() {
        return tcp_frame(kGwMac, kEpMac, kClient, kEp, 40000, 80, kTcpSyn, 63);
    }

    BpfSkeleton<uplink> uplink_;
    BpfSkeleton<endpoint> endpoint_;
    int tc_fd_ = -1, xdp_fd_ = -1, ep_fd_ = -1;
};

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

TEST_F(NatProg, TcpWithoutSynStartsNoFlow) {
    // A SYN-ACK to a published port: an answer to a connection the host masqueraded, whose
    // source port happens to be published. It is the host's, not the container's.
    const auto synack =
        tcp_frame(kClientMac, kUplinkMac, kClient, kHost, 443, 8080, kTcpSyn | kTcpAck);
    expect_passed(uplink_tc(synack), synack);
    EXPECT_EQ(uplink_xdp(synack).retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(ct_size(), 0u);
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

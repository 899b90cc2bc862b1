// The published-port NAT of the uplink's TC program (bpf/uplink.bpf.c, bpfnet_from_uplink) and the
// reverse NAT of the endpoint program (bpf/endpoint.bpf.c, bpfnet_from_ep), through their
// skeletons and BPF_PROG_TEST_RUN. Each case gives the maps' contents and an input frame, and
// checks the verdict, the exact output bytes (the expected frame is built from scratch, so every
// incrementally updated checksum must equal a full recomputation), the conntrack entries and the
// NAT counters read back from the maps.
//
// Both skeletons are loaded with every pin path cleared, so the tests never touch the host's bpffs
// and each starts from empty maps. The endpoint program is given the uplink object's conntrack and
// NAT counters (bpf_map__reuse_fd), as pinning by name gives them in production: a flow the uplink
// program creates is what the endpoint program's reverse NAT finds. Every other map is per object.
//
// Test runs build the skb on loopback (ifindex 1), so lo is "the uplink" for the uplink program
// and "the endpoint's host veth" for the endpoint program. Redirects are never performed: the
// verdict and the per-endpoint counters say where the packet would have gone. Nothing leaves the
// kernel; the addresses (10.216.7.0/24 for the endpoint network, documentation ranges outside)
// are used by no other test file.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/ct_key.h"
#include "bpf/endpoint.skel.h"
#include "bpf/frame_fuzz.h"
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
using testing::kEthHdrLen;
using testing::kIpv4HdrLen;
using testing::kTcpAck;
using testing::kTcpFin;
using testing::kTcpPsh;
using testing::kTcpRst;
using testing::kTcpSyn;
using testing::mac;
using testing::PacketBuilder;
using testing::RunOutput;

constexpr uint64_t kNsPerSec = 1000000000ull;

constexpr uint32_t kLo = 1;        // the skb's device in test runs (see the top)
constexpr uint32_t kNet = 1216;    // the endpoint network's datapath ID
constexpr uint32_t kNoNet = 1299;  // a network bpfnet_net does not know
// The endpoints' host veths, as redirect targets only: test runs report a redirect, never make it,
// so no such devices exist.
constexpr uint32_t kEpVeth = 7216;
constexpr uint32_t kEp2Veth = 7217;
constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132, kIcmp = 1;

constexpr const char* kSubnet = "10.216.7.0";
constexpr const char* kGw = "10.216.7.1";
constexpr const char* kGwMac = "02:42:0a:d8:07:01";
constexpr const char* kEp = "10.216.7.2";
constexpr const char* kEpMac = "02:42:0a:d8:07:02";
constexpr const char* kEp2 = "10.216.7.3";
constexpr const char* kEp2Mac = "02:42:0a:d8:07:03";
constexpr const char* kNobody = "10.216.7.9";  // published to, but no endpoint holds it

constexpr const char* kHost = "192.0.2.50";     // the host's address (in bpfnet_local_ip)
constexpr const char* kHost2 = "192.0.2.60";    // has exact bindings, not in bpfnet_local_ip
constexpr const char* kForeign = "192.0.2.99";  // not the host's
constexpr const char* kClient = "198.51.100.70";
constexpr const char* kRouter = "203.0.113.70";
constexpr const char* kUplinkMac = "02:00:00:00:07:aa";
constexpr const char* kPeerMac = "02:00:00:00:07:bb";  // the client's, or the last router's

// The Ethernet addresses of a frame at each point of its way.
struct Macs {
    const char* src;
    const char* dst;
};
constexpr Macs kFromPeer{kPeerMac, kUplinkMac};  // arriving on the uplink
constexpr Macs kToEp{kGwMac, kEpMac};            // delivered into the endpoint's sandbox
constexpr Macs kToEp2{kGwMac, kEp2Mac};
constexpr Macs kFromEp{kEpMac, kGwMac};        // sent by the endpoint
constexpr Macs kToPeer{kUplinkMac, kPeerMac};  // leaving through the uplink

uint32_t be(const char* addr) {
    return ip(addr).network_order();
}

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

bool mac_is(const uint8_t (&field)[6], const char* text) {
    return std::memcmp(field, mac(text).bytes.data(), 6) == 0;
}

// ---- frames ----

std::vector<uint8_t> tcp_frame(Macs macs, const char* src, const char* dst, uint16_t sport,
                               uint16_t dport, uint8_t flags, uint8_t ttl = 64,
                               std::string_view payload = "") {
    return PacketBuilder()
        .eth(mac(macs.src), mac(macs.dst))
        .ipv4(ip(src), ip(dst), ttl)
        .ip_id(0x0716)
        .tcp(sport, dport, flags, 0x10000, (flags & kTcpAck) ? 0x20000 : 0)
        .payload(payload)
        .build();
}

std::vector<uint8_t> udp_frame(Macs macs, const char* src, const char* dst, uint16_t sport,
                               uint16_t dport, uint8_t ttl = 64,
                               std::string_view payload = "uplink query") {
    return PacketBuilder()
        .eth(mac(macs.src), mac(macs.dst))
        .ipv4(ip(src), ip(dst), ttl)
        .ip_id(0x0716)
        .udp(sport, dport)
        .payload(payload)
        .build();
}

// Recomputes the IPv4 header checksum after a test edited the header.
void fix_ip_checksum(std::vector<uint8_t>& f) {
    const size_t ihl = static_cast<size_t>(f[kEthHdrLen] & 0x0f) * 4;
    testing::detail::store16(f, kEthHdrLen + 10, 0);
    testing::detail::store16(f, kEthHdrLen + 10, inet_checksum(f.data() + kEthHdrLen, ihl));
}

// Sets flags + fragment offset (the 16-bit field: 0x2000 is MF, the low 13 bits the offset).
std::vector<uint8_t> with_frag(std::vector<uint8_t> f, uint16_t frag_field) {
    testing::detail::store16(f, kEthHdrLen + 6, frag_field);
    fix_ip_checksum(f);
    return f;
}

// Keeps `l4_len` bytes after a 20-byte IPv4 header, with the total length saying so.
std::vector<uint8_t> cut_l4(std::vector<uint8_t> f, size_t l4_len) {
    f.resize(kEthHdrLen + kIpv4HdrLen + l4_len);
    testing::detail::store16(f, kEthHdrLen + 2, static_cast<uint16_t>(kIpv4HdrLen + l4_len));
    fix_ip_checksum(f);
    return f;
}

// Ethernet + a 20-byte IPv4 header (protocol `proto`, checksum filled in) + `l4` as given.
std::vector<uint8_t> ipv4_frame(Macs macs, const char* src, const char* dst, uint8_t proto,
                                const std::vector<uint8_t>& l4, uint8_t ttl = 64) {
    using namespace testing::detail;
    std::vector<uint8_t> f;
    put_mac(f, mac(macs.dst));
    put_mac(f, mac(macs.src));
    put16(f, testing::kEthPIpv4);
    put8(f, 0x45);
    put8(f, 0);
    put16(f, static_cast<uint16_t>(kIpv4HdrLen + l4.size()));
    put16(f, 0x0716);  // id
    put16(f, 0);       // no DF: ICMP errors and SCTP alike
    put8(f, ttl);
    put8(f, proto);
    put16(f, 0);
    put32(f, ip(src).value);
    put32(f, ip(dst).value);
    store16(f, kEthHdrLen + 10, inet_checksum(f.data() + kEthHdrLen, kIpv4HdrLen));
    f.insert(f.end(), l4.begin(), l4.end());
    return f;
}

// An SCTP common header (ports, verification tag, CRC32c) and one 4-byte chunk. The programs never
// recompute the CRC (addresses are not in it), so any value must only come through unchanged.
std::vector<uint8_t> sctp_l4(uint16_t sport, uint16_t dport) {
    using namespace testing::detail;
    std::vector<uint8_t> l4;
    put16(l4, sport);
    put16(l4, dport);
    put32(l4, 0x0a0b0c0d);  // verification tag
    put32(l4, 0x5ca1ab1e);  // CRC32c, not checked by anyone here
    put32(l4, 0x0a000004);  // a HEARTBEAT-like chunk header, 4 bytes
    return l4;
}

// An ICMP error (type, code; `mtu` for "fragmentation needed") quoting the IPv4 header and the
// first 8 bytes of the packet in `about` (an Ethernet frame with a 20-byte IPv4 header).
std::vector<uint8_t> icmp_error(Macs macs, const char* src, const char* dst, uint8_t type,
                                uint8_t code, const std::vector<uint8_t>& about, uint8_t ttl = 64,
                                uint16_t mtu = 0) {
    using namespace testing::detail;
    std::vector<uint8_t> l4;
    put8(l4, type);
    put8(l4, code);
    put16(l4, 0);  // checksum, below
    put16(l4, 0);  // unused
    put16(l4, mtu);
    l4.insert(l4.end(), about.begin() + kEthHdrLen,
              about.begin() + static_cast<long>(kEthHdrLen + kIpv4HdrLen + 8));
    store16(l4, 2, inet_checksum(l4.data(), l4.size()));
    return ipv4_frame(macs, src, dst, kIcmp, l4, ttl);
}
constexpr uint8_t kIcmpUnreachable = 3, kIcmpPortUnreachable = 3, kIcmpFragNeeded = 4;
constexpr uint8_t kIcmpTimeExceeded = 11;

// Whether the IPv4 header an ICMP error quotes (in an Ethernet + 20-byte IPv4 frame) sums right.
bool quoted_ip_checksum_ok(const std::vector<uint8_t>& f) {
    const size_t quoted = kEthHdrLen + kIpv4HdrLen + 8;
    return f.size() >= quoted + kIpv4HdrLen && inet_checksum(f.data() + quoted, kIpv4HdrLen) == 0;
}

// ---- the fixture ----

class UplinkProg : public ::testing::Test {
  protected:
    // The maps only the agent writes, as bytes: no packet may change them.
    auto agent_config() const {
        return std::tuple{testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_pub_port),
                                                sizeof(bpfnet_svc_key), sizeof(bpfnet_svc_target)),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_ep_by_ip),
                                                sizeof(bpfnet_ep_key), sizeof(bpfnet_ep_dest)),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_net), 4,
                                                sizeof(bpfnet_net_info)),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_local_ip), 4, 1),
                          testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_subnets),
                                                sizeof(bpfnet_lpm_v4), 4)};
    }

    void SetUp() override {
        BPFNET_REQUIRE_PRIVILEGED();
        ASSERT_NO_FATAL_FAILURE(open_unpinned(uplink_));
        // As the agent does with --ct-max; the endpoint object takes the same map below.
        if (ct_max_entries_ != 0) {
            ASSERT_EQ(bpf_map__set_max_entries(uplink_->maps.bpfnet_ct, ct_max_entries_), 0);
        }
        const Status up_loaded = uplink_.load();
        ASSERT_TRUE(up_loaded.ok()) << up_loaded.error().message;

        ASSERT_NO_FATAL_FAILURE(open_unpinned(endpoint_));
        ASSERT_EQ(
            bpf_map__reuse_fd(endpoint_->maps.bpfnet_ct, bpf_map__fd(uplink_->maps.bpfnet_ct)), 0);
        ASSERT_EQ(bpf_map__reuse_fd(endpoint_->maps.bpfnet_nat_cnt,
                                    bpf_map__fd(uplink_->maps.bpfnet_nat_cnt)),
                  0);
        const Status ep_loaded = endpoint_.load();
        ASSERT_TRUE(ep_loaded.ok()) << ep_loaded.error().message;
        uplink_fd_ = bpf_program__fd(uplink_->progs.bpfnet_from_uplink);
        endpoint_fd_ = bpf_program__fd(endpoint_->progs.bpfnet_from_ep);
        ASSERT_GE(uplink_fd_, 0);
        ASSERT_GE(endpoint_fd_, 0);

        // The network, in both objects' maps; the endpoint program also needs the subnets and the
        // sending endpoint (on lo).
        // Everything is filled through the agent's own typed maps (userspace/maps/).
        const NetworkEntry network{.id = kNet,
                                   .subnet = Cidr{ip(kSubnet), 24},
                                   .gateway = ip(kGw),
                                   .flags = BPFNET_NET_ICC,
                                   .gateway_mac = mac(kGwMac)};
        const Status up_net = NetworkMaps(bpf_map__fd(uplink_->maps.bpfnet_net),
                                          bpf_map__fd(uplink_->maps.bpfnet_subnets))
                                  .put(network);
        ASSERT_TRUE(up_net.ok()) << up_net.error().message;
        const Status ep_net = NetworkMaps(bpf_map__fd(endpoint_->maps.bpfnet_net),
                                          bpf_map__fd(endpoint_->maps.bpfnet_subnets))
                                  .put(network);
        ASSERT_TRUE(ep_net.ok()) << ep_net.error().message;
        const Status sender =
            EndpointMaps(bpf_map__fd(endpoint_->maps.bpfnet_ep_by_if),
                         bpf_map__fd(endpoint_->maps.bpfnet_ep_by_ip),
                         bpf_map__fd(endpoint_->maps.bpfnet_ep_stats))
                .put_source(EndpointEntry{
                    .ifindex = kLo, .network = kNet, .ip = ip(kEp), .mac = mac(kEpMac)});
        ASSERT_TRUE(sender.ok()) << sender.error().message;

        // Where the uplink program delivers.
        ASSERT_NO_FATAL_FAILURE(add_destination(kNet, kEp, kEpVeth, kEpMac));
        ASSERT_NO_FATAL_FAILURE(add_destination(kNet, kEp2, kEp2Veth, kEp2Mac));
        ASSERT_NO_FATAL_FAILURE(add_destination(kNoNet, kEp, kEpVeth, kEpMac));

        const Status local = published().sync_local_ips({be(kHost)});
        ASSERT_TRUE(local.ok()) << local.error().message;
        // host_ip 0: any of the host's addresses.
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 8443, kTcp, kEp, 443));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 5300, kUdp, kEp, 53));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 2905, kSctp, kEp, 2905));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 2906, kSctp, kEp, 2907));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 8080, kTcp, kEp, 80));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 8444, kTcp, kNobody, 444));
        ASSERT_NO_FATAL_FAILURE(publish(nullptr, 8445, kTcp, kEp, 445, kNoNet));
        // Exact addresses: one the any-address binding above loses to, one on a second address.
        ASSERT_NO_FATAL_FAILURE(publish(kHost, 8080, kTcp, kEp2, 81));
        ASSERT_NO_FATAL_FAILURE(publish(kHost2, 7000, kTcp, kEp, 70));
    }

    template <typename T>
    static void open_unpinned(BpfSkeleton<T>& skel) {
        const Status opened = skel.open();
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        bpf_map* map = nullptr;
        bpf_object__for_each_map(map, skel->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0) << bpf_map__name(map);
        }
    }

    void add_destination(uint32_t network, const char* addr, uint32_t ifindex, const char* mac_text,
                         bool xdp_target = false) {
        const Status put = EndpointMaps(bpf_map__fd(uplink_->maps.bpfnet_ep_by_if),
                                        bpf_map__fd(uplink_->maps.bpfnet_ep_by_ip),
                                        bpf_map__fd(uplink_->maps.bpfnet_ep_stats))
                               .put_destination(EndpointEntry{.ifindex = ifindex,
                                                              .network = network,
                                                              .ip = ip(addr),
                                                              .mac = mac(mac_text),
                                                              .xdp_target = xdp_target});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    PublishedPortMaps published() const {
        return PublishedPortMaps(bpf_map__fd(uplink_->maps.bpfnet_pub_port),
                                 bpf_map__fd(uplink_->maps.bpfnet_local_ip));
    }

    // host nullptr: any of the host's addresses (host_ip 0).
    void publish(const char* host, uint16_t port, uint8_t proto, const char* target,
                 uint16_t target_port, uint32_t network = kNet) {
        PublishedPort p;
        p.binding = PortBinding{.proto = static_cast<IpProto>(proto),
                                .host_ip = host ? ip(host) : Ipv4{},
                                .host_port = port,
                                .container_port = target_port};
        p.endpoint_ip = ip(target);
        p.network = network;
        const Status put = published().put({p});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }

    // ---- conntrack ----

    // As the client's packets arrive: client:cport -> host:hport.
    static bpfnet_ct_key in_key(const char* host, uint16_t cport, uint16_t hport, uint8_t proto) {
        return ct_key(kClient, host, cport, hport, proto, BPFNET_CT_DIR_IN);
    }
    // As the endpoint answers: ep:eport -> client:cport.
    static bpfnet_ct_key reply_key(const char* ep, uint16_t eport, uint16_t cport, uint8_t proto) {
        return ct_key(ep, kClient, eport, cport, proto, BPFNET_CT_DIR_REPLY);
    }

    std::optional<bpfnet_ct_entry> ct(const bpfnet_ct_key& key) const {
        bpfnet_ct_entry e{};
        if (bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &key, &e) != 0)
            return std::nullopt;
        return e;
    }
    void ct_write(const bpfnet_ct_key& key, const bpfnet_ct_entry& e) const {
        ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(uplink_->maps.bpfnet_ct), &key, &e, BPF_ANY), 0);
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

    // ---- counters (per CPU: summed over all possible CPUs) ----

    bpfnet_nat_stats nat(uint32_t counter) const {
        std::vector<bpfnet_nat_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        bpfnet_nat_stats sum{};
        EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_nat_cnt), &counter,
                                      per_cpu.data()),
                  0);
        for (const auto& s : per_cpu) {
            sum.packets += s.packets;
            sum.bytes += s.bytes;
        }
        return sum;
    }
    // Every NAT counter but the ones named is still 0.
    void expect_only_counters(std::initializer_list<uint32_t> nonzero) const {
        for (uint32_t c = 0; c < BPFNET_NAT_COUNTER_MAX; ++c) {
            if (std::find(nonzero.begin(), nonzero.end(), c) != nonzero.end()) continue;
            EXPECT_EQ(nat(c).packets, 0u) << "NAT counter " << c;
        }
    }

    // Frames the uplink program counted as delivered to the endpoint behind `veth`.
    uint64_t delivered_to(uint32_t veth) const {
        std::vector<bpfnet_ep_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        if (bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_ep_stats), &veth,
                                per_cpu.data()) != 0)
            return 0;
        uint64_t n = 0;
        for (const auto& s : per_cpu) n += s.to_packets;
        return n;
    }

    // Drops by either program, all reasons.
    uint64_t drops() const {
        uint64_t n = 0;
        std::vector<bpfnet_drop_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        for (bpf_map* map : {uplink_->maps.bpfnet_drops, endpoint_->maps.bpfnet_drops}) {
            for (uint32_t reason = 0; reason < BPFNET_DROP_REASON_MAX; ++reason) {
                EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(map), &reason, per_cpu.data()), 0);
                for (const auto& s : per_cpu) n += s.packets;
            }
        }
        return n;
    }

    // ---- runs ----

    RunOutput from_uplink(const std::vector<uint8_t>& in) const {
        return testing::run_test(uplink_fd_, in);
    }
    RunOutput from_endpoint(const std::vector<uint8_t>& in) const {
        return testing::run_test(endpoint_fd_, in);
    }
    RunOutput from_uplink_xdp(const std::vector<uint8_t>& in) const {
        return testing::run_test(bpf_program__fd(uplink_->progs.bpfnet_up_xdp), in, false);
    }

    // Translated and redirected: exactly `expected`, whose checksums are all right.
    void expect_redirected(const RunOutput& out, const std::vector<uint8_t>& expected) const {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
        EXPECT_EQ(checksum_errors(expected), "");
        EXPECT_EQ(checksum_errors(out.data), "");
        EXPECT_EQ(out.data, expected);
        EXPECT_EQ(drops(), 0u);
    }
    // Handed to the stack untouched.
    void expect_unchanged(const RunOutput& out, const std::vector<uint8_t>& in) const {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
        EXPECT_EQ(out.data, in);
        EXPECT_EQ(drops(), 0u);
    }

    // The client's SYN to host:8443 (published to ep:443) and what the endpoint receives.
    static std::vector<uint8_t> client_syn() {
        return tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpSyn);
    }
    static std::vector<uint8_t> syn_at_ep() {
        return tcp_frame(kToEp, kClient, kEp, 40000, 443, kTcpSyn, 63);
    }

    uint32_t ct_max_entries_ = 0;  // bpfnet_ct's size; 0: the object's default
    BpfSkeleton<uplink> uplink_;
    BpfSkeleton<endpoint> endpoint_;
    int uplink_fd_ = -1;
    int endpoint_fd_ = -1;
};

// ---- new flows ----

TEST_F(UplinkProg, TcpSynToPublishedPortIsDnatedWithBothEntries) {
    const auto syn = client_syn();
    const uint64_t before = now_ns();
    expect_redirected(from_uplink(syn), syn_at_ep());
    const uint64_t after = now_ns();

    const auto in = ct(in_key(kHost, 40000, 8443, kTcp));
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->nat_addr, be(kEp));
    EXPECT_EQ(in->nat_port, htons(443));
    EXPECT_EQ(in->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(in->ifindex, kEpVeth);
    EXPECT_EQ(in->network, kNet);
    EXPECT_EQ(in->packets, 1u);
    EXPECT_EQ(in->bytes, syn.size());
    EXPECT_TRUE(mac_is(in->smac, kGwMac));
    EXPECT_TRUE(mac_is(in->dmac, kEpMac));
    // Unanswered: the SYN timeout, from the moment of the run.
    EXPECT_GE(in->expires_ns, before + BPFNET_CT_TCP_SYN_TIMEOUT * kNsPerSec);
    EXPECT_LE(in->expires_ns, after + BPFNET_CT_TCP_SYN_TIMEOUT * kNsPerSec);

    const auto reply = ct(reply_key(kEp, 443, 40000, kTcp));
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->nat_addr, be(kHost));
    EXPECT_EQ(reply->nat_port, htons(8443));
    EXPECT_EQ(reply->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(reply->ifindex, kLo);  // the uplink the SYN came in on
    EXPECT_EQ(reply->network, kNet);
    EXPECT_EQ(reply->packets, 0u);
    EXPECT_EQ(reply->bytes, 0u);
    EXPECT_TRUE(mac_is(reply->smac, kUplinkMac));  // the SYN's destination MAC
    EXPECT_TRUE(mac_is(reply->dmac, kPeerMac));    // the SYN's source MAC
    EXPECT_EQ(reply->expires_ns, in->expires_ns);
    EXPECT_EQ(ct_size(), 2u);

    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).bytes, syn.size());
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).bytes, syn.size());
    expect_only_counters({BPFNET_NAT_DNAT_NEW, BPFNET_NAT_DNAT});
    EXPECT_EQ(delivered_to(kEpVeth), 1u);
    EXPECT_EQ(delivered_to(kEp2Veth), 0u);
}

TEST_F(UplinkProg, LaterPacketsReuseTheInEntryAndAccumulate) {
    const auto syn = client_syn();
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(syn), syn_at_ep()));
    const auto data =
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck | kTcpPsh, 64, "GET / HTTP/1.1");
    expect_redirected(from_uplink(data), tcp_frame(kToEp, kClient, kEp, 40000, 443,
                                                   kTcpAck | kTcpPsh, 63, "GET / HTTP/1.1"));
    // A retransmitted SYN of a flow that is neither closed nor expired is the same flow.
    expect_redirected(from_uplink(syn), syn_at_ep());

    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).packets, 3u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).bytes, 2 * syn.size() + data.size());
    const auto in = ct(in_key(kHost, 40000, 8443, kTcp));
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->packets, 3u);
    EXPECT_EQ(in->bytes, 2 * syn.size() + data.size());
    EXPECT_EQ(in->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->packets, 0u);  // nothing answered yet
    EXPECT_EQ(ct_size(), 2u);
    EXPECT_EQ(delivered_to(kEpVeth), 3u);
}

TEST_F(UplinkProg, UnpublishedTrafficIsLeftToTheHost) {
    const std::vector<uint8_t> frames[] = {
        // A port nobody published.
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8081, kTcpSyn),
        // Any-address bindings apply to the host's addresses only.
        tcp_frame(kFromPeer, kClient, kForeign, 40000, 8443, kTcpSyn),
        tcp_frame(kFromPeer, kClient, kHost2, 40000, 8443, kTcpSyn),
        // Published on another exact host address only.
        tcp_frame(kFromPeer, kClient, kHost, 40000, 7000, kTcpSyn),
        // Published for TCP only.
        udp_frame(kFromPeer, kClient, kHost, 40000, 8443),
        // Published, but no endpoint holds the target address / its network is unknown.
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8444, kTcpSyn),
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8445, kTcpSyn),
        // A group destination MAC.
        tcp_frame({kPeerMac, "01:00:5e:00:00:01"}, kClient, kHost, 40000, 8443, kTcpSyn),
        // TCP without a flow starts one only with a SYN.
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck),
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpSyn | kTcpAck),
    };
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_uplink(frames[i]), frames[i]);
    }
    EXPECT_EQ(ct_size(), 0u);
    expect_only_counters({});
    EXPECT_EQ(delivered_to(kEpVeth), 0u);
}

// Outside reaches containers through published ports only: whatever is routed to a container's
// own address (TCP to its real port, UDP, a ping, another protocol) is dropped and counted as
// unpublished, never translated or delivered.
TEST_F(UplinkProg, TrafficRoutedStraightToAContainerIsDropped) {
    const auto ping = PacketBuilder()
                          .eth(mac(kPeerMac), mac(kUplinkMac))
                          .ipv4(ip(kClient), ip(kEp))
                          .icmp_echo(7, 1)
                          .build();
    const std::vector<uint8_t> frames[] = {
        tcp_frame(kFromPeer, kClient, kEp, 40000, 443, kTcpSyn),  // the port 8443 leads to
        tcp_frame(kFromPeer, kClient, kEp2, 40000, 8080, kTcpSyn),
        udp_frame(kFromPeer, kClient, kEp, 40000, 53),
        ping,
        ipv4_frame(kFromPeer, kClient, kEp, 47, {0, 0, 0x08, 0x00}),
    };
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        const RunOutput out = from_uplink(frames[i]);
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        EXPECT_EQ(out.data, frames[i]);
    }
    std::vector<bpfnet_drop_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    uint32_t reason = BPFNET_DROP_UNPUBLISHED;
    ASSERT_EQ(bpf_map_lookup_elem(bpf_map__fd(uplink_->maps.bpfnet_drops), &reason, per_cpu.data()),
              0);
    uint64_t unpublished = 0;
    for (const auto& c : per_cpu) unpublished += c.packets;
    EXPECT_EQ(unpublished, std::size(frames));
    EXPECT_EQ(drops(), std::size(frames));  // nothing under any other reason
    EXPECT_EQ(ct_size(), 0u);
    EXPECT_EQ(delivered_to(kEpVeth), 0u);
    // The published way in still works.
    EXPECT_EQ(from_uplink(client_syn()).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
}

// Hostile input from outside: mutated and random frames at the uplink program. Verdicts stay
// within to-the-stack, dropped and redirected; the agent's maps are untouched; whatever conntrack
// entries the frames created are well-formed (a known protocol and direction, a NAT target that
// is an endpoint).
TEST_F(UplinkProg, FuzzedFramesGetOnlyAllowedVerdictsAndWellFormedConntrack) {
    const std::vector<std::vector<uint8_t>> seeds = {
        client_syn(),
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck),
        udp_frame(kFromPeer, kClient, kHost, 40000, 5300),
        tcp_frame(kFromPeer, kClient, kEp, 40000, 443, kTcpSyn),
        ipv4_frame(kFromPeer, kClient, kHost, 132, {0x0b, 0x59, 0x0b, 0x59, 0, 0, 0, 0}),
        icmp_error(kToPeer, kHost, kClient, kIcmpUnreachable, kIcmpPortUnreachable, client_syn()),
    };
    auto config = [&] { return agent_config(); };
    const auto before = config();
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x5e1)) {
        const RunOutput out = from_uplink(frame);
        if (testing::test_run_refuses(frame)) {
            EXPECT_TRUE(out.err == 0 || out.err == -EINVAL) << out.err;
            continue;
        }
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        ASSERT_TRUE(out.retval == TC_ACT_OK || out.retval == TC_ACT_SHOT ||
                    out.retval == TC_ACT_REDIRECT)
            << "verdict " << out.retval << " for a frame of " << frame.size() << " bytes";
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    const auto ct = testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_ct),
                                          sizeof(bpfnet_ct_key), sizeof(bpfnet_ct_entry));
    for (const auto& [k, v] : ct) {
        bpfnet_ct_key key{};
        bpfnet_ct_entry entry{};
        std::memcpy(&key, k.data(), sizeof(key));
        std::memcpy(&entry, v.data(), sizeof(entry));
        EXPECT_TRUE(key.proto == kTcp || key.proto == kUdp || key.proto == kSctp) << int(key.proto);
        EXPECT_LE(key.dir, 1);
        if (key.dir == BPFNET_CT_DIR_IN) {
            EXPECT_TRUE(entry.nat_addr == be(kEp) || entry.nat_addr == be(kEp2))
                << "a flow leads to " << entry.nat_addr;
        }
    }
}

// The same at the uplink's XDP program (bpfnet_up_xdp), with the endpoints marked as taking XDP
// frames so that flows are translated there. It returns XDP_PASS (to the TC program) or
// XDP_REDIRECT (bpf_redirect to the endpoint's veth, flags 0), never XDP_DROP, XDP_TX or
// XDP_ABORTED; a passed frame is exactly the frame that arrived, since the TC program handles it
// next. Every flow the frames created has both entries, each naming the other.
TEST_F(UplinkProg, FuzzedFramesAtXdpArePassedUntouchedOrRedirectedWithWellFormedConntrack) {
    ASSERT_NO_FATAL_FAILURE(add_destination(kNet, kEp, kEpVeth, kEpMac, true));
    ASSERT_NO_FATAL_FAILURE(add_destination(kNet, kEp2, kEp2Veth, kEp2Mac, true));
    const std::vector<std::vector<uint8_t>> seeds = {
        client_syn(),
        tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck | kTcpPsh, 64, "GET /"),
        tcp_frame(kFromPeer, kClient, kHost, 40001, 8080, kTcpSyn),
        tcp_frame(kFromPeer, kClient, kHost2, 40002, 7000, kTcpSyn),
        udp_frame(kFromPeer, kClient, kHost, 41000, 5300),
        ipv4_frame(kFromPeer, kClient, kHost, kSctp, sctp_l4(5000, 2905)),
        with_frag(udp_frame(kFromPeer, kClient, kHost, 41000, 5300), 0x2000),
    };
    auto config = [&] { return agent_config(); };
    const auto before = config();
    size_t passed = 0, redirected = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x8d9)) {
        const RunOutput out = from_uplink_xdp(frame);
        if (out.err != 0) {
            // XDP test runs need a whole Ethernet header, nothing more.
            EXPECT_LT(frame.size(), kEthHdrLen) << libbpf_error_text(out.err);
            EXPECT_EQ(out.err, -EINVAL) << libbpf_error_text(out.err);
            continue;
        }
        if (out.retval == XDP_PASS) {
            ASSERT_EQ(out.data, frame)
                << "XDP_PASS of a changed frame of " << frame.size() << " bytes";
            ++passed;
            continue;
        }
        ASSERT_EQ(out.retval, static_cast<uint32_t>(XDP_REDIRECT))
            << "verdict " << out.retval << " for a frame of " << frame.size() << " bytes";
        ++redirected;
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    // Both ways out are reached: the corpus gets past the parser.
    EXPECT_GT(passed, 0u);
    EXPECT_GT(redirected, 0u);

    const int ct_fd = bpf_map__fd(uplink_->maps.bpfnet_ct);
    const auto ct = testing::map_contents(ct_fd, sizeof(bpfnet_ct_key), sizeof(bpfnet_ct_entry));
    EXPECT_FALSE(ct.empty());
    for (const auto& [k, v] : ct) {
        bpfnet_ct_key key{};
        bpfnet_ct_entry entry{};
        std::memcpy(&key, k.data(), sizeof(key));
        std::memcpy(&entry, v.data(), sizeof(entry));
        // Only XDP's protocols; SCTP and everything else is the TC program's.
        EXPECT_TRUE(key.proto == kTcp || key.proto == kUdp) << int(key.proto);
        ASSERT_LE(key.dir, 1);
        EXPECT_EQ(entry.flags & BPFNET_CT_F_XDP, BPFNET_CT_F_XDP);
        // The other entry of the flow exists and leads back to this one.
        bpfnet_ct_key peer{};
        peer.proto = key.proto;
        peer.dir = key.dir == BPFNET_CT_DIR_IN ? BPFNET_CT_DIR_REPLY : BPFNET_CT_DIR_IN;
        if (key.dir == BPFNET_CT_DIR_IN) {
            EXPECT_TRUE(entry.nat_addr == be(kEp) || entry.nat_addr == be(kEp2))
                << "a flow leads to " << entry.nat_addr;
            EXPECT_TRUE(entry.ifindex == kEpVeth || entry.ifindex == kEp2Veth) << entry.ifindex;
            peer.saddr = entry.nat_addr;
            peer.sport = entry.nat_port;
            peer.daddr = key.saddr;
            peer.dport = key.sport;
        } else {
            EXPECT_TRUE(entry.nat_addr == be(kHost) || entry.nat_addr == be(kHost2))
                << "answers would leave from " << entry.nat_addr;
            EXPECT_EQ(entry.ifindex, kLo);  // the uplink: XDP test runs are on lo too
            peer.saddr = key.daddr;
            peer.sport = key.dport;
            peer.daddr = entry.nat_addr;
            peer.dport = entry.nat_port;
        }
        const auto other =
            ct.find(std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(&peer),
                                         reinterpret_cast<const uint8_t*>(&peer) + sizeof(peer)));
        ASSERT_NE(other, ct.end()) << "a flow with one entry (direction " << int(key.dir) << ")";
        bpfnet_ct_entry peer_entry{};
        std::memcpy(&peer_entry, other->second.data(), sizeof(peer_entry));
        EXPECT_EQ(peer_entry.flags, entry.flags);
        EXPECT_EQ(peer_entry.network, kNet);
        EXPECT_EQ(entry.network, kNet);
    }
}

TEST_F(UplinkProg, ExactHostBindingWinsAndNeedsNoLocalAddress) {
    // host:8080 is published twice: exactly on kHost (to ep2:81) and on any address (to ep:80).
    expect_redirected(from_uplink(tcp_frame(kFromPeer, kClient, kHost, 40001, 8080, kTcpSyn)),
                      tcp_frame(kToEp2, kClient, kEp2, 40001, 81, kTcpSyn, 63));
    EXPECT_EQ(delivered_to(kEp2Veth), 1u);
    EXPECT_TRUE(ct(reply_key(kEp2, 81, 40001, kTcp)).has_value());
    EXPECT_FALSE(ct(reply_key(kEp, 80, 40001, kTcp)).has_value());

    // kHost2 is in no bpfnet_local_ip entry: its exact binding is found all the same.
    expect_redirected(from_uplink(tcp_frame(kFromPeer, kClient, kHost2, 40002, 7000, kTcpSyn)),
                      tcp_frame(kToEp, kClient, kEp, 40002, 70, kTcpSyn, 63));
    const auto reply = ct(reply_key(kEp, 70, 40002, kTcp));
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->nat_addr, be(kHost2));
    EXPECT_EQ(reply->nat_port, htons(7000));
    EXPECT_EQ(ct_size(), 4u);
}

TEST_F(UplinkProg, IpOptionsMoveTheTransportHeader) {
    const std::vector<uint8_t> options = {0x94, 0x04, 0x00, 0x00};  // Router Alert
    const auto in = PacketBuilder()
                        .eth(mac(kPeerMac), mac(kUplinkMac))
                        .ipv4(ip(kClient), ip(kHost))
                        .ip_options(options)
                        .tcp(40000, 8443, kTcpSyn)
                        .build();
    const auto expected = PacketBuilder()
                              .eth(mac(kGwMac), mac(kEpMac))
                              .ipv4(ip(kClient), ip(kEp), 63)
                              .ip_options(options)
                              .tcp(40000, 443, kTcpSyn)
                              .build();
    expect_redirected(from_uplink(in), expected);
    EXPECT_TRUE(ct(in_key(kHost, 40000, 8443, kTcp)).has_value());
}

// ---- UDP ----

TEST_F(UplinkProg, UdpWithChecksumIsTranslated) {
    const uint64_t before = now_ns();
    expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                      udp_frame(kToEp, kClient, kEp, 41000, 53, 63));
    const auto in = ct(in_key(kHost, 41000, 5300, kUdp));
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->flags, 0u);  // no TCP flags for UDP
    EXPECT_EQ(in->nat_port, htons(53));
    EXPECT_GE(in->expires_ns, before + BPFNET_CT_UDP_TIMEOUT * kNsPerSec);
    EXPECT_LE(in->expires_ns, now_ns() + BPFNET_CT_UDP_TIMEOUT * kNsPerSec);
    const auto reply = ct(reply_key(kEp, 53, 41000, kUdp));
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->nat_port, htons(5300));
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 1u);
}

TEST_F(UplinkProg, UdpWithoutChecksumStaysWithout) {
    const size_t csum = kEthHdrLen + kIpv4HdrLen + 6;
    auto in = udp_frame(kFromPeer, kClient, kHost, 41000, 5300);
    auto expected = udp_frame(kToEp, kClient, kEp, 41000, 53, 63);
    in[csum] = in[csum + 1] = 0;
    expected[csum] = expected[csum + 1] = 0;
    expect_redirected(from_uplink(in), expected);
}

TEST_F(UplinkProg, UdpChecksumThatComesOutZeroIsSentAsAllOnes) {
    // Two payload bytes chosen so that the translated datagram's checksum computes to 0, which
    // UDP must send as 0xffff (0 would mean "no checksum").
    auto expected = udp_frame(kToEp, kClient, kEp, 41000, 53, 63, std::string_view("\0\0", 2));
    const size_t csum = kEthHdrLen + kIpv4HdrLen + 6;
    const uint16_t c = testing::detail::load16(expected, csum);
    const std::string payload{static_cast<char>(c >> 8), static_cast<char>(c & 0xff)};
    expected = udp_frame(kToEp, kClient, kEp, 41000, 53, 63, payload);
    ASSERT_EQ(testing::detail::load16(expected, csum), 0xffff);
    const auto in = udp_frame(kFromPeer, kClient, kHost, 41000, 5300, 64, payload);
    ASSERT_NE(testing::detail::load16(in, csum), 0);
    ASSERT_NE(testing::detail::load16(in, csum), 0xffff);
    expect_redirected(from_uplink(in), expected);
}

TEST_F(UplinkProg, PaddedShortFrameIsTranslatedAndKeepsItsPadding) {
    // An empty datagram, padded to the Ethernet minimum the way a NIC delivers it.
    const auto in = PacketBuilder()
                        .eth(mac(kPeerMac), mac(kUplinkMac))
                        .ipv4(ip(kClient), ip(kHost))
                        .udp(41000, 5300)
                        .pad_to(testing::kEthMinFrame)
                        .build();
    const auto expected = PacketBuilder()
                              .eth(mac(kGwMac), mac(kEpMac))
                              .ipv4(ip(kClient), ip(kEp), 63)
                              .udp(41000, 53)
                              .pad_to(testing::kEthMinFrame)
                              .build();
    expect_redirected(from_uplink(in), expected);
}

// ---- SCTP ----

TEST_F(UplinkProg, SctpToTheSamePortIsDnatedAddressOnly) {
    const auto in = ipv4_frame(kFromPeer, kClient, kHost, kSctp, sctp_l4(5000, 2905));
    // Only the IP header (address, TTL, checksum) and the MACs change; the CRC32c stays.
    expect_redirected(from_uplink(in),
                      ipv4_frame(kToEp, kClient, kEp, kSctp, sctp_l4(5000, 2905), 63));
    const auto entry = ct(in_key(kHost, 5000, 2905, kSctp));
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->nat_port, htons(2905));
    EXPECT_GT(entry->expires_ns, now_ns() + (BPFNET_CT_OTHER_TIMEOUT - 5) * kNsPerSec);
    EXPECT_TRUE(ct(reply_key(kEp, 2905, 5000, kSctp)).has_value());
    // The endpoint's answer goes back the same way.
    expect_redirected(from_endpoint(ipv4_frame(kFromEp, kEp, kClient, kSctp, sctp_l4(2905, 5000))),
                      ipv4_frame(kToPeer, kHost, kClient, kSctp, sctp_l4(2905, 5000), 63));
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).packets, 1u);
}

TEST_F(UplinkProg, SctpToAnotherPortIsLeftToTheKernelNat) {
    const auto in = ipv4_frame(kFromPeer, kClient, kHost, kSctp, sctp_l4(5000, 2906));
    expect_unchanged(from_uplink(in), in);
    EXPECT_EQ(nat(BPFNET_NAT_PASS_SCTP).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_PASS_SCTP).bytes, in.size());
    expect_only_counters({BPFNET_NAT_PASS_SCTP});
    EXPECT_EQ(ct_size(), 0u);
}

// ---- what is left to the stack ----

TEST_F(UplinkProg, FragmentsAreLeftToTheKernelNat) {
    // A flow exists already: its fragments still go to the stack, which reassembles them.
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                          udp_frame(kToEp, kClient, kEp, 41000, 53, 63)));
    const std::vector<uint8_t> frames[] = {
        // First fragment (MF, offset 0): the UDP header is there, the datagram is not whole.
        with_frag(udp_frame(kFromPeer, kClient, kHost, 41000, 5300), 0x2000),
        // The last fragment (offset 1480 bytes) and a middle one: no UDP header at all.
        with_frag(udp_frame(kFromPeer, kClient, kHost, 41000, 5300), 185),
        with_frag(udp_frame(kFromPeer, kClient, kHost, 41000, 5300), 0x2000 | 185),
        // TCP alike, DF set along with MF (nonsense, but the fragment bits decide).
        with_frag(client_syn(), 0x4000 | 0x2000),
    };
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_uplink(frames[i]), frames[i]);
    }
    EXPECT_EQ(nat(BPFNET_NAT_PASS_FRAG).packets, 4u);
    EXPECT_EQ(ct(in_key(kHost, 41000, 5300, kUdp))->packets, 1u);
    EXPECT_EQ(ct_size(), 2u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).packets, 1u);
}

TEST_F(UplinkProg, TruncatedHeadersAreLeftAloneWithoutHarm) {
    const auto syn = client_syn();
    const auto udp = udp_frame(kFromPeer, kClient, kHost, 41000, 5300);
    // A frame that ends inside the IPv4 header never reaches the program: test runs refuse it
    // (-EINVAL on the kernels this was written on). If a kernel runs it, it must pass untouched.
    const std::vector<uint8_t> short_ip(syn.begin(),
                                        syn.begin() + static_cast<long>(kEthHdrLen + 12));
    const RunOutput short_out = from_uplink(short_ip);
    if (short_out.err == 0)
        expect_unchanged(short_out, short_ip);
    else
        EXPECT_EQ(short_out.err, -EINVAL) << libbpf_error_text(short_out.err);

    std::vector<std::vector<uint8_t>> frames = {
        // TCP cut after half the ports, after 10 bytes, one byte short of its header.
        cut_l4(syn, 2),
        cut_l4(syn, 10),
        cut_l4(syn, 19),
        // UDP with the ports but not the whole header.
        cut_l4(udp, 4),
        cut_l4(udp, 7),
    };
    // A header with 4 bytes of options, and the frame ends 2 bytes into them.
    auto cut_options = PacketBuilder()
                           .eth(mac(kPeerMac), mac(kUplinkMac))
                           .ipv4(ip(kClient), ip(kHost))
                           .ip_options({0x94, 0x04, 0x00, 0x00})
                           .tcp(40000, 8443, kTcpSyn)
                           .build();
    cut_options.resize(kEthHdrLen + kIpv4HdrLen + 2);
    frames.push_back(cut_options);
    // The header length says 60 bytes of the 40 that follow the Ethernet header.
    auto long_ihl = syn;
    long_ihl[kEthHdrLen] = 0x4f;
    frames.push_back(long_ihl);
    // A header length below the minimum.
    auto short_ihl = syn;
    short_ihl[kEthHdrLen] = 0x44;
    frames.push_back(short_ihl);
    // Not IP version 4 behind the IPv4 EtherType.
    auto v5 = syn;
    v5[kEthHdrLen] = 0x55;
    frames.push_back(v5);

    for (size_t i = 0; i < frames.size(); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_uplink(frames[i]), frames[i]);
    }
    EXPECT_EQ(ct_size(), 0u);
    expect_only_counters({});
}

// Regression (bpf/lib/nat.h, bpfnet_parse_flow, and lib/uplink_xdp.h): the transport header must
// end within the IPv4 total length, not merely within the frame, or Ethernet padding is taken for
// header bytes. A UDP header cut after its ports (IPv4 total length 24) arrives as a 60-byte frame,
// zero-padded by the sender's NIC. Expected, as for the same header unpadded in
// TruncatedHeadersAreLeftAloneWithoutHarm: TC_ACT_OK, frame unchanged, no flow.
TEST_F(UplinkProg, UdpHeaderCutInAPaddedFrameStartsNoFlow) {
    auto in = cut_l4(udp_frame(kFromPeer, kClient, kHost, 41000, 5300), 4);
    in.resize(testing::kEthMinFrame, 0);  // padding, outside the IPv4 total length
    expect_unchanged(from_uplink(in), in);
    EXPECT_EQ(ct_size(), 0u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 0u);
}

// Regression, the same as above, in a TCP flow: a segment cut to 10 bytes of header and
// zero-padded to 60 bytes is counted to the flow and DNATed, and the checksum update is written
// into the padding (bytes 16-17 of the "header" lie beyond the IPv4 total length). Expected:
// TC_ACT_OK, frame unchanged (padding still zero), the flow not touched.
TEST_F(UplinkProg, TcpHeaderCutInAPaddedFrameIsNotTranslated) {
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    auto in = cut_l4(tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck), 10);
    const size_t ip_end = in.size();
    in.resize(testing::kEthMinFrame, 0);
    const RunOutput out = from_uplink(in);
    expect_unchanged(out, in);
    ASSERT_EQ(out.data.size(), in.size());
    EXPECT_TRUE(std::all_of(out.data.begin() + static_cast<long>(ip_end), out.data.end(),
                            [](uint8_t b) { return b == 0; }))
        << "the program wrote into the Ethernet padding";
    EXPECT_EQ(ct(in_key(kHost, 40000, 8443, kTcp))->packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_DNAT).packets, 1u);
}

TEST_F(UplinkProg, ExpiringTtlIsLeftToTheStack) {
    for (uint8_t ttl : {1, 0}) {
        const auto in = tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpSyn, ttl);
        expect_unchanged(from_uplink(in), in);
    }
    EXPECT_EQ(nat(BPFNET_NAT_TTL_EXPIRED).packets, 2u);
    EXPECT_EQ(ct_size(), 0u);
    // One more hop is still forwarded.
    expect_redirected(from_uplink(tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpSyn, 2)),
                      tcp_frame(kToEp, kClient, kEp, 40000, 443, kTcpSyn, 1));
}

TEST_F(UplinkProg, NonIpv4FramesAreLeftToTheHost) {
    const auto arp = testing::arp_request(mac(kPeerMac), ip(kClient), ip(kHost));
    const auto v6 = PacketBuilder()
                        .eth(mac(kPeerMac), mac(kUplinkMac))
                        .ipv6(testing::ip6("2001:db8:7::70"), testing::ip6("2001:db8:7::50"))
                        .tcp(40000, 8443, kTcpSyn)
                        .build();
    // A tag still in the frame belongs to a VLAN device on top of the uplink.
    const auto tagged = PacketBuilder()
                            .eth(mac(kPeerMac), mac(kUplinkMac))
                            .vlan(7)
                            .ipv4(ip(kClient), ip(kHost))
                            .tcp(40000, 8443, kTcpSyn)
                            .build();
    // IPv4, but neither TCP/UDP/SCTP nor an ICMP error: an echo request, and GRE.
    const auto ping = PacketBuilder()
                          .eth(mac(kPeerMac), mac(kUplinkMac))
                          .ipv4(ip(kClient), ip(kHost))
                          .icmp_echo(7, 1)
                          .build();
    const auto gre = ipv4_frame(kFromPeer, kClient, kHost, 47, {0, 0, 0x08, 0x00});
    const std::vector<uint8_t> frames[] = {arp, v6, tagged, ping, gre};
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_uplink(frames[i]), frames[i]);
    }
    EXPECT_EQ(ct_size(), 0u);
    expect_only_counters({});
}

// ---- replies: the endpoint program's reverse NAT ----

TEST_F(UplinkProg, EndpointReplyGetsTheHostAddressAndPort) {
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    const auto synack = tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpSyn | kTcpAck);
    const uint64_t before = now_ns();
    expect_redirected(from_endpoint(synack),
                      tcp_frame(kToPeer, kHost, kClient, 8443, 40000, kTcpSyn | kTcpAck, 63));
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).bytes, synack.size());

    // Answered: both entries say so and live for the established timeout.
    const auto in = ct(in_key(kHost, 40000, 8443, kTcp));
    const auto reply = ct(reply_key(kEp, 443, 40000, kTcp));
    ASSERT_TRUE(in.has_value() && reply.has_value());
    EXPECT_EQ(in->flags, BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED);
    EXPECT_GE(reply->expires_ns, before + BPFNET_CT_TCP_ESTABLISHED_TIMEOUT * kNsPerSec);
    EXPECT_EQ(in->expires_ns, reply->expires_ns);
    EXPECT_EQ(reply->packets, 1u);
    EXPECT_EQ(reply->bytes, synack.size());
    EXPECT_EQ(in->packets, 1u);

    // The conversation goes on both ways.
    expect_redirected(from_uplink(tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck)),
                      tcp_frame(kToEp, kClient, kEp, 40000, 443, kTcpAck, 63));
    expect_redirected(
        from_endpoint(tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpAck | kTcpPsh, 64, "200")),
        tcp_frame(kToPeer, kHost, kClient, 8443, 40000, kTcpAck | kTcpPsh, 63, "200"));
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->packets, 2u);
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).packets, 2u);
    EXPECT_EQ(ct_size(), 2u);
}

TEST_F(UplinkProg, EndpointUdpReplyIsTranslatedBack) {
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                          udp_frame(kToEp, kClient, kEp, 41000, 53, 63)));
    expect_redirected(from_endpoint(udp_frame(kFromEp, kEp, kClient, 53, 41000, 64, "answer")),
                      udp_frame(kToPeer, kHost, kClient, 5300, 41000, 63, "answer"));
    EXPECT_EQ(ct(in_key(kHost, 41000, 5300, kUdp))->flags, BPFNET_CT_F_REPLIED);
    EXPECT_EQ(ct(reply_key(kEp, 53, 41000, kUdp))->flags, BPFNET_CT_F_REPLIED);
}

TEST_F(UplinkProg, EndpointTrafficWithoutALiveFlowIsLeftAlone) {
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    const std::vector<uint8_t> frames[] = {
        // Another client port, another endpoint port, another protocol, another client.
        tcp_frame(kFromEp, kEp, kClient, 443, 40001, kTcpSyn | kTcpAck),
        tcp_frame(kFromEp, kEp, kClient, 444, 40000, kTcpSyn | kTcpAck),
        udp_frame(kFromEp, kEp, kClient, 443, 40000),
        tcp_frame(kFromEp, kEp, kRouter, 443, 40000, kTcpSyn | kTcpAck),
        // The flow's own answer with TTL 1: the host's stack answers "time exceeded".
        tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpSyn | kTcpAck, 1),
    };
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_endpoint(frames[i]), frames[i]);
    }
    // A dead REPLY entry is no flow either.
    const auto key = reply_key(kEp, 443, 40000, kTcp);
    auto dead = *ct(key);
    dead.expires_ns = now_ns() - kNsPerSec;
    ASSERT_NO_FATAL_FAILURE(ct_write(key, dead));
    const auto late = tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpSyn | kTcpAck);
    expect_unchanged(from_endpoint(late), late);
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).packets, 0u);
    EXPECT_EQ(ct(key)->packets, 0u);
    EXPECT_EQ(ct(in_key(kHost, 40000, 8443, kTcp))->flags, BPFNET_CT_F_SYN);  // not answered
}

// ---- ICMP errors ----

TEST_F(UplinkProg, PortUnreachableFromTheEndpointIsTranslatedBack) {
    const auto sent = udp_frame(kFromPeer, kClient, kHost, 41000, 5300);
    const auto received = udp_frame(kToEp, kClient, kEp, 41000, 53, 63);
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(sent), received));
    // Nothing listens in the sandbox: the endpoint's stack quotes the datagram as it arrived.
    const auto unreachable =
        icmp_error(kFromEp, kEp, kClient, kIcmpUnreachable, kIcmpPortUnreachable, received);
    ASSERT_EQ(checksum_errors(unreachable), "");
    ASSERT_TRUE(quoted_ip_checksum_ok(unreachable));
    // The client must see it from the host, about the datagram it sent (to host:5300; the TTL
    // quoted is the one the endpoint saw). The quoted UDP checksum follows the address and port,
    // so it is again the one the client computed.
    const auto quoted = udp_frame(kFromPeer, kClient, kHost, 41000, 5300, 63);
    const auto expected =
        icmp_error(kToPeer, kHost, kClient, kIcmpUnreachable, kIcmpPortUnreachable, quoted, 63);
    const RunOutput out = from_endpoint(unreachable);
    expect_redirected(out, expected);
    EXPECT_TRUE(quoted_ip_checksum_ok(out.data));
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_OUT).packets, 1u);
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_OUT).bytes, unreachable.size());

    // About a datagram of no flow (another client port): the host routes it as it is.
    const auto stranger = icmp_error(kFromEp, kEp, kClient, kIcmpUnreachable, kIcmpPortUnreachable,
                                     udp_frame(kToEp, kClient, kEp, 41001, 53, 63));
    expect_unchanged(from_endpoint(stranger), stranger);
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_OUT).packets, 1u);
}

TEST_F(UplinkProg, IcmpErrorAtTheUplinkAboutAReplyIsTranslatedToTheEndpoint) {
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                          udp_frame(kToEp, kClient, kEp, 41000, 53, 63)));
    // A router between host and client cannot forward the (translated) answer.
    const auto answer = udp_frame(kToPeer, kHost, kClient, 5300, 41000, 60, "answer");
    const auto too_big =
        icmp_error(kFromPeer, kRouter, kHost, kIcmpUnreachable, kIcmpFragNeeded, answer, 64, 1400);
    ASSERT_EQ(checksum_errors(too_big), "");
    // The endpoint must see it about the answer it sent: from ep:53, UDP checksum to match.
    const auto own = udp_frame(kFromEp, kEp, kClient, 53, 41000, 60, "answer");
    const auto expected =
        icmp_error(kToEp, kRouter, kEp, kIcmpUnreachable, kIcmpFragNeeded, own, 63, 1400);
    const RunOutput out = from_uplink(too_big);
    expect_redirected(out, expected);
    EXPECT_TRUE(quoted_ip_checksum_ok(out.data));
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_IN).packets, 1u);
    EXPECT_EQ(delivered_to(kEpVeth), 2u);

    // Time exceeded about a TCP answer works the same way (the quoted 8 bytes hold no checksum).
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    const auto exceeded =
        icmp_error(kFromPeer, kRouter, kHost, kIcmpTimeExceeded, 0,
                   tcp_frame(kToPeer, kHost, kClient, 8443, 40000, kTcpSyn | kTcpAck, 1));
    expect_redirected(
        from_uplink(exceeded),
        icmp_error(kToEp, kRouter, kEp, kIcmpTimeExceeded, 0,
                   tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpSyn | kTcpAck, 1), 63));
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_IN).packets, 2u);

    // Errors about no flow, or not about an answer of the host: the host's.
    const std::vector<uint8_t> frames[] = {
        icmp_error(kFromPeer, kRouter, kHost, kIcmpUnreachable, kIcmpFragNeeded,
                   udp_frame(kToPeer, kHost, kClient, 5300, 41001, 60), 64, 1400),
        icmp_error(kFromPeer, kRouter, kHost, kIcmpUnreachable, kIcmpPortUnreachable,
                   udp_frame(kToPeer, kForeign, kClient, 5300, 41000, 60)),
        // TTL 1 on the error itself: it cannot be forwarded.
        icmp_error(kFromPeer, kRouter, kHost, kIcmpUnreachable, kIcmpFragNeeded, answer, 1, 1400),
    };
    for (size_t i = 0; i < std::size(frames); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_unchanged(from_uplink(frames[i]), frames[i]);
    }
    EXPECT_EQ(nat(BPFNET_NAT_ICMP_IN).packets, 2u);
}

// ---- the life of a flow ----

TEST_F(UplinkProg, RstClosesTheFlowAndTheNextSynStartsAFreshOne) {
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    const auto rst = tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpRst | kTcpAck);
    const uint64_t before = now_ns();
    expect_redirected(from_uplink(rst),
                      tcp_frame(kToEp, kClient, kEp, 40000, 443, kTcpRst | kTcpAck, 63));
    const uint64_t after = now_ns();
    const auto in = ct(in_key(kHost, 40000, 8443, kTcp));
    const auto reply = ct(reply_key(kEp, 443, 40000, kTcp));
    ASSERT_TRUE(in.has_value() && reply.has_value());
    EXPECT_EQ(in->flags, BPFNET_CT_F_SYN | BPFNET_CT_F_RST);
    EXPECT_EQ(reply->flags, BPFNET_CT_F_SYN | BPFNET_CT_F_RST);
    EXPECT_GE(in->expires_ns, before + BPFNET_CT_TCP_CLOSE_TIMEOUT * kNsPerSec);
    EXPECT_LE(in->expires_ns, after + BPFNET_CT_TCP_CLOSE_TIMEOUT * kNsPerSec);
    EXPECT_EQ(reply->expires_ns, in->expires_ns);
    EXPECT_EQ(in->packets, 2u);

    // The same 4-tuple again: a new connection with new entries.
    expect_redirected(from_uplink(client_syn()), syn_at_ep());
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 2u);
    const auto fresh = ct(in_key(kHost, 40000, 8443, kTcp));
    ASSERT_TRUE(fresh.has_value());
    EXPECT_EQ(fresh->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(fresh->packets, 1u);
    EXPECT_GE(fresh->expires_ns, before + BPFNET_CT_TCP_SYN_TIMEOUT * kNsPerSec);
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(ct_size(), 2u);
}

TEST_F(UplinkProg, FinBothWaysClosesTheFlowButOneWayDoesNot) {
    ASSERT_NO_FATAL_FAILURE(expect_redirected(from_uplink(client_syn()), syn_at_ep()));
    ASSERT_NO_FATAL_FAILURE(expect_redirected(
        from_endpoint(tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpSyn | kTcpAck)),
        tcp_frame(kToPeer, kHost, kClient, 8443, 40000, kTcpSyn | kTcpAck, 63)));
    ASSERT_NO_FATAL_FAILURE(expect_redirected(
        from_uplink(tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpFin | kTcpAck)),
        tcp_frame(kToEp, kClient, kEp, 40000, 443, kTcpFin | kTcpAck, 63)));
    const uint16_t half = BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED | BPFNET_CT_F_FIN_IN;
    EXPECT_EQ(ct(in_key(kHost, 40000, 8443, kTcp))->flags, half);
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->flags, half);

    // Half closed: a SYN with the same tuple is still this flow.
    expect_redirected(from_uplink(client_syn()), syn_at_ep());
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 1u);

    expect_redirected(
        from_endpoint(tcp_frame(kFromEp, kEp, kClient, 443, 40000, kTcpFin | kTcpAck)),
        tcp_frame(kToPeer, kHost, kClient, 8443, 40000, kTcpFin | kTcpAck, 63));
    const uint16_t closed = half | BPFNET_CT_F_FIN_OUT;
    const auto in = ct(in_key(kHost, 40000, 8443, kTcp));
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->flags, closed);
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->flags, closed);
    EXPECT_LE(in->expires_ns, now_ns() + BPFNET_CT_TCP_CLOSE_TIMEOUT * kNsPerSec);

    // Closed both ways: the next SYN is a new connection.
    expect_redirected(from_uplink(client_syn()), syn_at_ep());
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 2u);
    EXPECT_EQ(ct(in_key(kHost, 40000, 8443, kTcp))->flags, BPFNET_CT_F_SYN);
    EXPECT_EQ(ct(reply_key(kEp, 443, 40000, kTcp))->flags, BPFNET_CT_F_SYN);
}

TEST_F(UplinkProg, ExpiredInEntryIsReplacedByANewFlow) {
    // A dead entry (expired a second ago) that still names an old translation: ep2:81.
    const auto key = in_key(kHost, 40000, 8443, kTcp);
    bpfnet_ct_entry stale{};
    stale.expires_ns = now_ns() - kNsPerSec;
    stale.packets = 100;
    stale.bytes = 10000;
    stale.nat_addr = be(kEp2);
    stale.nat_port = htons(81);
    stale.flags = BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED;
    stale.ifindex = kEp2Veth;
    stale.network = kNet;
    std::memcpy(stale.smac, mac(kGwMac).bytes.data(), 6);
    std::memcpy(stale.dmac, mac(kEp2Mac).bytes.data(), 6);
    ASSERT_NO_FATAL_FAILURE(ct_write(key, stale));

    // A segment of it is no flow: the stack's.
    const auto ack = tcp_frame(kFromPeer, kClient, kHost, 40000, 8443, kTcpAck);
    expect_unchanged(from_uplink(ack), ack);
    EXPECT_EQ(ct(key)->packets, 100u);

    // A SYN starts over with what is published now.
    expect_redirected(from_uplink(client_syn()), syn_at_ep());
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 1u);
    const auto fresh = ct(key);
    ASSERT_TRUE(fresh.has_value());
    EXPECT_EQ(fresh->nat_addr, be(kEp));
    EXPECT_EQ(fresh->nat_port, htons(443));
    EXPECT_EQ(fresh->ifindex, kEpVeth);
    EXPECT_EQ(fresh->packets, 1u);
    EXPECT_EQ(fresh->flags, BPFNET_CT_F_SYN);
    EXPECT_GT(fresh->expires_ns, now_ns());
    EXPECT_EQ(delivered_to(kEpVeth), 1u);
    EXPECT_EQ(delivered_to(kEp2Veth), 0u);

    // UDP needs no SYN: any datagram on an expired entry starts a new flow.
    const auto udp_key = in_key(kHost, 41000, 5300, kUdp);
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                          udp_frame(kToEp, kClient, kEp, 41000, 53, 63)));
    auto old = *ct(udp_key);
    old.expires_ns = now_ns() - kNsPerSec;
    ASSERT_NO_FATAL_FAILURE(ct_write(udp_key, old));
    expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                      udp_frame(kToEp, kClient, kEp, 41000, 53, 63));
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, 3u);
    EXPECT_EQ(ct(udp_key)->packets, 1u);
    EXPECT_GT(ct(udp_key)->expires_ns, now_ns());
}

// Regression (bpf/lib/conntrack.h, bpfnet_ct_touch): a packet must extend the lifetime of both
// entries of its flow, not only its own. A UDP flow's flags never change after the first answer,
// so with only its own entry refreshed a client that
// keeps sending keeps the IN entry alive while the REPLY entry runs out 60 s after the endpoint's
// last answer. The endpoint's next answer then finds no live REPLY entry and goes to the host
// untranslated; the kernel NAT has no state for the flow (the request went around netfilter), so
// it masquerades the answer as a new flow from ep:53 and the client never gets it from
// host:5300. Since the uplink makes a new flow only when the IN entry is dead, the flow does not
// recover while the client keeps it alive. Kernel conntrack refreshes a flow by traffic either
// way. Expected: after the client's datagram both entries live another 60 s.
TEST_F(UplinkProg, ClientTrafficKeepsTheWholeUdpFlowAlive) {
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                          udp_frame(kToEp, kClient, kEp, 41000, 53, 63)));
    ASSERT_NO_FATAL_FAILURE(
        expect_redirected(from_endpoint(udp_frame(kFromEp, kEp, kClient, 53, 41000)),
                          udp_frame(kToPeer, kHost, kClient, 5300, 41000, 63)));
    // 58.5 s later (as far as the entries can tell), the client sends again.
    const auto in_k = in_key(kHost, 41000, 5300, kUdp);
    const auto reply_k = reply_key(kEp, 53, 41000, kUdp);
    const uint64_t soon = now_ns() + 3 * kNsPerSec / 2;
    for (const auto& key : {in_k, reply_k}) {
        auto e = *ct(key);
        e.expires_ns = soon;
        ASSERT_NO_FATAL_FAILURE(ct_write(key, e));
    }
    const uint64_t before = now_ns();
    expect_redirected(from_uplink(udp_frame(kFromPeer, kClient, kHost, 41000, 5300)),
                      udp_frame(kToEp, kClient, kEp, 41000, 53, 63));

    const auto in = ct(in_k);
    const auto reply = ct(reply_k);
    ASSERT_TRUE(in.has_value() && reply.has_value());
    EXPECT_GE(in->expires_ns, before + BPFNET_CT_UDP_TIMEOUT * kNsPerSec);
    EXPECT_GE(reply->expires_ns, before + (BPFNET_CT_UDP_TIMEOUT - 1) * kNsPerSec)
        << "the REPLY entry still dies " << (reply->expires_ns - before) / 1000000
        << " ms from now while the IN entry lives " << (in->expires_ns - before) / kNsPerSec
        << " s";
}

// ---- a full conntrack ----

// The fixture with a conntrack of 64 entries (32 flows), as --ct-max 64 gives it, on one CPU: the
// kernel's LRU keeps free and new entries per CPU and, when one CPU's run out, takes another CPU's
// newest ones, so which flows survive a flood would depend on where the scheduler ran each test
// run.
class UplinkProgSmallCt : public UplinkProg {
  protected:
    void SetUp() override {
        ASSERT_EQ(sched_getaffinity(0, sizeof(cpus_), &cpus_), 0);
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
        pinned_ = true;
        UplinkProg::SetUp();
    }
    void TearDown() override {
        if (pinned_) {
            EXPECT_EQ(sched_setaffinity(0, sizeof(cpus_), &cpus_), 0);
        }
    }

    static constexpr uint32_t kCtMax = 64;
    static constexpr uint16_t kFirstPort = 10000;
    static constexpr size_t kFlows = 5000;
    // Flows that must still be whole after the flood. The kernel's LRU frees slots in batches
    // and keeps some free per CPU, and evicts each entry on its own, so fewer than kCtMax / 2
    // flows are whole at the end (24 on the kernel this was written on, 6.18); the newest 8 are.
    static constexpr size_t kRecentFlows = 8;
    UplinkProgSmallCt() { ct_max_entries_ = kCtMax; }

    cpu_set_t cpus_{};
    bool pinned_ = false;
};

// A flood of new connections (5,000 SYNs from distinct client ports to one published port, 78
// times what the table holds). The LRU makes room by evicting the least recently used entries, so
// every SYN is still DNATed, byte for byte, to the endpoint; the table never holds more than its
// size; the newest flows have both entries, and every entry left is the one its flow created.
// Then the endpoint answers every flow: an answer whose REPLY entry is still there goes back
// translated exactly for its own flow; an answer of an evicted flow is never translated with
// another flow's entry: it goes to the stack unchanged (docs/architecture.md, "From outside on
// BPF networks"), as does the client's next segment of an evicted flow.
TEST_F(UplinkProgSmallCt, SynFloodEvictsOldFlowsAndNeverMisforwards) {
    ASSERT_EQ(bpf_map__max_entries(uplink_->maps.bpfnet_ct), kCtMax);
    auto port = [](size_t flow) { return static_cast<uint16_t>(kFirstPort + flow); };
    for (size_t i = 0; i < kFlows; ++i) {
        const RunOutput out =
            from_uplink(tcp_frame(kFromPeer, kClient, kHost, port(i), 8443, kTcpSyn));
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT)) << "SYN " << i;
        ASSERT_EQ(out.data, tcp_frame(kToEp, kClient, kEp, port(i), 443, kTcpSyn, 63))
            << "SYN " << i;
        ASSERT_TRUE(ct(in_key(kHost, port(i), 8443, kTcp)).has_value()) << "SYN " << i;
        ASSERT_TRUE(ct(reply_key(kEp, 443, port(i), kTcp)).has_value()) << "SYN " << i;
        ASSERT_LE(ct_size(), kCtMax) << "after SYN " << i;
    }
    EXPECT_EQ(nat(BPFNET_NAT_DNAT_NEW).packets, kFlows);
    EXPECT_EQ(nat(BPFNET_NAT_CT_FAILED).packets, 0u);
    EXPECT_EQ(delivered_to(kEpVeth), kFlows);
    EXPECT_EQ(drops(), 0u);

    // The newest flows are whole.
    for (size_t i = kFlows - kRecentFlows; i < kFlows; ++i) {
        EXPECT_TRUE(ct(in_key(kHost, port(i), 8443, kTcp)).has_value()) << "flow " << i;
        EXPECT_TRUE(ct(reply_key(kEp, 443, port(i), kTcp)).has_value()) << "flow " << i;
    }
    // Every entry left belongs to one of the flows and says what that flow's SYN made it say.
    const auto entries = testing::map_contents(bpf_map__fd(uplink_->maps.bpfnet_ct),
                                               sizeof(bpfnet_ct_key), sizeof(bpfnet_ct_entry));
    EXPECT_LE(entries.size(), kCtMax);
    for (const auto& [k, v] : entries) {
        bpfnet_ct_key key{};
        bpfnet_ct_entry e{};
        std::memcpy(&key, k.data(), sizeof(key));
        std::memcpy(&e, v.data(), sizeof(e));
        const bool in = key.dir == BPFNET_CT_DIR_IN;
        const uint16_t cport = ntohs(in ? key.sport : key.dport);
        ASSERT_GE(cport, kFirstPort);
        ASSERT_LT(cport, kFirstPort + kFlows);
        const auto expected_key =
            in ? in_key(kHost, cport, 8443, kTcp) : reply_key(kEp, 443, cport, kTcp);
        EXPECT_EQ(std::memcmp(&key, &expected_key, sizeof(key)), 0) << "flow of port " << cport;
        EXPECT_EQ(e.nat_addr, in ? be(kEp) : be(kHost)) << "flow of port " << cport;
        EXPECT_EQ(e.nat_port, htons(in ? 443 : 8443)) << "flow of port " << cport;
        EXPECT_EQ(e.ifindex, in ? kEpVeth : kLo) << "flow of port " << cport;
        EXPECT_EQ(e.flags, BPFNET_CT_F_SYN);
        EXPECT_EQ(e.packets, in ? 1u : 0u);
    }

    // The endpoint answers every flow, oldest first.
    size_t translated = 0;
    for (size_t i = 0; i < kFlows; ++i) {
        const auto synack = tcp_frame(kFromEp, kEp, kClient, 443, port(i), kTcpSyn | kTcpAck);
        const bool tracked = ct(reply_key(kEp, 443, port(i), kTcp)).has_value();
        const RunOutput out = from_endpoint(synack);
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        if (tracked) {
            ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT)) << "answer " << i;
            ASSERT_EQ(out.data,
                      tcp_frame(kToPeer, kHost, kClient, 8443, port(i), kTcpSyn | kTcpAck, 63))
                << "answer " << i;
            ++translated;
        } else {
            ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK)) << "answer " << i;
            ASSERT_EQ(out.data, synack) << "answer " << i;
        }
    }
    EXPECT_GE(translated, kRecentFlows);
    EXPECT_LE(translated, kCtMax / 2);
    EXPECT_EQ(nat(BPFNET_NAT_REPLY).packets, translated);
    // The oldest flow is long gone: its client's next segment is the stack's too.
    ASSERT_FALSE(ct(in_key(kHost, port(0), 8443, kTcp)).has_value());
    const auto ack = tcp_frame(kFromPeer, kClient, kHost, port(0), 8443, kTcpAck);
    expect_unchanged(from_uplink(ack), ack);
    EXPECT_LE(ct_size(), kCtMax);
}

// Regression (bpf/lib/uplink.h, bpf/lib/uplink_xdp.h): the LRU evicts entries, not flows, and
// evicts the REPLY entry of a flow whose answers are rare before its IN entry, which the client's
// packets keep using (after the flood above, 16 of the 40 IN entries left have no REPLY). The
// client's packets then still reach the endpoint, but the endpoint's answers find no REPLY entry
// and leave untranslated through the stack, where the kernel NAT has no state for the flow (its
// packets went around netfilter) and masquerades them as a new flow from the endpoint's port: the
// client never gets an answer from host:8443, and every packet it sends keeps the IN entry alive,
// so the flow never recovers. Expected: when the client's packet refreshes a live IN entry (at
// most once a second) and its REPLY entry is gone, the REPLY entry is rebuilt from the IN entry
// and the packet, so the next answer is translated again.
TEST_F(UplinkProgSmallCt, ClientTrafficRestoresAnEvictedReplyEntry) {
    auto port = [](size_t flow) { return static_cast<uint16_t>(kFirstPort + flow); };
    for (size_t i = 0; i < 200; ++i) {
        ASSERT_EQ(from_uplink(tcp_frame(kFromPeer, kClient, kHost, port(i), 8443, kTcpSyn)).retval,
                  static_cast<uint32_t>(TC_ACT_REDIRECT));
    }
    // The oldest flow that lost its REPLY entry only.
    size_t half = 0;
    while (half < 200 && (!ct(in_key(kHost, port(half), 8443, kTcp)).has_value() ||
                          ct(reply_key(kEp, 443, port(half), kTcp)).has_value()))
        ++half;
    ASSERT_LT(half, 200u) << "no flow has its IN entry without its REPLY entry";
    const uint16_t cport = port(half);
    const auto answer = tcp_frame(kFromEp, kEp, kClient, 443, cport, kTcpSyn | kTcpAck);
    expect_unchanged(from_endpoint(answer), answer);

    // 1.5 s later (as far as the IN entry can tell) the client retransmits its SYN.
    const auto in_k = in_key(kHost, cport, 8443, kTcp);
    auto in = *ct(in_k);
    in.expires_ns = now_ns() + (BPFNET_CT_TCP_SYN_TIMEOUT * kNsPerSec) - 3 * kNsPerSec / 2;
    ASSERT_NO_FATAL_FAILURE(ct_write(in_k, in));
    expect_redirected(from_uplink(tcp_frame(kFromPeer, kClient, kHost, cport, 8443, kTcpSyn)),
                      tcp_frame(kToEp, kClient, kEp, cport, 443, kTcpSyn, 63));
    in = *ct(in_k);
    const auto reply = ct(reply_key(kEp, 443, cport, kTcp));
    ASSERT_TRUE(reply.has_value()) << "the REPLY entry is still missing";
    EXPECT_EQ(reply->nat_addr, be(kHost));
    EXPECT_EQ(reply->nat_port, htons(8443));
    EXPECT_EQ(reply->ifindex, kLo);
    EXPECT_EQ(reply->network, kNet);
    EXPECT_EQ(reply->flags, in.flags);
    EXPECT_EQ(reply->expires_ns, in.expires_ns);
    EXPECT_TRUE(mac_is(reply->smac, kUplinkMac));
    EXPECT_TRUE(mac_is(reply->dmac, kPeerMac));
    EXPECT_EQ(reply->packets, 0u);

    // The endpoint's answer goes back translated, as for a flow that never lost an entry.
    expect_redirected(from_endpoint(answer),
                      tcp_frame(kToPeer, kHost, kClient, 8443, cport, kTcpSyn | kTcpAck, 63));
    EXPECT_EQ(ct(in_k)->flags, BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED);
    EXPECT_LE(ct_size(), kCtMax);
}

}  // namespace
}  // namespace bpfnet

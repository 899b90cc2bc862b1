// The endpoint program (bpf/endpoint.bpf.c) through its skeleton and BPF_PROG_TEST_RUN: each case
// gives the maps' contents, the input frame, and checks the verdict, the exact output bytes, the
// per-endpoint counters, the drop counters and the drop events.
//
// Which endpoint sends: the program keys the sender by skb->ifindex. BPF_PROG_TEST_RUN builds the
// skb on the loopback device of the caller's netns unless ctx.ifindex names another existing device
// (ifindex > 1, else -ENODEV), so the sending endpoint's "host veth" here is lo, ifindex 1 in every
// netns. Destinations need no device at all: test runs never perform the redirect, they only
// return TC_ACT_REDIRECT, and the destination's to_packets counter tells which peer was chosen.
// Real veths and real redirects are covered by endpoint_attach_test.cpp.
//
// The maps are pinned by name in production; these tests clear every pin path between open and
// load, so they never touch the host's bpffs and each test starts from empty maps.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <vector>

#include "bpf/endpoint.skel.h"
#include "bpf/frame_fuzz.h"
#include "bpf/packet_builder.h"
#include "bpfnet/abi.h"
#include "common/privileged.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"

namespace bpfnet {
namespace {

using testing::arp_frame;
using testing::arp_reply;
using testing::arp_request;
using testing::checksum_errors;
using testing::ip;
using testing::ip6;
using testing::kArpReply;
using testing::kArpRequest;
using testing::kBroadcastMac;
using testing::mac;
using testing::PacketBuilder;

constexpr uint32_t kLoIfindex = 1;  // what BPF_PROG_TEST_RUN gives the skb (see the top)

// The fixture: two networks, three endpoints. A sends every test packet; B shares its network,
// C is on the second network.
constexpr uint32_t kNet1 = 1001;  // networks' datapath IDs
constexpr uint32_t kNet2 = 1002;

struct TestEndpoint {
    uint32_t ifindex;
    const char* ip;
    const char* mac;
    uint32_t network;
};
constexpr TestEndpoint kA{kLoIfindex, "10.212.1.2", "02:42:0a:d4:01:02", kNet1};
constexpr TestEndpoint kB{102, "10.212.1.3", "02:42:0a:d4:01:03", kNet1};
constexpr TestEndpoint kC{103, "10.212.2.2", "02:42:0a:d4:02:02", kNet2};
constexpr const char* kGw1 = "10.212.1.1";
constexpr const char* kGw1Mac = "02:42:0a:d4:01:01";
constexpr const char* kGw2 = "10.212.2.1";
constexpr const char* kGw2Mac = "02:42:0a:d4:02:01";

struct RunOutput {
    int err = 0;
    uint32_t retval = 0;
    std::vector<uint8_t> data;
};

uint32_t be(const char* addr) {
    return ip(addr).network_order();
}

std::vector<uint8_t> mac_bytes(const char* text) {
    const MacAddr m = mac(text);
    return {m.bytes.begin(), m.bytes.end()};
}

// ---- the packet builder's extensions used here (no privileges needed) ----

TEST(PacketBuilderExtensions, StacksVlanTagsBeforeTheEtherType) {
    const auto f = PacketBuilder()
                       .vlan(100, testing::kEthP8021AD)
                       .vlan(0x2005)  // PCP 1, VID 5
                       .ipv4(ip("10.0.0.1"), ip("10.0.0.2"))
                       .udp(1, 2)
                       .build();
    ASSERT_EQ(f.size(), testing::kEthHdrLen + 2 * testing::kVlanTagLen + testing::kIpv4HdrLen +
                            testing::kUdpHdrLen);
    EXPECT_EQ(std::vector<uint8_t>(f.begin() + 12, f.begin() + 22),
              (std::vector<uint8_t>{0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x20, 0x05, 0x08, 0x00}));
    EXPECT_EQ(checksum_errors(f), "");
}

TEST(PacketBuilderExtensions, PadsIpOptionsAndCoversThemInIhlAndChecksum) {
    const auto f = PacketBuilder().ip_options({0x94, 0x04, 0x00, 0x00, 0x01}).udp(1, 2).build();
    const size_t ip_off = testing::kEthHdrLen;
    EXPECT_EQ(f[ip_off], 0x47);  // 20 + 5 -> 28 bytes of header
    EXPECT_EQ(f[ip_off + 2] << 8 | f[ip_off + 3], 28 + 8);
    EXPECT_EQ(f[ip_off + 24], 0x01);
    EXPECT_EQ(f[ip_off + 27], 0x00);  // padding
    EXPECT_EQ(checksum_errors(f), "");
    EXPECT_THROW(PacketBuilder().ip_options(std::vector<uint8_t>(41, 1)), std::invalid_argument);
}

TEST(PacketBuilderExtensions, BuildsIpv6WithIcmpv6AndUdp) {
    const auto icmp = PacketBuilder().ipv6(ip6("fd00::1"), ip6("fd00::2")).icmp_echo(5, 6).build();
    ASSERT_EQ(icmp.size(), testing::kEthHdrLen + testing::kIpv6HdrLen + testing::kIcmpHdrLen);
    EXPECT_EQ(icmp[12], 0x86);
    EXPECT_EQ(icmp[13], 0xdd);
    EXPECT_EQ(icmp[testing::kEthHdrLen] >> 4, 6);
    EXPECT_EQ(icmp[testing::kEthHdrLen + 6], testing::kIpProtoIcmpv6);
    EXPECT_EQ(icmp[testing::kEthHdrLen + testing::kIpv6HdrLen], 128);  // echo request
    EXPECT_EQ(checksum_errors(icmp), "");

    auto udp = PacketBuilder().ipv6(ip6("fd00::1"), ip6("fd00::2")).udp(1, 2).payload("x").build();
    EXPECT_EQ(checksum_errors(udp), "");
    udp.back() ^= 1;
    EXPECT_EQ(checksum_errors(udp), "bad UDP checksum");
}

TEST(PacketBuilderExtensions, BuilderArpMatchesArpFrame) {
    const auto sha = mac("02:42:0a:00:00:02");
    const auto built = PacketBuilder()
                           .eth(sha, kBroadcastMac)
                           .arp(kArpRequest, sha, ip("10.0.0.2"), MacAddr{}, ip("10.0.0.1"))
                           .build();
    EXPECT_EQ(built, arp_request(sha, ip("10.0.0.2"), ip("10.0.0.1")));
    EXPECT_EQ(built.size(), testing::kEthMinFrame);
}

class EndpointProg : public ::testing::Test {
  protected:
    // Opens the skeleton with no pinning, sets the knob, loads, and fills the fixture.
    void load(bool emit_drop_events = true) {
        const Status opened = skel_.open();
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        struct bpf_map* map = nullptr;
        bpf_object__for_each_map(map, skel_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
        }
        skel_->rodata->emit_drop_events = emit_drop_events ? 1 : 0;
        const Status loaded = skel_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        bpf_object__for_each_map(map, skel_->obj) {
            EXPECT_FALSE(bpf_map__is_pinned(map)) << bpf_map__name(map);
        }
        prog_fd_ = bpf_program__fd(skel_->progs.bpfnet_from_ep);
        ASSERT_GE(prog_fd_, 0);

        add_network(kNet1, "10.212.1.0", 24, kGw1, kGw1Mac, BPFNET_NET_ICC);
        add_network(kNet2, "10.212.2.0", 24, kGw2, kGw2Mac, BPFNET_NET_ICC);
        for (const auto& ep : {kA, kB, kC}) add_endpoint(ep);
    }

    // The maps are filled through the agent's own typed maps (userspace/maps/).
    NetworkMaps networks() const {
        return NetworkMaps(bpf_map__fd(skel_->maps.bpfnet_net),
                           bpf_map__fd(skel_->maps.bpfnet_subnets));
    }

    void add_network(uint32_t key, const char* subnet, uint32_t prefix_len, const char* gateway,
                     const char* gateway_mac, uint32_t flags) {
        const Status put = networks().put(NetworkEntry{
            .id = key,
            .subnet = Cidr{ip(subnet), static_cast<uint8_t>(prefix_len)},
            .gateway = ip(gateway),
            .flags = flags,
            .gateway_mac = mac(gateway_mac),
        });
        ASSERT_TRUE(put.ok()) << put.error().message;
    }

    void set_network_flags(uint32_t key, uint32_t flags) {
        NetworkMaps maps = networks();
        auto info = maps.get(key);
        ASSERT_TRUE(info.has_value());
        info->flags = flags;
        const Status put = maps.net().put(key, *info, BPF_EXIST);
        ASSERT_TRUE(put.ok()) << put.error().message;
    }

    void add_endpoint(const TestEndpoint& ep) {
        EndpointMaps maps(bpf_map__fd(skel_->maps.bpfnet_ep_by_if),
                          bpf_map__fd(skel_->maps.bpfnet_ep_by_ip),
                          bpf_map__fd(skel_->maps.bpfnet_ep_stats));
        const Status put = maps.put(EndpointEntry{
            .ifindex = ep.ifindex, .network = ep.network, .ip = ip(ep.ip), .mac = mac(ep.mac)});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }

    // One BPF_PROG_TEST_RUN on `in`, with the skb on lo (ctx.ifindex 1).
    RunOutput run(const std::vector<uint8_t>& in) const {
        RunOutput out;
        out.data.resize(in.size() + 256);
        struct __sk_buff ctx {};
        ctx.ifindex = kLoIfindex;
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        opts.data_in = in.data();
        opts.data_size_in = static_cast<__u32>(in.size());
        opts.data_out = out.data.data();
        opts.data_size_out = static_cast<__u32>(out.data.size());
        opts.ctx_in = &ctx;
        opts.ctx_size_in = sizeof(ctx);
        out.err = bpf_prog_test_run_opts(prog_fd_, &opts);
        out.retval = opts.retval;
        out.data.resize(out.err == 0 ? opts.data_size_out : 0);
        return out;
    }

    // Per-CPU maps: the sum over all possible CPUs.
    bpfnet_ep_stats ep_stats(uint32_t ifindex, bool* exists = nullptr) const {
        std::vector<bpfnet_ep_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        bpfnet_ep_stats sum{};
        const int err =
            bpf_map_lookup_elem(bpf_map__fd(skel_->maps.bpfnet_ep_stats), &ifindex, per_cpu.data());
        if (exists) *exists = err == 0;
        if (err != 0) return sum;
        for (const auto& s : per_cpu) {
            sum.from_packets += s.from_packets;
            sum.from_bytes += s.from_bytes;
            sum.to_packets += s.to_packets;
            sum.to_bytes += s.to_bytes;
        }
        return sum;
    }

    bpfnet_drop_stats drops(uint32_t reason) const {
        std::vector<bpfnet_drop_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        bpfnet_drop_stats sum{};
        EXPECT_EQ(
            bpf_map_lookup_elem(bpf_map__fd(skel_->maps.bpfnet_drops), &reason, per_cpu.data()), 0);
        for (const auto& s : per_cpu) {
            sum.packets += s.packets;
            sum.bytes += s.bytes;
        }
        return sum;
    }

    uint64_t total_drops() const {
        uint64_t n = 0;
        for (uint32_t r = 0; r < BPFNET_DROP_REASON_MAX; ++r) n += drops(r).packets;
        return n;
    }

    // Everything on the ring buffer so far.
    std::vector<bpfnet_event> events() const {
        std::vector<bpfnet_event> out;
        auto on_event = [](void* ctx, void* data, size_t size) -> int {
            auto* events = static_cast<std::vector<bpfnet_event>*>(ctx);
            EXPECT_EQ(size, sizeof(bpfnet_event));
            bpfnet_event ev{};
            std::memcpy(&ev, data, std::min(size, sizeof(ev)));
            events->push_back(ev);
            return 0;
        };
        struct ring_buffer* rb =
            ring_buffer__new(bpf_map__fd(skel_->maps.bpfnet_events), on_event, &out, nullptr);
        EXPECT_NE(rb, nullptr);
        if (rb) {
            EXPECT_GE(ring_buffer__consume(rb), 0);
            ring_buffer__free(rb);
        }
        return out;
    }

    // The run dropped the packet for `reason` and nothing else was ever dropped.
    void expect_dropped(const RunOutput& out, uint32_t reason, const std::vector<uint8_t>& in) {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        EXPECT_EQ(out.data, in);  // drops never rewrite
        EXPECT_EQ(drops(reason).packets, 1u) << "reason " << reason;
        EXPECT_EQ(drops(reason).bytes, in.size());
        EXPECT_EQ(total_drops(), 1u);
    }

    // The run handed the packet unchanged to the stack (the bridge).
    void expect_passed(const RunOutput& out, const std::vector<uint8_t>& in) {
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
        EXPECT_EQ(out.data, in);
        EXPECT_EQ(total_drops(), 0u);
        EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);
        EXPECT_EQ(ep_stats(kC.ifindex).to_packets, 0u);
    }

    BpfSkeleton<endpoint> skel_;
    int prog_fd_ = -1;
};

// A's UDP packet to `dst_ip`, addressed to `dst_mac`.
std::vector<uint8_t> udp_from_a(const char* dst_ip, const MacAddr& dst_mac,
                                const char* src_ip = kA.ip, const char* src_mac = kA.mac) {
    return PacketBuilder()
        .eth(mac(src_mac), dst_mac)
        .ipv4(ip(src_ip), ip(dst_ip))
        .udp(40000, 5353)
        .payload("endpoint test")
        .build();
}

// ---- forwarding ----

TEST_F(EndpointProg, ForwardsToSameNetworkEndpointUnchanged) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a(kB.ip, mac(kB.mac));

    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, in);

    const auto to_b = ep_stats(kB.ifindex);
    EXPECT_EQ(to_b.to_packets, 1u);  // the redirect went to B's veth
    EXPECT_EQ(to_b.to_bytes, in.size());
    EXPECT_EQ(to_b.from_packets, 0u);
    const auto from_a = ep_stats(kA.ifindex);
    EXPECT_EQ(from_a.from_packets, 1u);
    EXPECT_EQ(from_a.from_bytes, in.size());
    EXPECT_EQ(from_a.to_packets, 0u);
    bool c_exists = true;
    ep_stats(kC.ifindex, &c_exists);
    EXPECT_FALSE(c_exists);
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(EndpointProg, ForwardsTcpAndIcmpToo) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto tcp = PacketBuilder()
                         .eth(mac(kA.mac), mac(kB.mac))
                         .ipv4(ip(kA.ip), ip(kB.ip))
                         .tcp(41000, 80)
                         .build();
    const auto icmp = PacketBuilder()
                          .eth(mac(kA.mac), mac(kB.mac))
                          .ipv4(ip(kA.ip), ip(kB.ip))
                          .icmp_echo(7, 1)
                          .payload("ping")
                          .build();
    for (const auto& in : {tcp, icmp}) {
        const RunOutput out = run(in);
        ASSERT_EQ(out.err, 0);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
        EXPECT_EQ(out.data, in);
    }
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 2u);
    EXPECT_EQ(ep_stats(kB.ifindex).to_bytes, tcp.size() + icmp.size());
}

TEST_F(EndpointProg, FixesUpAStaleDestinationMac) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // A still has the MAC of whoever held B's address before.
    const auto in = udp_from_a(kB.ip, mac("02:42:0a:d4:01:99"));

    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    auto expected = in;
    const auto b_mac = mac_bytes(kB.mac);
    std::copy(b_mac.begin(), b_mac.end(), expected.begin());  // only the destination MAC differs
    EXPECT_EQ(out.data, expected);
    EXPECT_EQ(checksum_errors(out.data), "");
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 1u);
}

TEST_F(EndpointProg, ForwardsPacketsWithIpOptions) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // Router Alert (4 bytes) and a Record Route with room for two addresses (11 -> padded to 12):
    // IHL 9.
    const auto in = PacketBuilder()
                        .eth(mac(kA.mac), mac(kB.mac))
                        .ipv4(ip(kA.ip), ip(kB.ip))
                        .ip_options({0x94, 0x04, 0x00, 0x00, 0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0})
                        .udp(40000, 53)
                        .payload("opts")
                        .build();
    ASSERT_EQ(in[testing::kEthHdrLen] & 0x0f, 9);
    ASSERT_EQ(checksum_errors(in), "");

    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, in);
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 1u);
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(EndpointProg, GatewayAddressGoesToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a(kGw1, mac(kGw1Mac));
    expect_passed(run(in), in);
}

TEST_F(EndpointProg, UnusedAddressInTheSubnetGoesToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a("10.212.1.77", mac(kGw1Mac));
    expect_passed(run(in), in);
}

TEST_F(EndpointProg, OutsideAddressGoesToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a("192.0.2.10", mac(kGw1Mac));
    expect_passed(run(in), in);
    EXPECT_EQ(ep_stats(kA.ifindex).from_packets, 1u);
}

TEST_F(EndpointProg, BroadcastAndMulticastGoToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto broadcast = udp_from_a("10.212.1.255", kBroadcastMac);
    expect_passed(run(broadcast), broadcast);
    // Even with an endpoint's address and icc off: a group MAC means the bridge floods it.
    set_network_flags(kNet1, 0);
    const auto to_b = udp_from_a(kB.ip, kBroadcastMac);
    expect_passed(run(to_b), to_b);
    const auto mdns = udp_from_a("224.0.0.251", mac("01:00:5e:00:00:fb"));
    expect_passed(run(mdns), mdns);
}

TEST_F(EndpointProg, Ipv6GoesToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = PacketBuilder()
                        .eth(mac(kA.mac), mac(kB.mac))
                        .ipv6(ip6("fd00:d4::2"), ip6("fd00:d4::3"))
                        .icmp_echo(1, 1)
                        .payload("v6")
                        .build();
    ASSERT_EQ(checksum_errors(in), "");
    expect_passed(run(in), in);
    EXPECT_EQ(ep_stats(kA.ifindex).from_packets, 1u);
}

TEST_F(EndpointProg, MissingNetworkEntryPassesToTheBridge) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const uint32_t key = kNet1;
    ASSERT_EQ(bpf_map__delete_elem(skel_->maps.bpfnet_net, &key, sizeof(key), 0), 0);
    const auto in = udp_from_a(kB.ip, mac(kB.mac));
    expect_passed(run(in), in);
    const auto arp = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    expect_passed(run(arp), arp);
}

// ---- ARP ----

TEST_F(EndpointProg, AnswersArpForTheGateway) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));

    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));  // back into A's sandbox
    // The gateway's reply to A, from the gateway's MAC, padding kept: 60 bytes.
    EXPECT_EQ(out.data, arp_reply(mac(kGw1Mac), ip(kGw1), mac(kA.mac), ip(kA.ip)));
    EXPECT_EQ(total_drops(), 0u);
    EXPECT_EQ(ep_stats(kA.ifindex).from_packets, 1u);
    EXPECT_EQ(ep_stats(kA.ifindex).to_packets, 0u);  // replies are not endpoint-to-endpoint
}

TEST_F(EndpointProg, AnswersArpForALocalEndpoint) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = arp_request(mac(kA.mac), ip(kA.ip), ip(kB.ip));

    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, arp_reply(mac(kB.mac), ip(kB.ip), mac(kA.mac), ip(kA.ip)));
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);  // B never sees the request
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(EndpointProg, AnswersAUnicastArpRefresh) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // Linux re-validates a stale neighbour with a unicast request that already names the MAC.
    const auto in =
        arp_frame(kArpRequest, mac(kA.mac), ip(kA.ip), mac(kB.mac), ip(kB.ip), mac(kB.mac));
    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, arp_reply(mac(kB.mac), ip(kB.ip), mac(kA.mac), ip(kA.ip)));
}

TEST_F(EndpointProg, AnswersAnAddressProbeForATakenAddress) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // RFC 5227 probe: sender address 0.0.0.0. B holds the address, so A is told.
    const auto in = arp_request(mac(kA.mac), ip("0.0.0.0"), ip(kB.ip));
    const RunOutput out = run(in);
    ASSERT_EQ(out.err, 0);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, arp_reply(mac(kB.mac), ip(kB.ip), mac(kA.mac), ip("0.0.0.0")));
}

TEST_F(EndpointProg, OtherArpGoesToTheBridgeUnchanged) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const std::vector<std::vector<uint8_t>> frames = {
        // An address nobody holds, and an endpoint of the other network.
        arp_request(mac(kA.mac), ip(kA.ip), ip("10.212.1.77")),
        arp_request(mac(kA.mac), ip(kA.ip), ip(kC.ip)),
        // A reply (to the bridge's own request), and gratuitous ARP in both forms.
        arp_reply(mac(kA.mac), ip(kA.ip), mac(kGw1Mac), ip(kGw1)),
        arp_request(mac(kA.mac), ip(kA.ip), ip(kA.ip)),
        arp_frame(kArpReply, mac(kA.mac), ip(kA.ip), kBroadcastMac, ip(kA.ip), kBroadcastMac),
        // A probe for A's own address: answering would make A think it is taken.
        arp_request(mac(kA.mac), ip("0.0.0.0"), ip(kA.ip)),
    };
    for (size_t i = 0; i < frames.size(); ++i) {
        SCOPED_TRACE("frame " + std::to_string(i));
        expect_passed(run(frames[i]), frames[i]);
    }
    EXPECT_EQ(ep_stats(kA.ifindex).from_packets, frames.size());
}

// ---- isolation ----

TEST_F(EndpointProg, DropsTrafficToAnotherNetwork) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a(kC.ip, mac(kGw1Mac));
    expect_dropped(run(in), BPFNET_DROP_CROSS_NETWORK, in);
    EXPECT_EQ(ep_stats(kC.ifindex).to_packets, 0u);
    // The other network's gateway is in its subnet too.
    const auto gw2 = udp_from_a(kGw2, mac(kGw1Mac));
    EXPECT_EQ(run(gw2).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_CROSS_NETWORK).packets, 2u);
}

TEST_F(EndpointProg, DropsEndpointToEndpointWhenIccIsOff) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    set_network_flags(kNet1, 0);
    const auto in = udp_from_a(kB.ip, mac(kB.mac));
    expect_dropped(run(in), BPFNET_DROP_ICC_DISABLED, in);
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);
    // The gateway and the outside stay reachable.
    const auto gw = udp_from_a(kGw1, mac(kGw1Mac));
    EXPECT_EQ(run(gw).retval, static_cast<uint32_t>(TC_ACT_OK));
    const auto outside = udp_from_a("192.0.2.10", mac(kGw1Mac));
    EXPECT_EQ(run(outside).retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(total_drops(), 1u);
}

TEST_F(EndpointProg, InternalNetworkDropsTrafficLeavingTheSubnet) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    set_network_flags(kNet1, BPFNET_NET_ICC | BPFNET_NET_INTERNAL);
    const auto in = udp_from_a("192.0.2.10", mac(kGw1Mac));
    expect_dropped(run(in), BPFNET_DROP_INTERNAL, in);
    // Inside the subnet nothing changes.
    const auto to_b = udp_from_a(kB.ip, mac(kB.mac));
    EXPECT_EQ(run(to_b).retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    const auto gw = udp_from_a(kGw1, mac(kGw1Mac));
    EXPECT_EQ(run(gw).retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(total_drops(), 1u);
}

// ---- anti-spoofing ----

TEST_F(EndpointProg, DropsSpoofedSourceMacForEveryFrameType) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const char* fake = "02:42:0a:d4:01:66";
    const auto ipv4 = udp_from_a(kB.ip, mac(kB.mac), kA.ip, fake);
    expect_dropped(run(ipv4), BPFNET_DROP_SPOOFED_MAC, ipv4);

    const auto arp = arp_request(mac(fake), ip(kA.ip), ip(kGw1));
    const auto ipv6 = PacketBuilder()
                          .eth(mac(fake), mac(kB.mac))
                          .ipv6(ip6("fd00:d4::2"), ip6("fd00:d4::3"))
                          .udp(1, 2)
                          .build();
    const auto tagged = PacketBuilder()
                            .eth(mac(fake), mac(kB.mac))
                            .vlan(5)
                            .ipv4(ip(kA.ip), ip(kB.ip))
                            .udp(1, 2)
                            .build();
    for (const auto& in : {arp, ipv6, tagged}) {
        const RunOutput out = run(in);
        ASSERT_EQ(out.err, 0);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        EXPECT_EQ(out.data, in);
    }
    EXPECT_EQ(drops(BPFNET_DROP_SPOOFED_MAC).packets, 4u);
    EXPECT_EQ(total_drops(), 4u);
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);
}

TEST_F(EndpointProg, DropsSpoofedSourceIp) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // B's address from A's veth: exactly what an address thief would do.
    const auto in = udp_from_a(kC.ip, mac(kGw1Mac), kB.ip);
    expect_dropped(run(in), BPFNET_DROP_SPOOFED_IP, in);
    const auto zero = udp_from_a(kB.ip, mac(kB.mac), "0.0.0.0");
    EXPECT_EQ(run(zero).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_SPOOFED_IP).packets, 2u);
}

TEST_F(EndpointProg, DropsSpoofedArpSender) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // Right Ethernet source, someone else's sender hardware address.
    const auto bad_sha =
        arp_frame(kArpRequest, mac(kB.mac), ip(kA.ip), MacAddr{}, ip(kGw1), kBroadcastMac);
    auto in = bad_sha;
    const auto a_mac = mac_bytes(kA.mac);
    std::copy(a_mac.begin(), a_mac.end(), in.begin() + 6);
    expect_dropped(run(in), BPFNET_DROP_SPOOFED_MAC, in);

    // Sender protocol address of B: ARP cache poisoning of the gateway or of B's peers.
    const auto bad_spa = arp_request(mac(kA.mac), ip(kB.ip), ip(kGw1));
    const auto poison = arp_reply(mac(kA.mac), ip(kGw1), mac(kB.mac), ip(kB.ip));
    for (const auto& frame : {bad_spa, poison}) {
        const RunOutput out = run(frame);
        ASSERT_EQ(out.err, 0);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        EXPECT_EQ(out.data, frame);
    }
    EXPECT_EQ(drops(BPFNET_DROP_SPOOFED_IP).packets, 2u);
    EXPECT_EQ(total_drops(), 3u);
}

TEST_F(EndpointProg, DropsVlanTaggedFrames) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto dot1q = PacketBuilder()
                           .eth(mac(kA.mac), mac(kB.mac))
                           .vlan(5)
                           .ipv4(ip(kA.ip), ip(kB.ip))
                           .udp(1, 2)
                           .build();
    ASSERT_EQ(checksum_errors(dot1q), "");
    expect_dropped(run(dot1q), BPFNET_DROP_VLAN_TAGGED, dot1q);

    const auto qinq = PacketBuilder()
                          .eth(mac(kA.mac), mac(kB.mac))
                          .vlan(100, testing::kEthP8021AD)
                          .vlan(5)
                          .ipv4(ip(kA.ip), ip(kB.ip))
                          .udp(1, 2)
                          .build();
    EXPECT_EQ(run(qinq).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    const auto tagged_arp = PacketBuilder()
                                .eth(mac(kA.mac), kBroadcastMac)
                                .vlan(5)
                                .arp(kArpRequest, mac(kA.mac), ip(kA.ip), MacAddr{}, ip(kGw1))
                                .build();
    EXPECT_EQ(run(tagged_arp).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_VLAN_TAGGED).packets, 3u);
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);
}

TEST_F(EndpointProg, DropsPacketsFromUnknownEndpoints) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const uint32_t key = kA.ifindex;
    ASSERT_EQ(bpf_map__delete_elem(skel_->maps.bpfnet_ep_by_if, &key, sizeof(key), 0), 0);
    const auto in = udp_from_a(kB.ip, mac(kB.mac));
    expect_dropped(run(in), BPFNET_DROP_UNKNOWN_ENDPOINT, in);
    bool exists = true;
    ep_stats(kA.ifindex, &exists);
    EXPECT_FALSE(exists);  // no counters for veths that are not endpoints
}

// ---- malformed ----

// BPF_PROG_TEST_RUN refuses input the kernel itself could not have received: shorter than an
// Ethernet header, and (6.x) IPv4/IPv6 EtherTypes with less than the fixed IP header behind them.
// A veth never delivers a frame under 14 bytes either (dev_validate_header() enforces the device's
// min_header_len, even for CAP_SYS_RAWIO), so the program's Ethernet length check is defensive.
// A truncated fixed IPv4 header can come from a packet socket, though: endpoint_attach_test.cpp
// sends one over a real veth. Where this kernel accepts such input, the tests below expect the
// program to drop it as MALFORMED instead.
bool kernel_refused(const RunOutput& out) {
    return out.err == -EINVAL;
}

TEST_F(EndpointProg, TruncatedEthernetNeverReachesTheProgram) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const std::vector<uint8_t> short_frame(13, 0x02);
    EXPECT_TRUE(kernel_refused(run(short_frame)));

    // A bare 14-byte header whose EtherType promises more: ARP, and IPv4 where the kernel lets it.
    auto bare_arp = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    bare_arp.resize(testing::kEthHdrLen);
    expect_dropped(run(bare_arp), BPFNET_DROP_MALFORMED, bare_arp);
    uint64_t malformed = 1;
    auto bare_ipv4 = udp_from_a(kB.ip, mac(kB.mac));
    bare_ipv4.resize(testing::kEthHdrLen);
    const RunOutput out = run(bare_ipv4);
    if (!kernel_refused(out)) {
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        ++malformed;
    }
    EXPECT_EQ(drops(BPFNET_DROP_MALFORMED).packets, malformed);
    EXPECT_EQ(ep_stats(kA.ifindex).from_packets, malformed);  // counted before the checks
}

TEST_F(EndpointProg, DropsTruncatedOrBadIpv4Headers) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto good = udp_from_a(kB.ip, mac(kB.mac));
    const size_t ip_off = testing::kEthHdrLen;

    // IHL 15 promises 60 header bytes; the frame stops after 20 + 2.
    auto missing_options = good;
    missing_options[ip_off] = 0x4f;
    missing_options.resize(ip_off + testing::kIpv4HdrLen + 2);
    expect_dropped(run(missing_options), BPFNET_DROP_MALFORMED, missing_options);

    auto small_ihl = good;
    small_ihl[ip_off] = 0x44;
    auto bad_version = good;
    bad_version[ip_off] = 0x65;
    for (const auto& in : {small_ihl, bad_version}) {
        const RunOutput out = run(in);
        ASSERT_EQ(out.err, 0);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
    }
    uint64_t malformed = 3;
    // One byte short of the fixed header (see kernel_refused()).
    auto truncated = good;
    truncated.resize(ip_off + testing::kIpv4HdrLen - 1);
    const RunOutput out = run(truncated);
    if (!kernel_refused(out)) {
        EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
        ++malformed;
    }
    EXPECT_EQ(drops(BPFNET_DROP_MALFORMED).packets, malformed);
    EXPECT_EQ(total_drops(), malformed);
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 0u);
}

TEST_F(EndpointProg, DropsTruncatedOrNonIpv4Arp) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    auto truncated = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    truncated.resize(testing::kEthHdrLen + testing::kArpLen - 1);
    expect_dropped(run(truncated), BPFNET_DROP_MALFORMED, truncated);

    // Same bytes but hardware type 6 (IEEE 802), then protocol length 16.
    auto htype = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    htype[testing::kEthHdrLen + 1] = 6;
    auto plen = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    plen[testing::kEthHdrLen + 5] = 16;
    for (const auto& in : {htype, plen})
        EXPECT_EQ(run(in).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_MALFORMED).packets, 3u);
}

// ---- drop events ----

TEST_F(EndpointProg, DropEmitsAnEventWithAddressesAndPorts) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_from_a(kC.ip, mac(kGw1Mac));
    ASSERT_EQ(run(in).retval, static_cast<uint32_t>(TC_ACT_SHOT));

    const auto evs = events();
    ASSERT_EQ(evs.size(), 1u);
    const bpfnet_event& ev = evs[0];
    EXPECT_NE(ev.timestamp_ns, 0u);
    EXPECT_EQ(ev.type, static_cast<uint32_t>(BPFNET_EVENT_DROP));
    EXPECT_EQ(ev.reason, static_cast<uint32_t>(BPFNET_DROP_CROSS_NETWORK));
    EXPECT_EQ(ev.ifindex, kA.ifindex);
    EXPECT_EQ(ev.len, in.size());
    EXPECT_EQ(ev.saddr, be(kA.ip));
    EXPECT_EQ(ev.daddr, be(kC.ip));
    EXPECT_EQ(ev.sport, htons(40000));
    EXPECT_EQ(ev.dport, htons(5353));
    EXPECT_EQ(ev.eth_proto, htons(testing::kEthPIpv4));
    EXPECT_EQ(ev.protocol, testing::kIpProtoUdp);
    EXPECT_EQ(std::vector<uint8_t>(ev.smac, ev.smac + 6), mac_bytes(kA.mac));
    EXPECT_EQ(std::vector<uint8_t>(ev.dmac, ev.dmac + 6), mac_bytes(kGw1Mac));
    EXPECT_EQ(ev.pad, 0);
    EXPECT_EQ(std::vector<uint8_t>(ev.pad2, ev.pad2 + 4), std::vector<uint8_t>(4, 0));
    EXPECT_TRUE(events().empty());  // consumed
}

TEST_F(EndpointProg, DropEventsDescribeArpIcmpAndUnknownSenders) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    // ARP: the protocol addresses stand in for IPv4 addresses; no ports, no protocol.
    const auto arp = arp_request(mac(kA.mac), ip(kB.ip), ip(kGw1));
    ASSERT_EQ(run(arp).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    // ICMP: addresses and protocol, no ports.
    set_network_flags(kNet1, 0);
    const auto icmp = PacketBuilder()
                          .eth(mac(kA.mac), mac(kB.mac))
                          .ipv4(ip(kA.ip), ip(kB.ip))
                          .icmp_echo(9, 1)
                          .build();
    ASSERT_EQ(run(icmp).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    // Unknown endpoint: only what the Ethernet header says.
    const uint32_t key = kA.ifindex;
    ASSERT_EQ(bpf_map__delete_elem(skel_->maps.bpfnet_ep_by_if, &key, sizeof(key), 0), 0);
    const auto unknown = udp_from_a(kB.ip, mac(kB.mac));
    ASSERT_EQ(run(unknown).retval, static_cast<uint32_t>(TC_ACT_SHOT));

    const auto evs = events();
    ASSERT_EQ(evs.size(), 3u);
    EXPECT_EQ(evs[0].reason, static_cast<uint32_t>(BPFNET_DROP_SPOOFED_IP));
    EXPECT_EQ(evs[0].eth_proto, htons(testing::kEthPArp));
    EXPECT_EQ(evs[0].saddr, be(kB.ip));
    EXPECT_EQ(evs[0].daddr, be(kGw1));
    EXPECT_EQ(evs[0].protocol, 0);
    EXPECT_EQ(evs[0].sport, 0);
    EXPECT_EQ(std::vector<uint8_t>(evs[0].dmac, evs[0].dmac + 6), std::vector<uint8_t>(6, 0xff));

    EXPECT_EQ(evs[1].reason, static_cast<uint32_t>(BPFNET_DROP_ICC_DISABLED));
    EXPECT_EQ(evs[1].protocol, testing::kIpProtoIcmp);
    EXPECT_EQ(evs[1].daddr, be(kB.ip));
    EXPECT_EQ(evs[1].sport, 0);
    EXPECT_EQ(evs[1].dport, 0);

    EXPECT_EQ(evs[2].reason, static_cast<uint32_t>(BPFNET_DROP_UNKNOWN_ENDPOINT));
    EXPECT_EQ(evs[2].eth_proto, htons(testing::kEthPIpv4));
    EXPECT_EQ(std::vector<uint8_t>(evs[2].smac, evs[2].smac + 6), mac_bytes(kA.mac));
    EXPECT_EQ(evs[2].saddr, 0u);  // not parsed: the program stops at the unknown sender
}

TEST_F(EndpointProg, DropEventsCanBeTurnedOff) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load(/*emit_drop_events=*/false));
    const auto in = udp_from_a(kC.ip, mac(kGw1Mac));
    expect_dropped(run(in), BPFNET_DROP_CROSS_NETWORK, in);  // still counted
    EXPECT_TRUE(events().empty());
}

// `bpfnet monitor --type trace` turns tracing on through bpfnet_mon_cfg: then every packet the
// program lets through is reported with its verdict and flow; off (the default), none is.
TEST_F(EndpointProg, TracesPassedPacketsOnlyWhileAMonitorAsks) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto fwd = udp_from_a(kB.ip, mac(kB.mac));
    const auto out = udp_from_a("192.0.2.10", mac(kGw1Mac));
    ASSERT_EQ(run(fwd).err, 0);
    EXPECT_TRUE(events().empty());

    const uint32_t key = 0;
    bpfnet_monitor_cfg cfg{1, 0};
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.bpfnet_mon_cfg, &key, sizeof(key), &cfg, sizeof(cfg),
                                   BPF_ANY),
              0);
    const RunOutput forwarded = run(fwd);
    const RunOutput passed = run(out);
    const auto evs = events();
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].type, static_cast<uint32_t>(BPFNET_EVENT_TRACE));
    EXPECT_EQ(evs[0].reason, forwarded.retval);
    EXPECT_EQ(evs[0].reason, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(evs[0].ifindex, kA.ifindex);
    EXPECT_EQ(evs[0].saddr, be(kA.ip));
    EXPECT_EQ(evs[0].daddr, be(kB.ip));
    EXPECT_EQ(evs[0].protocol, IPPROTO_UDP);
    EXPECT_EQ(ntohs(evs[0].sport), 40000);
    EXPECT_EQ(ntohs(evs[0].dport), 5353);
    EXPECT_EQ(evs[0].len, fwd.size());
    EXPECT_EQ(evs[1].type, static_cast<uint32_t>(BPFNET_EVENT_TRACE));
    EXPECT_EQ(evs[1].reason, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(passed.retval, static_cast<uint32_t>(TC_ACT_OK));
    // Tracing never changes what the program does to the packet.
    EXPECT_EQ(passed.data, out);
    EXPECT_EQ(total_drops(), 0u);
    // A drop while tracing is reported once, as a drop.
    const auto drop = udp_from_a(kC.ip, mac(kGw1Mac));
    ASSERT_EQ(run(drop).retval, static_cast<uint32_t>(TC_ACT_SHOT));
    const auto after = events();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].type, static_cast<uint32_t>(BPFNET_EVENT_DROP));
}

// Hostile input: thousands of mutated and random frames (truncated headers, bad IHL and lengths,
// odd EtherTypes, noise) from an endpoint. Every run ends with a verdict the program may give (to
// the stack, dropped, redirected), never an error, and the maps only the agent writes are exactly
// as they were.
TEST_F(EndpointProg, FuzzedFramesGetOnlyAllowedVerdictsAndLeaveTheConfigAlone) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const std::vector<std::vector<uint8_t>> seeds = {
        udp_from_a(kB.ip, mac(kB.mac)),
        udp_from_a("192.0.2.10", mac(kGw1Mac)),
        udp_from_a(kC.ip, mac(kGw1Mac)),
        arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1)),
        PacketBuilder()
            .eth(mac(kA.mac), mac(kB.mac))
            .ipv4(ip(kA.ip), ip(kB.ip))
            .tcp(1, 2, 0x02)
            .build(),
        PacketBuilder()
            .eth(mac(kA.mac), mac(kB.mac))
            .ipv4(ip(kA.ip), ip(kB.ip))
            .icmp_echo(1, 1)
            .build(),
    };
    auto config = [&] {
        return std::tuple{
            testing::map_contents(bpf_map__fd(skel_->maps.bpfnet_net), 4, sizeof(bpfnet_net_info)),
            testing::map_contents(bpf_map__fd(skel_->maps.bpfnet_ep_by_if), 4,
                                  sizeof(bpfnet_endpoint)),
            testing::map_contents(bpf_map__fd(skel_->maps.bpfnet_ep_by_ip), sizeof(bpfnet_ep_key),
                                  sizeof(bpfnet_ep_dest))};
    };
    const auto before = config();
    size_t verdicts[3] = {};
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0xb9f)) {
        const RunOutput out = run(frame);
        if (testing::test_run_refuses(frame)) {
            EXPECT_TRUE(out.err == 0 || out.err == -EINVAL) << out.err;
            continue;
        }
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err) << " for a frame of " << frame.size()
                              << " bytes, EtherType " << std::hex << (frame[12] << 8 | frame[13]);
        ASSERT_TRUE(out.retval == TC_ACT_OK || out.retval == TC_ACT_SHOT ||
                    out.retval == TC_ACT_REDIRECT)
            << "verdict " << out.retval << " for a frame of " << frame.size() << " bytes";
        ++verdicts[out.retval == TC_ACT_OK ? 0 : out.retval == TC_ACT_SHOT ? 1 : 2];
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    // The corpus reaches every verdict, so the run exercised more than the parser's first check.
    EXPECT_GT(verdicts[0], 0u);
    EXPECT_GT(verdicts[1], 0u);
    EXPECT_GT(verdicts[2], 0u);
}

TEST_F(EndpointProg, CountsEverythingTheEndpointSends) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto fwd = udp_from_a(kB.ip, mac(kB.mac));
    const auto out = udp_from_a("192.0.2.10", mac(kGw1Mac));
    const auto drop = udp_from_a(kC.ip, mac(kGw1Mac));
    const auto arp = arp_request(mac(kA.mac), ip(kA.ip), ip(kGw1));
    for (const auto* in : {&fwd, &out, &drop, &arp, &fwd}) ASSERT_EQ(run(*in).err, 0);
    const auto a = ep_stats(kA.ifindex);
    EXPECT_EQ(a.from_packets, 5u);
    EXPECT_EQ(a.from_bytes, 2 * fwd.size() + out.size() + drop.size() + arp.size());
    EXPECT_EQ(ep_stats(kB.ifindex).to_packets, 2u);
}

// Not a behaviour test: records how big the verified program is, for the docs and for noticing
// when a change makes it balloon.
TEST_F(EndpointProg, ReportsVerifierInstructionCount) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(prog_fd_, &info, &len), 0);
    const uint32_t xlated = info.xlated_prog_len / 8;
    std::cout << "bpfnet_from_ep: " << xlated << " instructions after verification, "
              << info.verified_insns << " processed by the verifier\n";
    RecordProperty("xlated_insns", static_cast<int>(xlated));
    RecordProperty("verified_insns", static_cast<int>(info.verified_insns));
    EXPECT_GT(xlated, 0u);
    EXPECT_LT(info.verified_insns, 100000u);  // a tenth of the kernel's 1M complexity limit
}

}  // namespace
}  // namespace bpfnet

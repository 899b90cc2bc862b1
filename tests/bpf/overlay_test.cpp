// The overlay's encapsulation decisions in the endpoint program (lib/encap.h), the overlay
// program's refusals, and the VXLAN frames BPF builds and strips itself (OverlayBpfPath: the
// endpoint program's encapsulation and the underlay program's decapsulation, lib/decap.h, on the
// devices and routes of a namespace of the test's own), through BPF_PROG_TEST_RUN. Test runs cannot
// attach tunnel metadata to a packet nor perform a redirect, so what is checked is the verdict, the
// rewritten frame (the remote endpoint's MAC) and the counters; tunnel keys themselves are
// exercised end to end by tests/e2e/e2e_drv_overlay.sh. The fuzz test reaches the overlay program's
// decapsulation path through overlay_harness.bpf.c, which sets a tunnel key and tail-calls it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "bpf/endpoint.skel.h"
#include "bpf/frame_fuzz.h"
#include "bpf/overlay.skel.h"
#include "bpf/overlay_harness.skel.h"
#include "bpf/packet_builder.h"
#include "bpf/test_netns.h"
#include "bpf/test_run.h"
#include "bpf/uplink.skel.h"
#include "bpfnet/abi.h"
#include "common/privileged.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"
#include "maps/overlay_maps.h"

namespace bpfnet {
namespace {

using testing::arp_reply;
using testing::arp_request;
using testing::ip;
using testing::mac;
using testing::PacketBuilder;
using testing::RunOutput;

constexpr uint32_t kLo = 1;
constexpr uint32_t kNet = 1301;
constexpr uint32_t kVni = 5000;
constexpr uint32_t kLocalVeth = 7301;  // the local endpoint's host veth, as a redirect target only
const char* const kLocal = "10.233.0.2";  // the endpoint sending (its host veth is lo)
const char* const kLocalMac = "02:42:0a:e9:00:02";
const char* const kRemote = "10.233.0.3";  // on another host
const char* const kRemoteMac = "02:42:0a:e9:00:03";
const char* const kBridgeMac = "02:42:0a:e9:00:01";

class OverlayProg : public ::testing::Test {
  protected:
    void SetUp() override {
        BPFNET_REQUIRE_PRIVILEGED();
        ASSERT_TRUE(endpoint_.open().ok());
        bpf_map* map = nullptr;
        bpf_object__for_each_map(map, endpoint_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
        }
        const Status loaded = endpoint_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        ASSERT_TRUE(overlay_.open().ok());
        bpf_object__for_each_map(map, overlay_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
            if (bpf_map* same = bpf_object__find_map_by_name(endpoint_->obj, bpf_map__name(map))) {
                ASSERT_EQ(bpf_map__reuse_fd(map, bpf_map__fd(same)), 0);
            }
        }
        const Status overlay_loaded = overlay_.load();
        ASSERT_TRUE(overlay_loaded.ok()) << overlay_loaded.error().message;

        // Filled through the agent's own typed maps (userspace/maps/). Only the network's
        // bpfnet_net entry: these tests never needed its subnet in bpfnet_subnets.
        const bpfnet_net_info net = NetworkMaps::encode(
            NetworkEntry{.id = kNet,
                         .subnet = *Cidr::parse("10.233.0.0/24"),
                         .gateway = Ipv4{},  // overlays have no gateway on the host
                         .flags = BPFNET_NET_ICC,
                         .gateway_mac = mac(kBridgeMac)});
        const Status put_net = networks().net().put(kNet, net);
        ASSERT_TRUE(put_net.ok()) << put_net.error().message;
        const Status src = endpoints().put_source(EndpointEntry{
            .ifindex = kLo, .network = kNet, .ip = ip(kLocal), .mac = mac(kLocalMac)});
        ASSERT_TRUE(src.ok()) << src.error().message;
        const Status tunnel = overlay_maps().put_tunnel(
            kNet, kVni,
            RemoteEndpoint{.ip = ip(kRemote), .mac = mac(kRemoteMac), .vtep = ip("192.0.2.20")});
        ASSERT_TRUE(tunnel.ok()) << tunnel.error().message;
        set_vxlan_device(kLo);
    }

    NetworkMaps networks() const {
        return NetworkMaps(bpf_map__fd(endpoint_->maps.bpfnet_net),
                           bpf_map__fd(endpoint_->maps.bpfnet_subnets));
    }
    EndpointMaps endpoints() const {
        return EndpointMaps(bpf_map__fd(endpoint_->maps.bpfnet_ep_by_if),
                            bpf_map__fd(endpoint_->maps.bpfnet_ep_by_ip),
                            bpf_map__fd(endpoint_->maps.bpfnet_ep_stats));
    }
    // The agent's wiring: bpfnet_tunnel from the endpoint object, the rest from the overlay's
    // (shared with the endpoint object's where both have them).
    OverlayMaps overlay_maps() const {
        return OverlayMaps(bpf_map__fd(endpoint_->maps.bpfnet_tunnel),
                           bpf_map__fd(overlay_->maps.bpfnet_vni),
                           bpf_map__fd(endpoint_->maps.bpfnet_vx_cfg));
    }

    template <typename K, typename V>
    void update(bpf_map* map, const K& key, const V& value) {
        ASSERT_EQ(bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY), 0)
            << bpf_map__name(map);
    }
    void set_vxlan_device(uint32_t ifindex) {
        const Status put = overlay_maps().set_config(VxlanConfig{
            .vxlan_ifindex = ifindex, .local_vtep = Ipv4{}, .port = 4789, .underlay_ifindex = 0});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    uint64_t drops(uint32_t reason) const {
        std::vector<bpfnet_drop_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        EXPECT_EQ(
            bpf_map_lookup_elem(bpf_map__fd(endpoint_->maps.bpfnet_drops), &reason, per_cpu.data()),
            0);
        uint64_t n = 0;
        for (const auto& s : per_cpu) n += s.packets;
        return n;
    }
    std::vector<uint8_t> udp_to(const char* dst, const char* dst_mac) const {
        return PacketBuilder()
            .eth(mac(kLocalMac), mac(dst_mac))
            .ipv4(ip(kLocal), ip(dst))
            .udp(40000, 53)
            .payload("overlay")
            .build();
    }
    int ep_fd() const { return bpf_program__fd(endpoint_->progs.bpfnet_from_ep); }
    uint64_t delivered_to(uint32_t veth) const {
        std::vector<bpfnet_ep_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        if (bpf_map_lookup_elem(bpf_map__fd(endpoint_->maps.bpfnet_ep_stats), &veth,
                                per_cpu.data()) != 0)
            return 0;
        uint64_t n = 0;
        for (const auto& s : per_cpu) n += s.to_packets;
        return n;
    }

    BpfSkeleton<endpoint> endpoint_;
    BpfSkeleton<overlay> overlay_;
};

TEST_F(OverlayProg, RemoteEndpointGoesToTheTunnelWithItsMac) {
    // The sender's neighbour entry may hold any MAC (here the bridge's): the frame leaves with
    // the remote endpoint's, which is what the other host delivers on.
    const auto out = testing::run_test(ep_fd(), udp_to(kRemote, kBridgeMac));
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, udp_to(kRemote, kRemoteMac));
}

TEST_F(OverlayProg, ArpForARemoteEndpointIsAnsweredLocally) {
    const auto out =
        testing::run_test(ep_fd(), arp_request(mac(kLocalMac), ip(kLocal), ip(kRemote)));
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));  // back into the sandbox
    EXPECT_EQ(out.data, arp_reply(mac(kRemoteMac), ip(kRemote), mac(kLocalMac), ip(kLocal)));
}

TEST_F(OverlayProg, UnknownAddressesAndNoDeviceLeaveItToTheStack) {
    const auto nobody = udp_to("10.233.0.99", kBridgeMac);
    auto out = testing::run_test(ep_fd(), nobody);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(out.data, nobody);
    const auto arp = arp_request(mac(kLocalMac), ip(kLocal), ip("10.233.0.99"));
    out = testing::run_test(ep_fd(), arp);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
    set_vxlan_device(0);  // no overlay device on this host
    const auto remote = udp_to(kRemote, kRemoteMac);
    out = testing::run_test(ep_fd(), remote);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(out.data, remote);
}

TEST_F(OverlayProg, IccOffAppliesAcrossHostsToo) {
    NetworkMaps maps = networks();
    auto net = maps.get(kNet);
    ASSERT_TRUE(net.has_value());
    net->flags = 0;
    ASSERT_TRUE(maps.net().put(kNet, *net).ok());
    const auto out = testing::run_test(ep_fd(), udp_to(kRemote, kRemoteMac));
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_ICC_DISABLED), 1u);
}

TEST_F(OverlayProg, DecapWithoutTunnelMetadataIsDropped) {
    // Only a VXLAN device's ingress has tunnel metadata; anything else is malformed here.
    const auto in = udp_to(kLocal, kLocalMac);
    const auto out = testing::run_test(bpf_program__fd(overlay_->progs.bpfnet_from_vx), in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(drops(BPFNET_DROP_MALFORMED), 1u);
}

// Hostile frames out of the tunnel: mutated and random frames at the overlay program, each with
// the tunnel metadata a VXLAN device would give it (through overlay_harness.bpf.c): mostly the
// network's VNI, sometimes a VNI this host has no network for, sometimes none at all (a direct
// run). The program places a frame or drops it, never hands it to the stack: a frame is
// redirected, with the endpoint's MAC and nothing else changed, exactly when it is IPv4 for the
// local endpoint's address on the network's VNI; every other frame is dropped unchanged. Drops by
// reason match what the frames were, the local endpoint's counter the deliveries, and the agent's
// maps are untouched.
TEST_F(OverlayProg, FuzzedFramesFromTheTunnelAreDeliveredExactlyOrDropped) {
    ASSERT_TRUE(overlay_maps().put_vni(kVni, kNet).ok());
    const Status local = endpoints().put_destination(EndpointEntry{
        .ifindex = kLocalVeth, .network = kNet, .ip = ip(kLocal), .mac = mac(kLocalMac)});
    ASSERT_TRUE(local.ok()) << local.error().message;

    BpfSkeleton<overlay_harness> harness;
    const Status harness_loaded = harness.open_and_load();
    ASSERT_TRUE(harness_loaded.ok()) << harness_loaded.error().message;
    const uint32_t slot = 0;
    const int decap_fd = bpf_program__fd(overlay_->progs.bpfnet_from_vx);
    update(harness->maps.decap_prog, slot, decap_fd);
    harness->bss->tunnel_remote = ip("192.0.2.20").value;
    const int harness_fd = bpf_program__fd(harness->progs.with_tunnel_key);

    auto from_remote = [](const char* dst, const char* dst_mac) {
        return PacketBuilder().eth(mac(kRemoteMac), mac(dst_mac)).ipv4(ip(kRemote), ip(dst));
    };
    const std::vector<std::vector<uint8_t>> seeds = {
        from_remote(kLocal, kLocalMac).udp(53, 40000).payload("overlay").build(),
        // The remote sender's neighbour entry held another MAC: delivered with the right one.
        from_remote(kLocal, kBridgeMac).udp(53, 40000).payload("overlay").build(),
        from_remote(kLocal, kLocalMac).tcp(443, 40000, testing::kTcpSyn | testing::kTcpAck).build(),
        from_remote(kLocal, kLocalMac).icmp_echo(7, 1).build(),
        from_remote("10.233.0.99", kLocalMac).udp(53, 40000).build(),
        arp_request(mac(kRemoteMac), ip(kRemote), ip(kLocal)),
    };
    auto config = [&] {
        return std::tuple{testing::map_contents(bpf_map__fd(overlay_->maps.bpfnet_vni), 4, 4),
                          testing::map_contents(bpf_map__fd(overlay_->maps.bpfnet_ep_by_ip),
                                                sizeof(bpfnet_ep_key), sizeof(bpfnet_ep_dest)),
                          testing::map_contents(bpf_map__fd(endpoint_->maps.bpfnet_net), 4,
                                                sizeof(bpfnet_net_info)),
                          testing::map_contents(bpf_map__fd(endpoint_->maps.bpfnet_tunnel),
                                                sizeof(bpfnet_ep_key), sizeof(bpfnet_tunnel_dest)),
                          testing::map_contents(bpf_map__fd(endpoint_->maps.bpfnet_vx_cfg), 4,
                                                sizeof(bpfnet_vx_cfg))};
    };
    const auto before = config();
    const auto local_mac = mac(kLocalMac).bytes;
    const uint32_t local_be = ip(kLocal).network_order();

    std::mt19937 rng(0x0f5);
    uint64_t runs[3] = {};  // by metadata: the network's VNI, an unknown VNI, none
    uint64_t delivered = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x7e1)) {
        const unsigned pick = rng() % 10;
        const int meta = pick == 0 ? 2 : pick == 1 ? 1 : 0;
        harness->bss->tunnel_vni = meta == 0 ? kVni : kVni + 1;
        const RunOutput out = testing::run_test(meta == 2 ? decap_fd : harness_fd, frame);
        if (out.err != 0) {
            EXPECT_TRUE(testing::test_run_refuses(frame)) << libbpf_error_text(out.err);
            EXPECT_EQ(out.err, -EINVAL) << libbpf_error_text(out.err);
            continue;
        }
        ++runs[meta];
        ASSERT_TRUE(out.retval == TC_ACT_SHOT || out.retval == TC_ACT_REDIRECT)
            << "verdict " << out.retval << " for a frame of " << frame.size() << " bytes";
        uint32_t daddr = 0;
        if (frame.size() >= 34) std::memcpy(&daddr, frame.data() + 30, 4);
        const bool for_local = meta == 0 && frame[12] == 0x08 && frame[13] == 0x00 &&
                               frame.size() >= 34 && daddr == local_be;
        if (!for_local) {
            ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT))
                << "a frame of " << frame.size() << " bytes (metadata " << meta << ") delivered";
            ASSERT_EQ(out.data, frame);
            continue;
        }
        ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT))
            << "a frame of " << frame.size() << " bytes for the local endpoint dropped";
        auto expected = frame;
        std::copy(local_mac.begin(), local_mac.end(), expected.begin());
        ASSERT_EQ(out.data, expected);
        ++delivered;
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    // Each kind of metadata ran, and frames got all the way through.
    EXPECT_GT(runs[0], 0u);
    EXPECT_GT(runs[1], 0u);
    EXPECT_GT(runs[2], 0u);
    EXPECT_GT(delivered, 0u);
    EXPECT_EQ(delivered_to(kLocalVeth), delivered);
    EXPECT_EQ(drops(BPFNET_DROP_UNKNOWN_VNI), runs[1]);
    EXPECT_EQ(drops(BPFNET_DROP_MALFORMED), runs[2]);  // no tunnel key
    for (uint32_t reason = 0; reason < BPFNET_DROP_REASON_MAX; ++reason) {
        if (reason != BPFNET_DROP_UNKNOWN_VNI && reason != BPFNET_DROP_MALFORMED) {
            EXPECT_EQ(drops(reason), 0u) << "drop reason " << reason;
        }
    }
}

// ---- VXLAN in BPF ------------------------------------------------------------------------------

constexpr uint16_t kVxlanPort = 4789;
const char* const kLocalVtep = "192.0.2.1";
const char* const kUnderlayMac = "02:00:00:00:00:bb";  // the test namespace's und0
const char* const kRemoteVtep = "192.0.2.20";          // a neighbour with a MAC
const char* const kRemoteVtepMac = "02:00:00:00:00:cc";
const char* const kUnresolvedVtep = "192.0.2.30";  // on the link, no neighbour entry
constexpr size_t kOuterLen = testing::kEthHdrLen + BPFNET_VXLAN_ENCAP_LEN;

// The test's own model of the outer source port (lib/encap.h): murmur3's finalizer over the
// inner addresses, the first word of the TCP/UDP header as it sits in the packet, and the
// protocol, scaled into the kernel's default ephemeral range.
uint32_t mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}
uint16_t expected_sport(const std::vector<uint8_t>& inner_frame) {
    uint32_t saddr = 0, daddr = 0, ports = 0;
    std::memcpy(&saddr, inner_frame.data() + 26, 4);
    std::memcpy(&daddr, inner_frame.data() + 30, 4);
    const uint8_t proto = inner_frame[23];
    const size_t l4_off = testing::kEthHdrLen + (inner_frame[14] & 0x0fu) * 4u;
    const bool later_fragment = (testing::detail::load16(inner_frame, 20) & 0x1fff) != 0;
    if ((proto == testing::kIpProtoTcp || proto == testing::kIpProtoUdp) && !later_fragment &&
        inner_frame.size() >= l4_off + 4)
        std::memcpy(&ports, inner_frame.data() + l4_off, 4);
    const uint32_t h = mix32(saddr ^ mix32(daddr ^ mix32(ports ^ proto)));
    const uint32_t span = BPFNET_VXLAN_SPORT_MAX - BPFNET_VXLAN_SPORT_MIN + 1;
    return static_cast<uint16_t>(BPFNET_VXLAN_SPORT_MIN +
                                 ((static_cast<uint64_t>(h) * span) >> 32));
}

// The outer ECN field for an inner TOS: the inner ECN, congestion experienced as ECT(0).
uint8_t outer_ecn(uint8_t inner_tos) {
    const uint8_t ecn = inner_tos & 0x03;
    return ecn == 0x03 ? 0x02 : ecn;
}

// A VXLAN frame as the kernel's VXLAN device puts it on the wire: outer Ethernet, IPv4 (no DF,
// TTL 64, the given ID), UDP without checksum, VXLAN with the I flag, then `inner` (a whole
// Ethernet frame).
std::vector<uint8_t> vxlan_frame(const MacAddr& src_mac, const MacAddr& dst_mac, Ipv4 src, Ipv4 dst,
                                 uint16_t sport, uint32_t vni, uint16_t id,
                                 const std::vector<uint8_t>& inner, uint8_t tos = 0,
                                 uint16_t dport = kVxlanPort) {
    using namespace testing::detail;
    std::vector<uint8_t> b;
    put_mac(b, dst_mac);
    put_mac(b, src_mac);
    put16(b, testing::kEthPIpv4);
    const size_t ip_at = b.size();
    const size_t udp_len = testing::kUdpHdrLen + 8 + inner.size();
    put8(b, 0x45);
    put8(b, tos);
    put16(b, static_cast<uint16_t>(testing::kIpv4HdrLen + udp_len));
    put16(b, id);
    put16(b, 0);
    put8(b, 64);
    put8(b, testing::kIpProtoUdp);
    put16(b, 0);
    put32(b, src.value);
    put32(b, dst.value);
    store16(b, ip_at + 10, testing::inet_checksum(b.data() + ip_at, testing::kIpv4HdrLen));
    put16(b, sport);
    put16(b, dport);
    put16(b, static_cast<uint16_t>(udp_len));
    put16(b, 0);
    put32(b, 0x08000000u);
    put32(b, vni << 8);
    b.insert(b.end(), inner.begin(), inner.end());
    return b;
}

class OverlayBpfPath : public OverlayProg {
  protected:
    static void SetUpTestSuite() {
        ns_ = "bnt-vx-" + std::to_string(getpid());
        const std::string in = "ip -n " + ns_ + " ";
        ready_ =
            testing::sh("ip netns add " + ns_) == 0 && testing::sh(in + "link set lo up") == 0 &&
            testing::sh(in + "link add ep0 type veth peer name ep0p") == 0 &&
            testing::sh(in + "link set ep0 up") == 0 && testing::sh(in + "link set ep0p up") == 0 &&
            testing::sh(in + "link add und0 address " + kUnderlayMac +
                        " type veth peer name und0p") == 0 &&
            testing::sh(in + "addr add " + kLocalVtep + "/24 dev und0") == 0 &&
            testing::sh(in + "link set und0 up") == 0 &&
            testing::sh(in + "link set und0p up") == 0 &&
            testing::sh(in + "neigh replace " + kRemoteVtep + " lladdr " + kRemoteVtepMac +
                        " dev und0 nud permanent") == 0 &&
            testing::sh("ip netns exec " + ns_ + " sysctl -qw net.ipv4.ip_forward=1") == 0;
    }
    static void TearDownTestSuite() { testing::sh("ip netns del " + ns_); }

    void SetUp() override {
        OverlayProg::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        ASSERT_TRUE(ready_) << "could not build the test namespace " << ns_;
        {
            testing::InNetns in(ns_);
            ASSERT_TRUE(in.ok());
            ep0_ = if_nametoindex("ep0");
            und0_ = if_nametoindex("und0");
        }
        ASSERT_NE(ep0_, 0u);
        ASSERT_NE(und0_, 0u);
        // The sending endpoint's host veth is ep0 here: the route lookup starts from it.
        const Status src = endpoints().put_source(EndpointEntry{
            .ifindex = ep0_, .network = kNet, .ip = ip(kLocal), .mac = mac(kLocalMac)});
        ASSERT_TRUE(src.ok()) << src.error().message;
        const Status dst = endpoints().put_destination(EndpointEntry{
            .ifindex = kLocalVeth, .network = kNet, .ip = ip(kLocal), .mac = mac(kLocalMac)});
        ASSERT_TRUE(dst.ok()) << dst.error().message;
        ASSERT_TRUE(overlay_maps().put_vni(kVni, kNet).ok());
        ASSERT_TRUE(overlay_maps()
                        .put_tunnel(kNet, kVni,
                                    RemoteEndpoint{.ip = ip("10.233.0.4"),
                                                   .mac = mac("02:42:0a:e9:00:04"),
                                                   .vtep = ip(kUnresolvedVtep)})
                        .ok());
        set_local_vtep(ip(kLocalVtep));
    }
    void set_local_vtep(Ipv4 vtep) {
        const Status put = overlay_maps().set_config(VxlanConfig{.vxlan_ifindex = kLo,
                                                                 .local_vtep = vtep,
                                                                 .port = kVxlanPort,
                                                                 .underlay_ifindex = und0_});
        ASSERT_TRUE(put.ok()) << put.error().message;
    }
    RunOutput from_endpoint(const std::vector<uint8_t>& in) const {
        testing::InNetns ns(ns_);
        EXPECT_TRUE(ns.ok());
        return testing::run_test(ep_fd(), in, true, ep0_);
    }
    RunOutput at_underlay(const std::vector<uint8_t>& in) const {
        testing::InNetns ns(ns_);
        EXPECT_TRUE(ns.ok());
        return testing::run_test(bpf_program__fd(overlay_->progs.bpfnet_from_underlay), in, true,
                                 und0_);
    }
    uint64_t counted(uint32_t counter) const {
        std::vector<bpfnet_nat_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(endpoint_->maps.bpfnet_nat_cnt), &counter,
                                      per_cpu.data()),
                  0);
        uint64_t n = 0;
        for (const auto& c : per_cpu) n += c.packets;
        return n;
    }
    // What the remote host's endpoint sends to the local one.
    static std::vector<uint8_t> inner_to_local() {
        return PacketBuilder()
            .eth(mac(kRemoteMac), mac(kLocalMac))
            .ipv4(ip(kRemote), ip(kLocal))
            .udp(53, 40000)
            .payload("from the other host")
            .build();
    }
    // The frame the encapsulation must produce for `inner` (already carrying the remote
    // endpoint's MAC), with the IPv4 ID the program picked.
    static std::vector<uint8_t> expected_encap(const std::vector<uint8_t>& inner, uint16_t id,
                                               uint8_t tos = 0) {
        return vxlan_frame(mac(kUnderlayMac), mac(kRemoteVtepMac), ip(kLocalVtep), ip(kRemoteVtep),
                           expected_sport(inner), kVni, id, inner, tos);
    }
    static uint16_t id_of(const std::vector<uint8_t>& frame) {
        return frame.size() >= 20 ? testing::detail::load16(frame, 18) : 0;
    }

    static inline std::string ns_;
    static inline bool ready_ = false;
    uint32_t ep0_ = 0, und0_ = 0;
};

TEST_F(OverlayBpfPath, EncapsulatesInPlaceAndSendsOutOfTheUnderlay) {
    const auto inner = udp_to(kRemote, kRemoteMac);
    const auto out = from_endpoint(udp_to(kRemote, kBridgeMac));
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    // Byte for byte the kernel VXLAN device's frame (the ID is the program's pick; the header
    // checksum covers it).
    EXPECT_EQ(out.data, expected_encap(inner, id_of(out.data)));
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP), 1u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP_DEVICE), 0u);
}

TEST_F(OverlayBpfPath, SourcePortFollowsTheInnerFlowAndEcnIsCarried) {
    std::set<uint16_t> ports;
    for (uint16_t sport : {40000, 40001, 40002, 50000, 12345}) {
        const auto inner = PacketBuilder()
                               .eth(mac(kLocalMac), mac(kRemoteMac))
                               .ipv4(ip(kLocal), ip(kRemote))
                               .tos(0x03)  // congestion experienced: ECT(0) outside
                               .tcp(sport, 443, testing::kTcpSyn)
                               .build();
        for (int again = 0; again < 2; ++again) {  // one flow, one port
            const auto out = from_endpoint(inner);
            ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
            ASSERT_EQ(out.data, expected_encap(inner, id_of(out.data), 0x02));
        }
        const uint16_t port = expected_sport(inner);
        EXPECT_GE(port, BPFNET_VXLAN_SPORT_MIN);
        EXPECT_LE(port, BPFNET_VXLAN_SPORT_MAX);
        ports.insert(port);
    }
    EXPECT_GE(ports.size(), 4u) << "five flows, hardly any spread over outer ports";
}

TEST_F(OverlayBpfPath, UnresolvedNextHopGoesThroughTheNeighbourCode) {
    const auto inner = PacketBuilder()
                           .eth(mac(kLocalMac), mac("02:42:0a:e9:00:04"))
                           .ipv4(ip(kLocal), ip("10.233.0.4"))
                           .udp(40000, 53)
                           .payload("overlay")
                           .build();
    const auto out = from_endpoint(inner);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    // The MACs are bpf_redirect_neigh's to fill once the neighbour resolves.
    EXPECT_EQ(out.data, vxlan_frame(MacAddr{}, MacAddr{}, ip(kLocalVtep), ip(kUnresolvedVtep),
                                    expected_sport(inner), kVni, id_of(out.data), inner));
}

TEST_F(OverlayBpfPath, WhatBpfCannotRouteOrFitGoesToTheDevice) {
    // No route to the remote host's VTEP from this namespace.
    ASSERT_TRUE(
        overlay_maps()
            .put_tunnel(kNet, kVni,
                        RemoteEndpoint{
                            .ip = ip(kRemote), .mac = mac(kRemoteMac), .vtep = ip("198.51.100.9")})
            .ok());
    auto out = from_endpoint(udp_to(kRemote, kBridgeMac));
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, udp_to(kRemote, kRemoteMac));  // tunnel metadata, to the device
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP_DEVICE), 1u);
    // A frame that would not fit the underlay's MTU with the headers: the device fragments it.
    ASSERT_TRUE(
        overlay_maps()
            .put_tunnel(
                kNet, kVni,
                RemoteEndpoint{.ip = ip(kRemote), .mac = mac(kRemoteMac), .vtep = ip(kRemoteVtep)})
            .ok());
    const auto big = PacketBuilder()
                         .eth(mac(kLocalMac), mac(kRemoteMac))
                         .ipv4(ip(kLocal), ip(kRemote))
                         .udp(40000, 53)
                         .payload(std::vector<uint8_t>(1460, 0x5a))
                         .build();
    out = from_endpoint(big);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, big);
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP_DEVICE), 2u);
    // No underlay address known: all of it is the device's.
    set_local_vtep(Ipv4{});
    out = from_endpoint(udp_to(kRemote, kRemoteMac));
    EXPECT_EQ(out.data, udp_to(kRemote, kRemoteMac));
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP_DEVICE), 3u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP), 0u);
}

TEST_F(OverlayBpfPath, DecapsulatesVxlanForALocalEndpoint) {
    // The remote host's neighbour entry held another MAC: the frame arrives with the right one.
    auto inner = inner_to_local();
    const auto bridge_mac = mac(kBridgeMac).bytes;
    std::copy(bridge_mac.begin(), bridge_mac.end(), inner.begin());
    const auto frame = vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep),
                                   ip(kLocalVtep), 51234, kVni, 7, inner);
    const auto out = at_underlay(frame);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));  // bpf_redirect_peer
    EXPECT_EQ(out.data, inner_to_local());
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP), 1u);
    EXPECT_EQ(delivered_to(kLocalVeth), 1u);
}

TEST_F(OverlayBpfPath, UnknownVniIsDroppedAndCounted) {
    const auto frame = vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep),
                                   ip(kLocalVtep), 51234, kVni + 1, 7, inner_to_local());
    const auto out = at_underlay(frame);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(out.data, frame);
    EXPECT_EQ(drops(BPFNET_DROP_UNKNOWN_VNI), 1u);
}

TEST_F(OverlayBpfPath, WhatIsNotOursGoesOnUntouched) {
    const uint32_t next = static_cast<uint32_t>(TC_ACT_UNSPEC);
    const auto from_remote = [](Ipv4 dst, uint16_t dport, const std::vector<uint8_t>& inner) {
        return vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep), dst, 51234,
                           kVni, 7, inner, 0, dport);
    };
    // Not VXLAN for this host: another port, another address, plain traffic, ARP.
    std::vector<std::vector<uint8_t>> not_ours = {
        from_remote(ip(kLocalVtep), 4790, inner_to_local()),
        from_remote(ip("192.0.2.2"), kVxlanPort, inner_to_local()),
        PacketBuilder()
            .eth(mac(kRemoteVtepMac), mac(kUnderlayMac))
            .ipv4(ip(kRemoteVtep), ip(kLocalVtep))
            .tcp(40000, 22)
            .build(),
        arp_request(mac(kRemoteVtepMac), ip(kRemoteVtep), ip(kLocalVtep)),
    };
    // A damaged outer header is the stack's to drop.
    auto damaged = from_remote(ip(kLocalVtep), kVxlanPort, inner_to_local());
    damaged[24] ^= 0x01;
    not_ours.push_back(damaged);
    for (const auto& frame : not_ours) {
        const auto out = at_underlay(frame);
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, next);
        EXPECT_EQ(out.data, frame);
    }
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP_DEVICE), 0u);
    // VXLAN for us that this path leaves to the device: ARP inside, an address nobody here holds.
    const std::vector<std::vector<uint8_t>> for_device = {
        from_remote(ip(kLocalVtep), kVxlanPort,
                    arp_request(mac(kRemoteMac), ip(kRemote), ip(kLocal))),
        from_remote(ip(kLocalVtep), kVxlanPort,
                    PacketBuilder()
                        .eth(mac(kRemoteMac), mac(kLocalMac))
                        .ipv4(ip(kRemote), ip("10.233.0.99"))
                        .udp(53, 40000)
                        .build()),
    };
    for (const auto& frame : for_device) {
        const auto out = at_underlay(frame);
        EXPECT_EQ(out.retval, next);
        EXPECT_EQ(out.data, frame);
    }
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP_DEVICE), 2u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP), 0u);
}

// The wire format both ways: what one host's endpoint program sends, the other host's underlay
// program takes apart into the very frame the sender's endpoint sent.
TEST_F(OverlayBpfPath, WhatOneHostEncapsulatesTheOtherDecapsulates) {
    const auto sent = udp_to(kRemote, kRemoteMac);
    const auto wire = from_endpoint(sent);
    ASSERT_EQ(wire.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    // Now play the other host: its VTEP is the destination, the remote endpoint is local there.
    set_local_vtep(ip(kRemoteVtep));
    const Status there = endpoints().put_destination(EndpointEntry{
        .ifindex = kLocalVeth + 1, .network = kNet, .ip = ip(kRemote), .mac = mac(kRemoteMac)});
    ASSERT_TRUE(there.ok()) << there.error().message;
    const auto out = at_underlay(wire.data);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    EXPECT_EQ(out.data, sent);
    EXPECT_EQ(delivered_to(kLocalVeth + 1), 1u);
}

// Hostile frames at the underlay: mutations of VXLAN frames for a local endpoint, for an unknown
// VNI, with ARP inside, and of plain traffic. Each is delivered (exactly the inner frame with the
// endpoint's MAC), dropped as unknown-vni, or passed on unchanged; the agent's maps stay as they
// were.
TEST_F(OverlayBpfPath, FuzzedFramesAtTheUnderlayAreDeliveredExactlyDroppedOrPassedOn) {
    const auto to_us = [](uint32_t vni, const std::vector<uint8_t>& inner) {
        return vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep), ip(kLocalVtep),
                           51234, vni, 7, inner);
    };
    const std::vector<std::vector<uint8_t>> seeds = {
        to_us(kVni, inner_to_local()),
        to_us(kVni, PacketBuilder()
                        .eth(mac(kRemoteMac), mac(kLocalMac))
                        .ipv4(ip(kRemote), ip(kLocal))
                        .tcp(443, 40000, testing::kTcpSyn | testing::kTcpAck)
                        .build()),
        to_us(kVni + 1, inner_to_local()),
        to_us(kVni, arp_request(mac(kRemoteMac), ip(kRemote), ip(kLocal))),
        PacketBuilder()
            .eth(mac(kRemoteVtepMac), mac(kUnderlayMac))
            .ipv4(ip(kRemoteVtep), ip(kLocalVtep))
            .udp(4789, 4789)
            .build(),
    };
    auto config = [&] {
        return std::tuple{testing::map_contents(bpf_map__fd(overlay_->maps.bpfnet_vni), 4, 4),
                          testing::map_contents(bpf_map__fd(overlay_->maps.bpfnet_ep_by_ip),
                                                sizeof(bpfnet_ep_key), sizeof(bpfnet_ep_dest)),
                          testing::map_contents(bpf_map__fd(endpoint_->maps.bpfnet_vx_cfg), 4,
                                                sizeof(bpfnet_vx_cfg))};
    };
    const auto before = config();
    const auto local_mac = mac(kLocalMac).bytes;
    uint64_t delivered = 0, dropped = 0, passed = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x7e2)) {
        const RunOutput out = at_underlay(frame);
        if (out.err != 0) {
            EXPECT_TRUE(testing::test_run_refuses(frame)) << libbpf_error_text(out.err);
            continue;
        }
        if (out.retval == static_cast<uint32_t>(TC_ACT_UNSPEC)) {
            ASSERT_EQ(out.data, frame);
            ++passed;
        } else if (out.retval == static_cast<uint32_t>(TC_ACT_SHOT)) {
            ASSERT_EQ(out.data, frame);
            ++dropped;
        } else {
            ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
            ASSERT_GE(frame.size(), kOuterLen + testing::kIpv4HdrLen);
            // The inner frame, from the remote endpoint's MAC to the local endpoint's.
            std::vector<uint8_t> expected(
                frame.begin() + static_cast<long>(kOuterLen - testing::kEthHdrLen), frame.end());
            std::copy(local_mac.begin(), local_mac.end(), expected.begin());
            ASSERT_EQ(out.data, expected);
            uint32_t daddr = 0;
            std::memcpy(&daddr, expected.data() + 30, 4);
            ASSERT_EQ(daddr, ip(kLocal).network_order());
            ++delivered;
        }
    }
    EXPECT_TRUE(config() == before) << "a frame changed the agent's maps";
    EXPECT_GT(delivered, 0u);
    EXPECT_GT(dropped, 0u);
    EXPECT_GT(passed, 0u);
    EXPECT_EQ(delivered_to(kLocalVeth), delivered);
    EXPECT_EQ(drops(BPFNET_DROP_UNKNOWN_VNI), dropped);
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP), delivered);
}

// Hostile frames from the endpoint towards a remote one: mutations of UDP, TCP and ICMP to the
// remote endpoint. A frame the program encapsulates comes out as exactly the VXLAN frame of the
// input (inner destination MAC the remote endpoint's); every other one is dropped, passed, sent
// to the device or answered, never a malformed frame on the underlay.
TEST_F(OverlayBpfPath, FuzzedFramesFromTheEndpointAreEncapsulatedExactly) {
    const auto to_remote = [] {
        return PacketBuilder().eth(mac(kLocalMac), mac(kRemoteMac)).ipv4(ip(kLocal), ip(kRemote));
    };
    const std::vector<std::vector<uint8_t>> seeds = {
        to_remote().udp(40000, 53).payload("overlay").build(),
        to_remote().tcp(40000, 443, testing::kTcpSyn).build(),
        to_remote().icmp_echo(7, 1).build(),
        to_remote().ip_options({1, 1, 1, 0}).udp(40001, 53).payload("opts").build(),
    };
    const auto remote_mac = mac(kRemoteMac).bytes;
    uint64_t encapsulated = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x7e3)) {
        const RunOutput out = from_endpoint(frame);
        if (out.err != 0) {
            EXPECT_TRUE(testing::test_run_refuses(frame)) << libbpf_error_text(out.err);
            continue;
        }
        if (out.data.size() != frame.size() + BPFNET_VXLAN_ENCAP_LEN) continue;
        ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
        auto inner = frame;
        std::copy(remote_mac.begin(), remote_mac.end(), inner.begin());
        ASSERT_EQ(out.data, expected_encap(inner, id_of(out.data), outer_ecn(frame[15])));
        ++encapsulated;
    }
    EXPECT_GT(encapsulated, 1000u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_ENCAP), encapsulated);
}

// The underlay that is also an uplink running XDP natively: the uplink's XDP program
// (bpfnet_up_xdp, lib/decap_xdp.h) decapsulates VXLAN for a local endpoint that takes XDP frames
// in the driver's receive path. The uplink object shares every map with the others, as pinning by
// name gives it in production.
class OverlayXdpDecap : public OverlayBpfPath {
  protected:
    void SetUp() override {
        OverlayBpfPath::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        ASSERT_TRUE(uplink_.open().ok());
        bpf_map* map = nullptr;
        bpf_object__for_each_map(map, uplink_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
            for (bpf_object* other : {endpoint_->obj, overlay_->obj}) {
                if (bpf_map* same = bpf_object__find_map_by_name(other, bpf_map__name(map))) {
                    ASSERT_EQ(bpf_map__reuse_fd(map, bpf_map__fd(same)), 0);
                    break;
                }
            }
        }
        const Status loaded = uplink_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        set_xdp_target(true);
    }
    void set_xdp_target(bool xdp_target) {
        const Status dst = endpoints().put_destination(EndpointEntry{.ifindex = kLocalVeth,
                                                                     .network = kNet,
                                                                     .ip = ip(kLocal),
                                                                     .mac = mac(kLocalMac),
                                                                     .xdp_target = xdp_target});
        ASSERT_TRUE(dst.ok()) << dst.error().message;
    }
    RunOutput at_xdp(const std::vector<uint8_t>& in) const {
        testing::InNetns ns(ns_);
        EXPECT_TRUE(ns.ok());
        return testing::run_test(bpf_program__fd(uplink_->progs.bpfnet_up_xdp), in, false);
    }
    static std::vector<uint8_t> to_us(uint32_t vni, const std::vector<uint8_t>& inner) {
        return vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep), ip(kLocalVtep),
                           51234, vni, 7, inner);
    }

    BpfSkeleton<uplink> uplink_;
};

TEST_F(OverlayXdpDecap, DecapsulatesVxlanForAnEndpointThatTakesXdpFrames) {
    auto inner = inner_to_local();
    const auto bridge_mac = mac(kBridgeMac).bytes;
    std::copy(bridge_mac.begin(), bridge_mac.end(), inner.begin());
    const auto out = at_xdp(to_us(kVni, inner));
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_REDIRECT));
    EXPECT_EQ(out.data, inner_to_local());
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP), 1u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP_XDP), 1u);
    EXPECT_EQ(delivered_to(kLocalVeth), 1u);
}

TEST_F(OverlayXdpDecap, WhatXdpDoesNotDeliverGoesToTheTcPathUntouched) {
    auto with_udp_checksum = to_us(kVni, inner_to_local());
    with_udp_checksum[kOuterLen - testing::kEthHdrLen - 10] = 0x12;  // the outer UDP checksum
    auto bad_ip_checksum = to_us(kVni, inner_to_local());
    bad_ip_checksum[testing::kEthHdrLen + 10] ^= 0xff;
    const std::vector<std::vector<uint8_t>> frames = {
        to_us(kVni + 1, inner_to_local()),  // unknown VNI: the TC program drops and counts it
        to_us(kVni, arp_request(mac(kRemoteMac), ip(kRemote), ip(kLocal))),
        to_us(kVni, PacketBuilder()
                        .eth(mac(kRemoteMac), mac(kLocalMac))
                        .ipv4(ip(kRemote), ip("10.233.0.9"))  // nobody here
                        .udp(53, 40000)
                        .build()),
        with_udp_checksum,
        bad_ip_checksum,
        vxlan_frame(mac(kRemoteVtepMac), mac(kUnderlayMac), ip(kRemoteVtep), ip(kLocalVtep), 51234,
                    kVni, 7, inner_to_local(), 0, 8472),  // another UDP port
    };
    for (const auto& frame : frames) {
        const auto out = at_xdp(frame);
        ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
        EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_PASS));
        EXPECT_EQ(out.data, frame);
    }
    // An endpoint whose veth takes no XDP frames is reached from the TC program.
    set_xdp_target(false);
    const auto frame = to_us(kVni, inner_to_local());
    const auto out = at_xdp(frame);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(out.data, frame);
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP), 0u);
    EXPECT_EQ(drops(BPFNET_DROP_UNKNOWN_VNI), 0u);
}

// Hostile frames at the XDP hook: every frame is passed on untouched or delivered, and a delivered
// frame is byte for byte what the TC path makes of the same frame.
TEST_F(OverlayXdpDecap, FuzzedFramesArePassedUntouchedOrDeliveredAsTheTcPathWould) {
    const std::vector<std::vector<uint8_t>> seeds = {
        to_us(kVni, inner_to_local()),
        to_us(kVni, PacketBuilder()
                        .eth(mac(kRemoteMac), mac(kLocalMac))
                        .ipv4(ip(kRemote), ip(kLocal))
                        .tcp(443, 40000, testing::kTcpSyn | testing::kTcpAck)
                        .build()),
        to_us(kVni + 1, inner_to_local()),
        to_us(kVni, arp_request(mac(kRemoteMac), ip(kRemote), ip(kLocal))),
    };
    uint64_t delivered = 0, passed = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x7e3)) {
        const RunOutput out = at_xdp(frame);
        if (out.err != 0) {
            EXPECT_TRUE(testing::test_run_refuses(frame)) << libbpf_error_text(out.err);
            continue;
        }
        if (out.retval == static_cast<uint32_t>(XDP_PASS)) {
            ASSERT_EQ(out.data, frame);
            ++passed;
            continue;
        }
        ASSERT_EQ(out.retval, static_cast<uint32_t>(XDP_REDIRECT));
        const RunOutput tc = at_underlay(frame);
        ASSERT_EQ(tc.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
        ASSERT_EQ(out.data, tc.data);
        ++delivered;
    }
    EXPECT_GT(delivered, 1000u);
    EXPECT_GT(passed, 1000u);
    EXPECT_EQ(counted(BPFNET_NAT_VX_DECAP_XDP), delivered);
}

}  // namespace
}  // namespace bpfnet

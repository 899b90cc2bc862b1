// The overlay's encapsulation decisions in the endpoint program (lib/encap.h) and the overlay
// program's refusals, through BPF_PROG_TEST_RUN. Test runs cannot attach tunnel metadata to a
// packet nor perform a redirect, so what is checked is the verdict, the rewritten frame (the
// remote endpoint's MAC) and the counters; tunnel keys themselves are exercised end to end by
// tests/e2e/e2e_drv_overlay.sh. The fuzz test reaches the overlay program's decapsulation path
// through overlay_harness.bpf.c, which sets a tunnel key and tail-calls it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "bpf/endpoint.skel.h"
#include "bpf/frame_fuzz.h"
#include "bpf/overlay.skel.h"
#include "bpf/overlay_harness.skel.h"
#include "bpf/packet_builder.h"
#include "bpf/test_run.h"
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

}  // namespace
}  // namespace bpfnet

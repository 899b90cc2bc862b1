// The published-port and egress NAT tests' common ground: frames as they look on the wire at each
// point (built independently with packet_builder.h, so every incrementally updated checksum must
// equal a full recomputation), and the fixture that loads the uplink and endpoint objects without
// pinning, gives the endpoint object the uplink object's maps (bpf_map__reuse_fd by name, as
// pinning by name does in production, so a flow one program creates is found by the other) and
// fills the configuration maps through the agent's own typed maps (userspace/maps/).
#pragma once

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

namespace bpfnet::nat_testing {

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

inline uint32_t be(const char* addr) {
    return ip(addr).network_order();
}

// Frames the way they look on the wire at each point.
inline std::vector<uint8_t> tcp_frame(const char* smac, const char* dmac, const char* src,
                                      const char* dst, uint16_t sport, uint16_t dport,
                                      uint8_t flags, uint8_t ttl = 64) {
    return PacketBuilder()
        .eth(mac(smac), mac(dmac))
        .ipv4(ip(src), ip(dst), ttl)
        .tcp(sport, dport, flags, 1000, flags & kTcpAck ? 2000 : 0)
        .payload("nat")
        .build();
}
inline std::vector<uint8_t> udp_frame(const char* smac, const char* dmac, const char* src,
                                      const char* dst, uint16_t sport, uint16_t dport,
                                      uint8_t ttl = 64) {
    return PacketBuilder()
        .eth(mac(smac), mac(dmac))
        .ipv4(ip(src), ip(dst), ttl)
        .udp(sport, dport)
        .payload("query")
        .build();
}

// Sets the IPv4 fragment field and fixes the header checksum.
inline void set_frag(std::vector<uint8_t>& f, uint16_t frag_off) {
    f[testing::kEthHdrLen + 6] = static_cast<uint8_t>(frag_off >> 8);
    f[testing::kEthHdrLen + 7] = static_cast<uint8_t>(frag_off);
    f[testing::kEthHdrLen + 10] = 0;
    f[testing::kEthHdrLen + 11] = 0;
    const uint16_t sum = inet_checksum(f.data() + testing::kEthHdrLen, testing::kIpv4HdrLen);
    f[testing::kEthHdrLen + 10] = static_cast<uint8_t>(sum >> 8);
    f[testing::kEthHdrLen + 11] = static_cast<uint8_t>(sum);
}

// Ethernet + IPv4 (protocol `proto`) + `l4` bytes, with the IP header checksum filled in.
inline std::vector<uint8_t> raw_ipv4(const char* smac, const char* dmac, const char* src,
                                     const char* dst, uint8_t proto, const std::vector<uint8_t>& l4,
                                     uint8_t ttl = 64) {
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
inline std::vector<uint8_t> sctp_l4(uint16_t sport, uint16_t dport) {
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
inline std::vector<uint8_t> icmp_error(const char* smac, const char* dmac, const char* src,
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

}  // namespace bpfnet::nat_testing

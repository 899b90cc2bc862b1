// The typed maps' encoders (userspace/maps/): a domain value in, the exact bytes of the
// include/bpfnet/abi.h struct the BPF programs read out. No kernel needed.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "maps/conntrack_map.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"
#include "maps/overlay_maps.h"
#include "maps/published_port_maps.h"
#include "maps/socket_nat_maps.h"
#include "maps/uplink_maps.h"

namespace bpfnet {
namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    std::vector<uint8_t> out(sizeof(T));
    std::memcpy(out.data(), &value, sizeof(T));
    return out;
}

Ipv4 ip(const char* text) {
    return *Ipv4::parse(text);
}
MacAddr mac(const char* text) {
    return *MacAddr::parse(text);
}

// Host-order fields (IDs, ifindexes, flags) as the bytes the struct holds on this host; addresses
// and ports are spelled out byte by byte, since they are network order everywhere.
void host32(std::vector<uint8_t>& out, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    out.insert(out.end(), b, b + 4);
}
void host16(std::vector<uint8_t>& out, uint16_t v) {
    uint8_t b[2];
    std::memcpy(b, &v, 2);
    out.insert(out.end(), b, b + 2);
}
void host64(std::vector<uint8_t>& out, uint64_t v) {
    uint8_t b[8];
    std::memcpy(b, &v, 8);
    out.insert(out.end(), b, b + 8);
}
void raw(std::vector<uint8_t>& out, std::initializer_list<uint8_t> b) {
    out.insert(out.end(), b);
}

TEST(NetworkMaps, EncodesTheNetworkInfoWithItsSubnetMasked) {
    const NetworkEntry network{.id = 7,
                               .subnet = *Cidr::parse("10.212.1.9/24"),
                               .gateway = ip("10.212.1.1"),
                               .flags = BPFNET_NET_ICC | BPFNET_NET_DIRECT_ROUTING,
                               .bridge_ifindex = 42,
                               .gateway_mac = mac("02:42:0a:d4:01:01")};
    std::vector<uint8_t> want;
    raw(want, {10, 212, 1, 0});  // subnet, network order, host bits gone
    raw(want, {10, 212, 1, 1});  // gateway
    host32(want, BPFNET_NET_ICC | BPFNET_NET_DIRECT_ROUTING);
    host32(want, 24);
    host32(want, 42);
    raw(want, {0x02, 0x42, 0x0a, 0xd4, 0x01, 0x01, 0, 0});
    EXPECT_EQ(bytes_of(NetworkMaps::encode(network)), want);

    std::vector<uint8_t> key;
    host32(key, 24);
    raw(key, {10, 212, 1, 0});
    EXPECT_EQ(bytes_of(NetworkMaps::subnet_key(network.subnet)), key);
}

TEST(NetworkMaps, NoGatewayIsZero) {
    const NetworkEntry overlay{.id = 3,
                               .subnet = *Cidr::parse("10.233.0.0/16"),
                               .gateway = Ipv4{},
                               .gateway_mac = MacAddr{}};
    const bpfnet_net_info info = NetworkMaps::encode(overlay);
    EXPECT_EQ(info.gateway, 0u);
    EXPECT_EQ(info.prefix_len, 16u);
    EXPECT_EQ(info.bridge_ifindex, 0u);
}

TEST(EndpointMaps, EncodesSourceKeyAndDestination) {
    EndpointEntry ep{.ifindex = 0x01020304,
                     .network = 9,
                     .ip = ip("10.212.1.2"),
                     .mac = mac("02:42:0a:d4:01:02")};
    std::vector<uint8_t> src;
    raw(src, {10, 212, 1, 2});
    host32(src, 9);
    raw(src, {0x02, 0x42, 0x0a, 0xd4, 0x01, 0x02, 0, 0});
    EXPECT_EQ(bytes_of(EndpointMaps::encode_source(ep)), src);

    std::vector<uint8_t> key;
    host32(key, 9);
    raw(key, {10, 212, 1, 2});
    EXPECT_EQ(bytes_of(EndpointMaps::encode_key(ep.network, ep.ip)), key);

    std::vector<uint8_t> dest;
    host32(dest, 0x01020304);
    raw(dest, {0x02, 0x42, 0x0a, 0xd4, 0x01, 0x02, 0, 0});
    EXPECT_EQ(bytes_of(EndpointMaps::encode_destination(ep)), dest);

    ep.xdp_target = true;
    dest[10] = BPFNET_EP_F_XDP_TARGET;
    EXPECT_EQ(bytes_of(EndpointMaps::encode_destination(ep)), dest);
}

TEST(PublishedPortMaps, EncodesKeyAndTargetInNetworkOrder) {
    PublishedPort port;
    port.binding = PortBinding{.proto = IpProto::Udp,
                               .host_ip = ip("192.0.2.1"),
                               .host_port = 0x1f90,  // 8080
                               .container_port = 53};
    port.endpoint_ip = ip("10.212.1.2");
    port.network = 5;
    std::vector<uint8_t> key;
    raw(key, {192, 0, 2, 1, 0x1f, 0x90, 17, 0});
    EXPECT_EQ(bytes_of(PublishedPortMaps::encode_key(port.binding)), key);

    std::vector<uint8_t> target;
    raw(target, {10, 212, 1, 2});
    host32(target, 5);
    raw(target, {0, 53, 0, 0});
    EXPECT_EQ(bytes_of(PublishedPortMaps::encode_target(port)), target);

    port.binding.host_ip = Ipv4{};  // any of the host's addresses
    EXPECT_EQ(PublishedPortMaps::encode_key(port.binding).host_ip, 0u);
}

TEST(OverlayMaps, EncodesTheTunnelDestination) {
    const RemoteEndpoint remote{
        .ip = ip("10.233.0.5"), .mac = mac("02:00:00:00:00:05"), .vtep = ip("192.0.2.20")};
    std::vector<uint8_t> want;
    raw(want, {192, 0, 2, 20});
    host32(want, 4242);
    raw(want, {0x02, 0, 0, 0, 0, 0x05, 0, 0});
    EXPECT_EQ(bytes_of(OverlayMaps::encode_tunnel(4242, remote)), want);
}

TEST(UplinkMaps, EncodesTheSnatAddressAndHostOrderPorts) {
    std::vector<uint8_t> want;
    raw(want, {192, 0, 2, 1});
    host16(want, 61000);
    host16(want, 65535);
    EXPECT_EQ(bytes_of(UplinkMaps::encode(UplinkEgress{ip("192.0.2.1"), PortRange{61000, 65535}})),
              want);
}

TEST(SocketNatMaps, EncodesTheSandboxKey) {
    std::vector<uint8_t> want;
    host64(want, 0x1122334455667788ull);
    host32(want, 12);
    host32(want, 0);
    EXPECT_EQ(bytes_of(SocketNatMaps::encode_key(0x1122334455667788ull, 12)), want);
}

TEST(ConntrackMap, ReplyKeyIsTheEndpointAnsweringTheClient) {
    bpfnet_ct_key in{};
    in.saddr = ip("198.51.100.7").network_order();  // client
    in.daddr = ip("192.0.2.1").network_order();     // host address
    in.sport = 0x409c;                              // as stored: network order
    in.dport = 0x901f;
    in.proto = 6;
    in.dir = BPFNET_CT_DIR_IN;
    bpfnet_ct_entry entry{};
    entry.nat_addr = ip("10.212.1.2").network_order();
    entry.nat_port = 0x5000;
    std::vector<uint8_t> want;
    raw(want, {10, 212, 1, 2});
    raw(want, {198, 51, 100, 7});
    host16(want, 0x5000);
    host16(want, 0x409c);
    raw(want, {6, BPFNET_CT_DIR_REPLY, 0, 0});
    EXPECT_EQ(bytes_of(ConntrackMap::reply_key(in, entry)), want);
}

}  // namespace
}  // namespace bpfnet

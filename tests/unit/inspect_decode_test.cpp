// The inspection commands' decoding of map entries: crafted key/value bytes in the layouts of
// include/bpfnet/abi.h must come out as words (addresses, ports in host order, protocols, flags,
// reasons), and per-CPU counters must be summed.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include <bpfnet/abi.h>

#include "inspect/decode.h"

namespace bpfnet::inspect {
namespace {

// Interface 7 is an endpoint's veth, 3 a bridge; network (datapath ID) 42 has that bridge.
const Names fake_names{
    [](uint32_t ifindex) -> std::string {
        return ifindex == 7 ? "bnv-abc" : ifindex == 3 ? "bn-net" : "";
    },
    [](uint32_t network) -> std::string { return network == 42 ? "bn-net" : ""; }};

uint32_t be_ip(const char* text) {
    in_addr a{};
    inet_pton(AF_INET, text, &a);
    return a.s_addr;
}

template <typename T>
const uint8_t* bytes(const T& v) {
    return reinterpret_cast<const uint8_t*>(&v);
}

TEST(InspectDecode, EveryMapOfTheDatapathHasALayoutOfTheRightSize) {
    EXPECT_EQ(map_layout("bpfnet_ct")->key_size, sizeof(bpfnet_ct_key));
    EXPECT_EQ(map_layout("bpfnet_ct")->value_size, sizeof(bpfnet_ct_entry));
    EXPECT_EQ(map_layout("bpfnet_pub_port")->key_size, sizeof(bpfnet_svc_key));
    EXPECT_TRUE(map_layout("bpfnet_drops")->per_cpu_sum);
    EXPECT_EQ(map_layout("bpfnet_events")->key, nullptr);  // a ring buffer: read by monitor
    EXPECT_EQ(map_layout("nosuch"), nullptr);
    for (const char* name :
         {"bpfnet_net", "bpfnet_ep_by_if", "bpfnet_ep_by_ip", "bpfnet_subnets", "bpfnet_ep_stats",
          "bpfnet_drops", "bpfnet_tunnel", "bpfnet_vni", "bpfnet_vx_cfg", "bpfnet_pub_port",
          "bpfnet_local_ip", "bpfnet_ct", "bpfnet_nat_cnt", "bpfnet_sk_orig", "bpfnet_sk_cfg",
          "bpfnet_sk_netns", "bpfnet_sk_stats", "bpfnet_pl_stats", "bpfnet_mon_cfg"}) {
        const MapLayout* l = map_layout(name);
        ASSERT_NE(l, nullptr) << name;
        EXPECT_TRUE(l->key && l->value) << name;
        EXPECT_FALSE(l->what.empty()) << name;
    }
}

TEST(InspectDecode, ConntrackEntriesInWords) {
    bpfnet_ct_key key{};
    key.saddr = be_ip("192.0.2.10");
    key.daddr = be_ip("198.51.100.1");
    key.sport = htons(40000);
    key.dport = htons(8080);
    key.proto = 6;
    key.dir = BPFNET_CT_DIR_IN;
    bpfnet_ct_entry value{};
    value.expires_ns = 5'000'000'000ull + 30'000'000'000ull;
    value.packets = 4;
    value.bytes = 300;
    value.nat_addr = be_ip("10.1.0.2");
    value.nat_port = htons(80);
    value.flags = BPFNET_CT_F_SYN | BPFNET_CT_F_REPLIED;
    value.ifindex = 7;
    value.network = 42;
    const uint8_t mac[6] = {0x02, 0x42, 0x0a, 0x01, 0x00, 0x02};
    std::memcpy(value.dmac, mac, 6);

    const MapLayout* l = map_layout("bpfnet_ct");
    EXPECT_EQ(
        l->key(bytes(key), fake_names).dump(),
        R"({"src":"192.0.2.10","sport":40000,"dst":"198.51.100.1","dport":8080,"proto":"tcp","dir":"in"})");
    const json v = l->value(bytes(value), fake_names, 5'000'000'000ull);
    EXPECT_EQ(v["expires_in_s"], 30);
    EXPECT_EQ(v["nat_ip"], "10.1.0.2");
    EXPECT_EQ(v["nat_port"], 80);
    EXPECT_EQ(v["flags"], json::array({"syn", "replied"}));
    EXPECT_EQ(v["interface"], "bnv-abc");
    EXPECT_EQ(v["bridge"], "bn-net");
    EXPECT_EQ(v["dmac"], "02:42:0a:01:00:02");
    // An entry past its expiry says 0, never a negative or wrapped number.
    EXPECT_EQ(l->value(bytes(value), fake_names, 99'000'000'000ull)["expires_in_s"], 0);
}

TEST(InspectDecode, NetworksEndpointsAndPublishedPorts) {
    bpfnet_net_info net{};
    net.subnet = be_ip("10.1.0.0");
    net.gateway = be_ip("10.1.0.1");
    net.prefix_len = 24;
    net.flags = BPFNET_NET_ICC | BPFNET_NET_INTERNAL;
    net.bridge_ifindex = 3;
    EXPECT_EQ(
        fields_text(map_layout("bpfnet_net")->value(bytes(net), fake_names, 0)),
        "subnet=10.1.0.0/24 gateway=10.1.0.1 gateway_mac=00:00:00:00:00:00 flags=icc,internal "
        "bridge_ifindex=3 bridge=bn-net");
    uint32_t network = 42;
    EXPECT_EQ(fields_text(map_layout("bpfnet_net")->key(bytes(network), fake_names)),
              "network=42 bridge=bn-net");

    // Keys name networks by datapath ID, whatever ifindex their bridge has.
    bpfnet_ep_key ep{42, be_ip("10.1.0.5")};
    EXPECT_EQ(fields_text(map_layout("bpfnet_ep_by_ip")->key(bytes(ep), fake_names)),
              "network=42 bridge=bn-net ip=10.1.0.5");
    bpfnet_ep_key gone{3, be_ip("10.1.0.5")};
    EXPECT_EQ(fields_text(map_layout("bpfnet_ep_by_ip")->key(bytes(gone), fake_names)),
              "network=3 bridge=- ip=10.1.0.5");
    bpfnet_ep_dest dest{};
    dest.ifindex = 9;  // gone: no name
    dest.flags = BPFNET_EP_F_XDP_TARGET;
    EXPECT_EQ(fields_text(map_layout("bpfnet_ep_by_ip")->value(bytes(dest), fake_names, 0)),
              "ifindex=9 interface=- mac=00:00:00:00:00:00 flags=xdp-target");

    bpfnet_svc_key svc{0, htons(8080), 17, 0};
    EXPECT_EQ(fields_text(map_layout("bpfnet_pub_port")->key(bytes(svc), fake_names)),
              "host_ip=0.0.0.0 host_port=8080 proto=udp");
}

TEST(InspectDecode, NamesOfReasonsCountersProtocols) {
    EXPECT_EQ(drop_reason_name(BPFNET_DROP_SPOOFED_IP), "spoofed-ip");
    EXPECT_EQ(drop_reason_name(BPFNET_DROP_UNKNOWN_VNI), "unknown-vni");
    EXPECT_EQ(drop_reason_name(0), "none");
    EXPECT_EQ(drop_reason_name(42), "reason-42");
    EXPECT_EQ(drop_reason_text(BPFNET_DROP_SPOOFED_MAC), "source MAC is not the endpoint's");
    EXPECT_EQ(nat_counter_name(BPFNET_NAT_DNAT_NEW), "dnat-new");
    EXPECT_EQ(protocol_name(132), "sctp");
    EXPECT_EQ(protocol_name(47), "47");
    EXPECT_EQ(protocol_number("udp"), 17);
    EXPECT_FALSE(protocol_number("foo"));
    // Every drop reason the datapath has, has a name.
    for (uint32_t r = 1; r < BPFNET_DROP_REASON_MAX; ++r)
        EXPECT_EQ(drop_reason_name(r).rfind("reason-", 0), std::string::npos) << r;
    for (uint32_t c = 0; c < BPFNET_NAT_COUNTER_MAX; ++c)
        EXPECT_EQ(nat_counter_name(c).rfind("counter-", 0), std::string::npos) << c;
}

TEST(InspectDecode, PerCpuCountersAreSummed) {
    // Two CPUs, struct bpfnet_drop_stats {packets, bytes} each (16 bytes, already 8-aligned).
    const uint64_t slots[4] = {3, 300, 4, 400};
    auto sum = sum_per_cpu({reinterpret_cast<const uint8_t*>(slots), sizeof(slots)}, 16, 2);
    const json v = map_layout("bpfnet_drops")->value(sum.data(), fake_names, 0);
    EXPECT_EQ(v["packets"], 7);
    EXPECT_EQ(v["bytes"], 700);
    // A value whose size is not a multiple of 8 occupies a rounded-up slot per CPU.
    const uint64_t odd[2] = {5, 6};
    auto one = sum_per_cpu({reinterpret_cast<const uint8_t*>(odd), sizeof(odd)}, 8, 2);
    uint64_t total = 0;
    std::memcpy(&total, one.data(), 8);
    EXPECT_EQ(total, 11u);
}

}  // namespace
}  // namespace bpfnet::inspect

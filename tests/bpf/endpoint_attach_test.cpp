// The endpoint program on real veths: three network namespaces, a "host" holding the host ends of
// two endpoint veths (no bridge: whatever reaches the other endpoint went through BPF) and two
// sandboxes. Proves what BPF_PROG_TEST_RUN cannot: that bpf_redirect_peer from the host end's
// ingress really delivers into the other sandbox, and that bpf_redirect_peer(skb->ifindex) -- the
// ARP reply sent back to the veth it came from -- arrives in the sender's own sandbox; plus the
// kernel-side facts the program relies on (VLAN tags arrive as skb metadata, packet sockets can
// send truncated IPv4 headers).
//
// Needs root, ip(8) and ping. Names start with "bnt" and addresses are in 10.212.0.0/16; the
// namespaces are removed in every case (and left-overs of a crashed run first). The maps are not
// pinned.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bpf/endpoint.skel.h"
#include "bpf/test_netns.h"
#include "bpfnet/abi.h"
#include "common/privileged.h"
#include "core/ipv4.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "datapath/tc_attach.h"
#include "maps/endpoint_maps.h"
#include "maps/network_maps.h"

namespace bpfnet {
namespace {

using testing::capture;
using testing::InNetns;
using testing::sh;

uint32_t be(const char* addr) {
    return Ipv4::parse(addr)->network_order();
}

// Destination MAC, source MAC, EtherType.
std::vector<uint8_t> ethernet(const char* dst, const char* src, uint16_t ethertype) {
    std::vector<uint8_t> frame;
    const auto d = MacAddr::parse(dst)->bytes;
    const auto s = MacAddr::parse(src)->bytes;
    frame.insert(frame.end(), d.begin(), d.end());
    frame.insert(frame.end(), s.begin(), s.end());
    frame.push_back(static_cast<uint8_t>(ethertype >> 8));
    frame.push_back(static_cast<uint8_t>(ethertype));
    return frame;
}

// An IPv4 header 10.212.0.2 -> 10.212.0.3, protocol UDP, no payload (checksum irrelevant: the
// frames using it are dropped before anything checks it).
constexpr std::array<uint8_t, 20> kIpv4Header = {0x45, 0, 0,  20,  0, 0, 0x40, 0,   64, 17,
                                                 0,    0, 10, 212, 0, 2, 10,   212, 0,  3};

struct Sandbox {
    std::string ns;        // the container's netns
    std::string host_if;   // host end, in the host netns
    const char* ip;        // on eth0 in the sandbox, /24
    const char* mac;       // of eth0
    uint32_t ifindex = 0;  // of host_if, in the host netns
};

constexpr uint32_t kNetwork = 77;  // no bridge here, so any key
constexpr const char* kGateway = "10.212.0.1";
constexpr const char* kGatewayMac = "02:42:0a:d4:00:01";

class EndpointAttach : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string id = std::to_string(getpid());
        host_ = "bnth" + id;
        a_ = {"bnta" + id, "bnt-ha", "10.212.0.2", "02:42:0a:d4:00:02"};
        b_ = {"bntb" + id, "bnt-hb", "10.212.0.3", "02:42:0a:d4:00:03"};
        remove_netns();
    }

    void TearDown() override {
        skel_.reset();
        remove_netns();
    }

    void remove_netns() {
        for (const auto& ns : {a_.ns, b_.ns, host_}) sh("ip netns del " + ns);
    }

    void create_topology() {
        ASSERT_EQ(sh("ip netns add " + host_), 0) << "ip netns add failed";
        ASSERT_EQ(sh("ip -n " + host_ + " link set lo up"), 0);
        for (Sandbox* sb : {&a_, &b_}) {
            ASSERT_EQ(sh("ip netns add " + sb->ns), 0);
            ASSERT_EQ(sh("ip -n " + host_ + " link add " + sb->host_if +
                         " type veth peer name eth0 address " + sb->mac + " netns " + sb->ns),
                      0);
            ASSERT_EQ(sh("ip -n " + host_ + " link set " + sb->host_if + " up"), 0);
            ASSERT_EQ(sh("ip -n " + sb->ns + " link set lo up"), 0);
            ASSERT_EQ(sh("ip -n " + sb->ns + " addr add " + sb->ip + "/24 dev eth0"), 0);
            ASSERT_EQ(sh("ip -n " + sb->ns + " link set eth0 up"), 0);
            InNetns in(host_);
            ASSERT_TRUE(in.ok());
            sb->ifindex = if_nametoindex(sb->host_if.c_str());
            ASSERT_NE(sb->ifindex, 0u);
        }
    }

    void load_and_attach() {
        ASSERT_TRUE(skel_.open().ok());
        struct bpf_map* map = nullptr;
        bpf_object__for_each_map(map, skel_->obj) {
            ASSERT_EQ(bpf_map__set_pin_path(map, nullptr), 0);
        }
        const Status loaded = skel_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        const int prog_fd = bpf_program__fd(skel_->progs.bpfnet_from_ep);

        // Filled through the agent's own typed maps (userspace/maps/).
        NetworkMaps networks(bpf_map__fd(skel_->maps.bpfnet_net),
                             bpf_map__fd(skel_->maps.bpfnet_subnets));
        const Status net = networks.put(NetworkEntry{.id = kNetwork,
                                                     .subnet = *Cidr::parse("10.212.0.0/24"),
                                                     .gateway = *Ipv4::parse(kGateway),
                                                     .flags = BPFNET_NET_ICC,
                                                     .gateway_mac = *MacAddr::parse(kGatewayMac)});
        ASSERT_TRUE(net.ok()) << net.error().message;
        EndpointMaps endpoints(bpf_map__fd(skel_->maps.bpfnet_ep_by_if),
                               bpf_map__fd(skel_->maps.bpfnet_ep_by_ip),
                               bpf_map__fd(skel_->maps.bpfnet_ep_stats));
        for (const Sandbox* sb : {&a_, &b_}) {
            const Status ep = endpoints.put(EndpointEntry{.ifindex = sb->ifindex,
                                                          .network = kNetwork,
                                                          .ip = *Ipv4::parse(sb->ip),
                                                          .mac = *MacAddr::parse(sb->mac)});
            ASSERT_TRUE(ep.ok()) << ep.error().message;
        }

        // Attach in the host netns (ifindexes are per netns) as the agent does: a filter on the
        // ingress qdisc, attached twice as a restarting agent re-attaches, which must swap the
        // program in place (one filter) without a warning in the log. b's veth has the clsact
        // an earlier version made: the filter goes on it.
        InNetns in(host_);
        ASSERT_TRUE(in.ok());
        ASSERT_EQ(std::system(("tc qdisc add dev " + b_.host_if + " clsact").c_str()), 0);
        route_libbpf_log_to_spdlog();
        auto warnings = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
        warnings->set_level(spdlog::level::warn);
        spdlog::default_logger()->sinks().push_back(warnings);
        const TcIngressHook hook = endpoint_veth_hook();
        for (int round = 0; round < 2; ++round) {
            for (const Sandbox* sb : {&a_, &b_}) {
                const Status attached =
                    attach_tc_ingress(hook, prog_fd, sb->host_if, static_cast<int>(sb->ifindex));
                ASSERT_TRUE(attached.ok()) << attached.error().message;
                EXPECT_TRUE(clsact_filter_present(static_cast<int>(sb->ifindex), 1));
            }
        }
        spdlog::default_logger()->sinks().pop_back();
        EXPECT_EQ(warnings->last_formatted(), std::vector<std::string>{});
        for (const Sandbox* sb : {&a_, &b_}) {
            const std::string filters = capture("tc filter show dev " + sb->host_if + " ingress");
            size_t programs = 0;
            for (size_t at = 0; (at = filters.find("name bpfnet_from_ep", at)) != std::string::npos;
                 ++at)
                ++programs;
            EXPECT_EQ(programs, 1u) << filters;
            const std::string qdiscs = capture("tc qdisc show dev " + sb->host_if);
            EXPECT_NE(qdiscs.find(sb == &a_ ? "qdisc ingress ffff:" : "qdisc clsact ffff:"),
                      std::string::npos)
                << qdiscs;
        }
    }

    bpfnet_ep_stats ep_stats(uint32_t ifindex) const {
        std::vector<bpfnet_ep_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        bpfnet_ep_stats sum{};
        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.bpfnet_ep_stats), &ifindex,
                                per_cpu.data()) != 0)
            return sum;
        for (const auto& s : per_cpu) {
            sum.from_packets += s.from_packets;
            sum.to_packets += s.to_packets;
        }
        return sum;
    }

    uint64_t drops(uint32_t reason) const {
        std::vector<bpfnet_drop_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
        uint64_t n = 0;
        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.bpfnet_drops), &reason, per_cpu.data()) ==
            0)
            for (const auto& s : per_cpu) n += s.packets;
        return n;
    }

    std::vector<bpfnet_event> events() const {
        std::vector<bpfnet_event> out;
        auto on_event = [](void* ctx, void* data, size_t size) -> int {
            bpfnet_event ev{};
            std::memcpy(&ev, data, std::min(size, sizeof(ev)));
            static_cast<std::vector<bpfnet_event>*>(ctx)->push_back(ev);
            return 0;
        };
        struct ring_buffer* rb =
            ring_buffer__new(bpf_map__fd(skel_->maps.bpfnet_events), on_event, &out, nullptr);
        if (rb) {
            ring_buffer__consume(rb);
            ring_buffer__free(rb);
        }
        return out;
    }

    // Received packets are processed asynchronously (veth -> backlog -> softirq).
    static bool eventually(const std::function<bool()>& cond) {
        for (int i = 0; i < 100; ++i) {
            if (cond()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return cond();
    }

    // Sends `frame` as is out of the sandbox's eth0 through a packet socket.
    void send_raw(const Sandbox& sb, const std::vector<uint8_t>& frame) const {
        InNetns in(sb.ns);
        ASSERT_TRUE(in.ok());
        const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        sockaddr_ll addr{};
        addr.sll_family = AF_PACKET;
        addr.sll_ifindex = static_cast<int>(if_nametoindex("eth0"));
        addr.sll_halen = 6;
        std::memcpy(addr.sll_addr, frame.data(), 6);
        const ssize_t sent = sendto(fd, frame.data(), frame.size(), 0,
                                    reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
        const int err = errno;
        close(fd);
        ASSERT_EQ(sent, static_cast<ssize_t>(frame.size())) << std::strerror(err);
    }

    std::string exec_in(const Sandbox& sb, const std::string& cmd) const {
        return "ip netns exec " + sb.ns + " " + cmd;
    }

    std::string host_;
    Sandbox a_;
    Sandbox b_;
    BpfSkeleton<endpoint> skel_;
};

TEST_F(EndpointAttach, ForwardsBetweenSandboxesAndAnswersArpOnRealVeths) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_EQ(sh("{ command -v ip && command -v ping; }"), 0)
        << "needs ip(8) and ping (scripts/install-deps.sh)";
    ASSERT_NO_FATAL_FAILURE(create_topology());
    ASSERT_NO_FATAL_FAILURE(load_and_attach());

    // A -> B and back. Both neighbour lookups (A for B, B for A) are answered by the program with
    // bpf_redirect_peer(skb->ifindex): nothing else in the host netns could answer them.
    EXPECT_EQ(sh(exec_in(a_, "ping -c 3 -i 0.2 -W 2 ") + b_.ip), 0) << "A cannot ping B";
    EXPECT_GE(ep_stats(b_.ifindex).to_packets, 3u);  // requests, redirected to B's peer
    EXPECT_GE(ep_stats(a_.ifindex).to_packets, 3u);  // replies
    EXPECT_GE(ep_stats(a_.ifindex).from_packets, 4u);
    const std::string neigh_b = capture("ip -n " + a_.ns + " neigh show " + b_.ip);
    EXPECT_NE(neigh_b.find(b_.mac), std::string::npos) << neigh_b;

    // The gateway: nobody owns 10.212.0.1 here, yet A learns the gateway MAC from the program.
    // (The ping itself goes to the host netns, which drops it.)
    sh(exec_in(a_, "ping -c 1 -W 1 ") + kGateway);
    const std::string neigh_gw = capture("ip -n " + a_.ns + " neigh show " + kGateway);
    EXPECT_NE(neigh_gw.find(kGatewayMac), std::string::npos) << neigh_gw;

    uint64_t total = 0;
    for (uint32_t r = 0; r < BPFNET_DROP_REASON_MAX; ++r) total += drops(r);
    EXPECT_EQ(total, 0u);
}

TEST_F(EndpointAttach, DropsSpoofedTaggedAndTruncatedTrafficOnRealVeths) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_EQ(sh("{ command -v ip && command -v ping; }"), 0)
        << "needs ip(8) and ping (scripts/install-deps.sh)";
    ASSERT_NO_FATAL_FAILURE(create_topology());
    ASSERT_NO_FATAL_FAILURE(load_and_attach());
    ASSERT_EQ(sh(exec_in(a_, "ping -c 1 -W 2 ") + b_.ip), 0);

    // A second address the agent never gave A.
    ASSERT_EQ(sh("ip -n " + a_.ns + " addr add 10.212.0.9/24 dev eth0"), 0);
    EXPECT_NE(sh(exec_in(a_, "ping -c 1 -W 1 -I 10.212.0.9 ") + b_.ip), 0);
    EXPECT_GE(drops(BPFNET_DROP_SPOOFED_IP), 1u);

    // An 802.1Q-tagged frame. The receive path moves the tag into skb metadata before TC ingress
    // runs, so this checks the program's vlan_present test, which test runs cannot reach. (A
    // packet socket instead of a VLAN device: not every kernel has CONFIG_VLAN_8021Q.)
    std::vector<uint8_t> tagged = ethernet(b_.mac, a_.mac, 0x8100);
    tagged.insert(tagged.end(), {0x00, 0x05, 0x08, 0x00});
    tagged.insert(tagged.end(), kIpv4Header.begin(), kIpv4Header.end());
    ASSERT_NO_FATAL_FAILURE(send_raw(a_, tagged));
    EXPECT_TRUE(eventually([&] { return drops(BPFNET_DROP_VLAN_TAGGED) >= 1; }));

    // A frame that claims IPv4 but stops 10 bytes into the header: packet sockets allow it.
    std::vector<uint8_t> truncated = ethernet(b_.mac, a_.mac, 0x0800);
    truncated.insert(truncated.end(), kIpv4Header.begin(), kIpv4Header.begin() + 10);
    ASSERT_NO_FATAL_FAILURE(send_raw(a_, truncated));
    EXPECT_TRUE(eventually([&] { return drops(BPFNET_DROP_MALFORMED) >= 1; }));

    // The events say what was dropped: the tag's TPID comes from skb metadata here.
    bool saw_spoofed = false;
    bool saw_vlan = false;
    bool saw_malformed = false;
    for (const bpfnet_event& ev : events()) {
        EXPECT_EQ(ev.ifindex, a_.ifindex);
        if (ev.reason == BPFNET_DROP_SPOOFED_IP && ev.saddr == be("10.212.0.9")) {
            saw_spoofed = ev.daddr == be(b_.ip) && ev.protocol == 1;
        } else if (ev.reason == BPFNET_DROP_VLAN_TAGGED) {
            // skb->len no longer counts the 4 tag bytes the receive path took out of the frame.
            saw_vlan = ev.eth_proto == htons(0x8100) && ev.len + 4 == tagged.size();
        } else if (ev.reason == BPFNET_DROP_MALFORMED) {
            saw_malformed = ev.eth_proto == htons(0x0800) && ev.len == truncated.size();
        }
    }
    EXPECT_TRUE(saw_spoofed);
    EXPECT_TRUE(saw_vlan);
    EXPECT_TRUE(saw_malformed);
}

}  // namespace
}  // namespace bpfnet

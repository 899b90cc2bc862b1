// The pipeline program through its skeleton and BPF_PROG_TEST_RUN, the packet builder the BPF tests
// share, and the datapath probe. Together they prove the BPF build pipeline end to end: clang ->
// object -> skeleton -> load -> verifier -> run -> map read-back.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "bpf/frame_fuzz.h"
#include "bpf/packet_builder.h"
#include "bpf/pipeline.skel.h"
#include "bpfnet/abi.h"
#include "common/privileged.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "datapath/probe.h"

namespace bpfnet {
namespace {

using testing::checksum_errors;
using testing::ip;
using testing::mac;
using testing::PacketBuilder;

struct RunOutput {
    int err = 0;
    uint32_t retval = 0;
    std::vector<uint8_t> data;
};

// One BPF_PROG_TEST_RUN of `prog_fd` on `in`, `repeat` times.
RunOutput test_run(int prog_fd, const std::vector<uint8_t>& in, int repeat = 1) {
    RunOutput out;
    // Room for programs that grow the packet (encapsulation) in later tests.
    out.data.resize(in.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = static_cast<__u32>(in.size());
    opts.data_out = out.data.data();
    // Always set: without it the kernel assumes data_out is big enough for whatever it produced.
    opts.data_size_out = static_cast<__u32>(out.data.size());
    opts.repeat = repeat;
    out.err = bpf_prog_test_run_opts(prog_fd, &opts);
    out.retval = opts.retval;
    out.data.resize(out.err == 0 ? opts.data_size_out : 0);
    return out;
}

bpfnet_pipeline_stats read_stats(const BpfSkeleton<pipeline>& skel) {
    const __u32 key = BPFNET_PIPELINE_STATS_KEY;
    bpfnet_pipeline_stats stats{};
    const int err = bpf_map__lookup_elem(skel->maps.bpfnet_pl_stats, &key, sizeof(key), &stats,
                                         sizeof(stats), 0);
    EXPECT_EQ(err, 0) << libbpf_error_text(err);
    return stats;
}

std::vector<uint8_t> udp_frame() {
    return PacketBuilder()
        .eth(mac("02:42:0a:00:00:02"), mac("02:42:0a:00:00:03"))
        .ipv4(ip("10.0.0.2"), ip("10.0.0.3"))
        .udp(40000, 5353)
        .payload("bpfnet pipeline")
        .pad_to(64)
        .build();
}

// ---- packet builder (no privileges needed) ----

TEST(PacketBuilder, Ipv4HeaderChecksumMatchesKnownVector) {
    // The textbook example header (RFC 1071 style worked example), checksum field zeroed: b861.
    const std::vector<uint8_t> hdr{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(testing::inet_checksum(hdr.data(), hdr.size()), 0xb861);
}

TEST(PacketBuilder, BuildsValidUdpTcpIcmpFrames) {
    const auto udp = udp_frame();
    ASSERT_EQ(udp.size(), 64u);
    EXPECT_EQ(udp[12], 0x08);
    EXPECT_EQ(udp[13], 0x00);
    // IPv4 total length excludes the Ethernet padding: 20 + 8 + 15.
    EXPECT_EQ(udp[testing::kEthHdrLen + 2] << 8 | udp[testing::kEthHdrLen + 3], 43);
    EXPECT_EQ(checksum_errors(udp), "");

    const auto tcp = PacketBuilder()
                         .ipv4(ip("192.168.1.10"), ip("172.17.0.2"))
                         .tcp(51000, 8080, testing::kTcpSyn | testing::kTcpAck, 1000, 2000)
                         .payload("abc")  // odd length exercises the checksum's zero padding
                         .build();
    EXPECT_EQ(tcp.size(), testing::kEthHdrLen + testing::kIpv4HdrLen + testing::kTcpHdrLen + 3);
    EXPECT_EQ(checksum_errors(tcp), "");

    const auto icmp = PacketBuilder().icmp_echo(0x1234, 7).payload("ping").build();
    EXPECT_EQ(icmp[testing::kEthHdrLen + testing::kIpv4HdrLen], 8);  // echo request
    EXPECT_EQ(checksum_errors(icmp), "");
}

TEST(PacketBuilder, ChecksumErrorsSpotsCorruption) {
    auto frame = udp_frame();
    frame[testing::kEthHdrLen + 12] ^= 0x01;  // source address, covered by both checksums
    EXPECT_EQ(checksum_errors(frame), "bad IPv4 header checksum");

    frame = udp_frame();
    frame[testing::kEthHdrLen + testing::kIpv4HdrLen + 1] ^= 0x01;  // UDP source port
    EXPECT_EQ(checksum_errors(frame), "bad UDP checksum");
}

TEST(PacketBuilder, BuildsArpRequestAndReply) {
    const auto req = testing::arp_request(mac("02:42:0a:00:00:02"), ip("10.0.0.2"), ip("10.0.0.1"));
    ASSERT_EQ(req.size(), testing::kEthMinFrame);
    EXPECT_EQ(std::vector<uint8_t>(req.begin(), req.begin() + 6), std::vector<uint8_t>(6, 0xff));
    EXPECT_EQ(req[12], 0x08);
    EXPECT_EQ(req[13], 0x06);
    EXPECT_EQ(req[testing::kEthHdrLen + 7], testing::kArpRequest);
    // Target protocol address 10.0.0.1 at offset 24 of the ARP body.
    EXPECT_EQ(std::vector<uint8_t>(req.begin() + 38, req.begin() + 42),
              (std::vector<uint8_t>{10, 0, 0, 1}));

    const auto reply = testing::arp_reply(mac("02:42:0a:00:00:01"), ip("10.0.0.1"),
                                          mac("02:42:0a:00:00:02"), ip("10.0.0.2"));
    EXPECT_EQ(reply[testing::kEthHdrLen + 7], testing::kArpReply);
    EXPECT_EQ(reply[5], 0x02);  // unicast to the requester
}

// ---- skeleton wrapper and error model (no privileges needed) ----

TEST(BpfSkeleton, OpenNeedsNoPrivilegesAndMoves) {
    BpfSkeleton<pipeline> skel;
    EXPECT_FALSE(skel.load().ok());  // load before open is a usage error, not a crash
    ASSERT_TRUE(skel.open().ok());
    EXPECT_EQ(skel.name(), "pipeline");
    EXPECT_FALSE(skel.open().ok());

    BpfSkeleton<pipeline> moved = std::move(skel);
    EXPECT_FALSE(skel.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is defined
    EXPECT_TRUE(moved.is_open());
    EXPECT_EQ(moved->rodata->pipeline_verdict, static_cast<__u32>(TC_ACT_OK));
}

TEST(LibbpfError, PermissionErrorsAreUnsupportedWithAHint) {
    const Error eperm = libbpf_error("loading x", -EPERM);
    EXPECT_EQ(eperm.kind, ErrorKind::Unsupported);
    EXPECT_EQ(eperm.message, "loading x: Operation not permitted (needs CAP_BPF/root)");
    EXPECT_EQ(libbpf_error("loading x", EINVAL).kind, ErrorKind::Internal);
    EXPECT_EQ(libbpf_error_text(-524), "Operation not supported by the kernel (ENOTSUPP)");
}

// ---- the pipeline program (root) ----

class Pipeline : public ::testing::Test {
  protected:
    // Loads the pipeline with `verdict` as its rodata knob.
    void load(__u32 verdict = TC_ACT_OK) {
        const Status opened = skel_.open();
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        // Knobs are written between open and load; after load the rodata map is frozen.
        skel_->rodata->pipeline_verdict = verdict;
        const Status loaded = skel_.load();
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        prog_fd_ = bpf_program__fd(skel_->progs.bpfnet_pipeline);
        ASSERT_GE(prog_fd_, 0);
    }

    BpfSkeleton<pipeline> skel_;
    int prog_fd_ = -1;
};

TEST_F(Pipeline, PassesUdpPacketUnchangedAndCountsIt) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_frame();

    const RunOutput out = test_run(prog_fd_, in);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(out.data, in);  // byte-identical, same length

    const auto stats = read_stats(skel_);
    EXPECT_EQ(stats.packets, 1u);
    EXPECT_EQ(stats.bytes, in.size());  // skb->len covers the Ethernet header and the padding
}

TEST_F(Pipeline, RepeatRunsCountEveryRun) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const auto in = udp_frame();

    ASSERT_EQ(test_run(prog_fd_, in).err, 0);
    const RunOutput out = test_run(prog_fd_, in, 10);
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK));
    EXPECT_EQ(out.data, in);

    const auto stats = read_stats(skel_);
    EXPECT_EQ(stats.packets, 11u);
    EXPECT_EQ(stats.bytes, 11 * in.size());
}

TEST_F(Pipeline, RodataKnobChoosesTheVerdict) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load(TC_ACT_SHOT));

    const RunOutput out = test_run(prog_fd_, udp_frame());
    ASSERT_EQ(out.err, 0) << libbpf_error_text(out.err);
    EXPECT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_SHOT));
    EXPECT_EQ(read_stats(skel_).packets, 1u);  // dropped packets are still counted
}

// The program the probe runs on every host sees whatever a test run gives it: mutated and random
// frames, as in the endpoint and uplink fuzz tests. Each one runs (or the kernel refuses it as too
// short), comes back unchanged with the configured verdict, and is counted with its length.
TEST_F(Pipeline, FuzzedFramesPassUnchangedAndAreAllCounted) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    const std::vector<std::vector<uint8_t>> seeds = {
        udp_frame(),
        PacketBuilder()
            .eth(mac("02:42:0a:00:00:02"), mac("02:42:0a:00:00:03"))
            .ipv4(ip("10.0.0.2"), ip("10.0.0.3"))
            .tcp(40000, 443, testing::kTcpSyn)
            .build(),
        testing::arp_request(mac("02:42:0a:00:00:02"), ip("10.0.0.2"), ip("10.0.0.1")),
        PacketBuilder()
            .eth(mac("02:42:0a:00:00:02"), mac("02:42:0a:00:00:03"))
            .ipv6(testing::ip6("2001:db8::2"), testing::ip6("2001:db8::3"))
            .udp(40000, 53)
            .build(),
    };
    uint64_t runs = 0, bytes = 0;
    for (const auto& frame : testing::mutated_frames(seeds, 20000, 0x91e)) {
        const RunOutput out = test_run(prog_fd_, frame);
        if (out.err != 0) {
            EXPECT_TRUE(testing::test_run_refuses(frame)) << libbpf_error_text(out.err);
            EXPECT_EQ(out.err, -EINVAL) << libbpf_error_text(out.err);
            continue;
        }
        ASSERT_EQ(out.retval, static_cast<uint32_t>(TC_ACT_OK))
            << "verdict " << out.retval << " for a frame of " << frame.size() << " bytes";
        ASSERT_EQ(out.data, frame);
        ++runs;
        bytes += frame.size();
    }
    EXPECT_GT(runs, 15000u);  // most frames are long enough to run
    const auto stats = read_stats(skel_);
    EXPECT_EQ(stats.packets, runs);
    EXPECT_EQ(stats.bytes, bytes);
}

TEST_F(Pipeline, EachLoadHasItsOwnCounters) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_NO_FATAL_FAILURE(load());
    ASSERT_EQ(test_run(prog_fd_, udp_frame()).err, 0);

    // The stats map is deliberately unpinned: a second load must start from zero, or probes and
    // tests would see each other's packets.
    BpfSkeleton<pipeline> second;
    ASSERT_TRUE(second.open_and_load().ok());
    EXPECT_EQ(read_stats(second).packets, 0u);
    EXPECT_EQ(read_stats(skel_).packets, 1u);
}

// ---- the datapath probe (root) ----

bool is_bpffs(const std::filesystem::path& path) {
    struct statfs st {};
    return statfs(path.c_str(), &st) == 0 &&
           static_cast<uint32_t>(st.f_type) == static_cast<uint32_t>(BPF_FS_MAGIC);
}

class Probe : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "bpfnet-probe-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        tmp_ = tmpl;
        // A directory that does not exist yet: the probe must create it, then mount bpffs on it.
        root_ = tmp_ / "bpffs";
    }
    void TearDown() override {
        // Unmount whatever the probe mounted (possibly more than once), then remove the temp dir.
        while (is_bpffs(root_) && umount2(root_.c_str(), MNT_DETACH) == 0) {
        }
        std::error_code ec;
        std::filesystem::remove_all(tmp_, ec);
    }

    std::filesystem::path tmp_;
    std::filesystem::path root_;
};

TEST_F(Probe, BpfIsUsableOnThisHost) {
    BPFNET_REQUIRE_PRIVILEGED();
    ASSERT_FALSE(is_bpffs(root_));

    const ProbeResult result = probe_datapath(root_.string());
    for (const auto& reason : result.reasons) ADD_FAILURE() << "probe reason: " << reason;
    EXPECT_TRUE(result.bpf_usable());
    EXPECT_TRUE(result.bpf_syscall);
    EXPECT_TRUE(result.prog_test_run);
    EXPECT_TRUE(result.bpffs);
    EXPECT_TRUE(result.bpffs_mounted_by_probe);
    EXPECT_TRUE(is_bpffs(root_));
    EXPECT_FALSE(result.kernel_release.empty());

    const auto json = to_json(result);
    EXPECT_EQ(json.at("bpf_usable"), true);
    EXPECT_EQ(json.at("kernel_release"), result.kernel_release);
    EXPECT_TRUE(json.at("reasons").empty());

    // A second probe finds the bpffs already there and leaves it alone.
    const ProbeResult again = probe_datapath(root_.string());
    EXPECT_TRUE(again.bpf_usable());
    EXPECT_FALSE(again.bpffs_mounted_by_probe);
}

TEST_F(Probe, TcxFollowsTheKernelVersion) {
    BPFNET_REQUIRE_PRIVILEGED();
    const ProbeResult result = probe_datapath(root_.string());
    int major = 0;
    int minor = 0;
    ASSERT_EQ(std::sscanf(result.kernel_release.c_str(), "%d.%d", &major, &minor), 2);
    EXPECT_EQ(result.tcx_link_api, major > 6 || (major == 6 && minor >= 6));
}

}  // namespace
}  // namespace bpfnet

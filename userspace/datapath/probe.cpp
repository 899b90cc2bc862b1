#include "datapath/probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "bpf/pipeline.skel.h"
#include "bpfnet/abi.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"

namespace bpfnet {
namespace {

bool on_bpffs(const std::string& path) {
    struct statfs st {};
    return statfs(path.c_str(), &st) == 0 &&
           static_cast<uint32_t>(st.f_type) == static_cast<uint32_t>(BPF_FS_MAGIC);
}

void check_bpffs(const std::string& root, ProbeResult& result) {
    if (on_bpffs(root)) {
        result.bpffs = true;
        return;
    }
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) {
        // Typically a path below an unmounted /sys/fs/bpf: sysfs refuses new directories.
        result.reasons.push_back("bpffs: cannot create " + root + ": " + ec.message() +
                                 " (give the bpffs mount point itself, e.g. /sys/fs/bpf)");
        return;
    }
    // Creating the directory may have put it on a bpffs mounted above it (e.g. /sys/fs/bpf/bpfnet).
    if (on_bpffs(root)) {
        result.bpffs = true;
        return;
    }
    if (mount("bpf", root.c_str(), "bpf", 0, nullptr) != 0) {
        const int err = errno;
        std::string reason =
            "bpffs is not mounted at " + root + " and mounting it failed: " + std::strerror(err);
        if (err == EPERM) reason += " (needs CAP_SYS_ADMIN/root)";
        result.reasons.push_back(std::move(reason));
        return;
    }
    result.bpffs_mounted_by_probe = true;
    result.bpffs = on_bpffs(root);
    if (!result.bpffs)
        result.reasons.push_back("bpffs: mounted at " + root + " but statfs disagrees");
    spdlog::info("probe: mounted bpffs at {}", root);
}

// Runs the loaded pipeline program once on a minimal 64-byte frame and checks the verdict, the
// output and the stats map: the same path every BPF unit test relies on.
void check_test_run(const BpfSkeleton<pipeline>& skel, ProbeResult& result) {
    // Broadcast Ethernet with ethertype 0x88b5 (IEEE 802 local experimental), zero payload: nothing
    // on the way treats it as real traffic.
    std::array<uint8_t, 64> frame{};
    std::memset(frame.data(), 0xff, 6);
    const std::array<uint8_t, 8> src_and_type{0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xb5};
    std::memcpy(frame.data() + 6, src_and_type.data(), src_and_type.size());
    std::array<uint8_t, 128> out{};

    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = frame.size();
    opts.data_out = out.data();
    // Without data_size_out the kernel may write as much as the program grew the packet.
    opts.data_size_out = out.size();
    opts.repeat = 1;

    const int prog_fd = bpf_program__fd(skel->progs.bpfnet_pipeline);
    if (int err = bpf_prog_test_run_opts(prog_fd, &opts); err != 0) {
        result.reasons.push_back("BPF_PROG_TEST_RUN failed: " + libbpf_error_text(err));
        return;
    }
    if (opts.retval != TC_ACT_OK) {
        result.reasons.push_back("BPF_PROG_TEST_RUN: pipeline returned " +
                                 std::to_string(opts.retval) + ", expected TC_ACT_OK");
        return;
    }
    if (opts.data_size_out != frame.size() ||
        std::memcmp(out.data(), frame.data(), frame.size()) != 0) {
        result.reasons.push_back("BPF_PROG_TEST_RUN: pipeline changed the packet");
        return;
    }
    const __u32 key = BPFNET_PIPELINE_STATS_KEY;
    bpfnet_pipeline_stats stats{};
    if (int err = bpf_map__lookup_elem(skel->maps.bpfnet_pl_stats, &key, sizeof(key), &stats,
                                       sizeof(stats), 0);
        err != 0) {
        result.reasons.push_back("reading the pipeline stats map failed: " +
                                 libbpf_error_text(err));
        return;
    }
    if (stats.packets != 1 || stats.bytes != frame.size()) {
        result.reasons.push_back("BPF_PROG_TEST_RUN: stats map counted " +
                                 std::to_string(stats.packets) + " packets/" +
                                 std::to_string(stats.bytes) + " bytes, expected 1/64");
        return;
    }
    result.prog_test_run = true;
}

// tcx (bpf_link based TC attach, BPF_TCX_INGRESS = 46 / BPF_TCX_EGRESS = 47) arrived in 6.6.
// Debian's libbpf 1.1.2 and 6.1 UAPI headers do not know it, and a real feature probe would mean
// attaching a program to a live device, so only the version is checked. A distribution kernel that
// backported tcx is reported without it, which costs nothing but the clsact fallback.
bool kernel_has_tcx(const std::string& release) {
    int major = 0;
    int minor = 0;
    if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) return false;
    return major > 6 || (major == 6 && minor >= 6);
}

}  // namespace

const std::set<std::string>& probe_check_names() {
    static const std::set<std::string> names{"bpf", "bpffs",         "test_run",
                                             "tcx", "redirect_peer", "btf"};
    return names;
}

namespace {

void apply_overrides(const ProbeOverrides& disabled, ProbeResult& result) {
    auto off = [&](const char* name, bool& flag) {
        if (!disabled.count(name) || !flag) return;
        flag = false;
        result.reasons.push_back(std::string(name) + ": disabled by --probe-disable");
    };
    off("bpf", result.bpf_syscall);
    off("bpffs", result.bpffs);
    off("test_run", result.prog_test_run);
    off("tcx", result.tcx_link_api);
    off("redirect_peer", result.redirect_peer);
    off("btf", result.btf);
}

}  // namespace

ProbeResult probe_datapath(const std::string& bpffs_root, const ProbeOverrides& disabled) {
    ProbeResult result;

    struct utsname uts {};
    if (uname(&uts) == 0) {
        result.kernel_release = uts.release;
    } else {
        result.reasons.push_back(std::string("uname failed: ") + std::strerror(errno));
    }
    result.tcx_link_api = kernel_has_tcx(result.kernel_release);

    check_bpffs(bpffs_root, result);

    BpfSkeleton<pipeline> skel;
    if (Status st = skel.open(); !st) {
        // Opening only parses the embedded object: failing here is a build problem, not the host's.
        result.reasons.push_back("pipeline program: " + st.error().message);
    } else if (Status st = skel.load(); !st) {
        result.reasons.push_back("bpf() failed: " + st.error().message);
    } else {
        result.bpf_syscall = true;
        check_test_run(skel, result);
    }

    if (result.bpf_syscall) {
        // 0 = missing, 1 = present, <0 = could not tell (treated as missing, with the reason).
        int has = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_redirect_peer, nullptr);
        result.redirect_peer = has == 1;
        if (has == 0)
            result.reasons.push_back("the kernel lacks the bpf_redirect_peer() helper (5.10+)");
        if (has < 0)
            result.reasons.push_back("probing bpf_redirect_peer() failed: " +
                                     libbpf_error_text(has));
    }
    result.btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
    if (!result.btf)
        result.reasons.push_back(
            "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
    apply_overrides(disabled, result);

    spdlog::debug("probe: kernel {} bpf {} bpffs {} test_run {} tcx {} redirect_peer {} btf {}",
                  result.kernel_release, result.bpf_syscall, result.bpffs, result.prog_test_run,
                  result.tcx_link_api, result.redirect_peer, result.btf);
    return result;
}

nlohmann::json to_json(const ProbeResult& result) {
    return {
        {"kernel_release", result.kernel_release},
        {"bpf_usable", result.bpf_usable()},
        {"bpf_syscall", result.bpf_syscall},
        {"bpffs", result.bpffs},
        {"bpffs_mounted_by_probe", result.bpffs_mounted_by_probe},
        {"prog_test_run", result.prog_test_run},
        {"tcx_link_api", result.tcx_link_api},
        {"redirect_peer", result.redirect_peer},
        {"btf", result.btf},
        {"reasons", result.reasons},
    };
}

}  // namespace bpfnet

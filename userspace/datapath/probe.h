// What this host can do for the BPF datapath. The agent runs the probe at start-up to pick each
// network's datapath (bpfnet.datapath=auto), and `bpfnet status` shows the result, reasons
// included, so a user on a kernel or machine without BPF learns why they got the kernel datapath.
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

namespace bpfnet {

struct ProbeResult {
    std::string kernel_release;  // uname -r
    bool bpf_syscall = false;    // bpf() works and the verifier accepted the pipeline program
    bool bpffs = false;  // bpffs_root is (now) on a mounted bpffs, so maps/links can be pinned
    bool bpffs_mounted_by_probe = false;  // the probe mounted it (was not mounted before)
    bool prog_test_run = false;  // BPF_PROG_TEST_RUN ran the program with the expected result
    bool tcx_link_api = false;   // kernel >= 6.6: TC attach through bpf_link (tcx) is available
    bool redirect_peer = false;  // the bpf_redirect_peer() helper exists for TC programs
    bool btf = false;            // the kernel exposes its BTF (/sys/kernel/btf/vmlinux)
    std::vector<std::string> reasons;  // one human sentence per failed check

    // Enough for the BPF datapath: programs load and run, and there is somewhere to pin. tcx is not
    // required: without it the datapath attaches through clsact/cls_bpf.
    bool bpf_usable() const { return bpf_syscall && prog_test_run && bpffs && redirect_peer; }
};

// Checks a test or an operator can force to fail (`bpfnetd --probe-disable NAME`), to exercise the
// fallback on a host where everything works: bpf, bpffs, test_run, tcx, redirect_peer, btf.
using ProbeOverrides = std::set<std::string>;
const std::set<std::string>& probe_check_names();

// Runs every check; never fails as a whole (a failed check is a result, with its reason). Side
// effect: when bpffs_root is not on a bpffs, creates the directory and mounts a bpffs there, as the
// agent would need it anyway. Needs root (CAP_BPF + CAP_SYS_ADMIN) for a fully positive result.
ProbeResult probe_datapath(const std::string& bpffs_root, const ProbeOverrides& disabled = {});

nlohmann::json to_json(const ProbeResult& result);

}  // namespace bpfnet

#include "datapath/tc_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/fd.h"
#include "core/link_info.h"
#include "core/pin_layout.h"
#include "core/result.h"
#include "datapath/libbpf_log.h"
#include "kernel/ingress_qdisc.h"
#include "kernel/netlink.h"

namespace bpfnet {

namespace {

// Debian's 6.1 UAPI headers predate tcx (6.6): these are the kernel's values.
constexpr int kBpfTcxIngress = 46;
constexpr uint32_t kBpfFBefore = 1U << 3;  // BPF_F_BEFORE: with no relative program, the head
std::string pin_path(const TcIngressHook& hook, const std::string& ifname) {
    return hook.links_dir + "/" + ifname;
}

}  // namespace

TcIngressHook endpoint_veth_hook(std::string links_dir) {
    return TcIngressHook{.links_dir = std::move(links_dir),
                         .tcx = false,
                         .clsact_handle = pin_layout::kEndpointFilterHandle,
                         .ingress_qdisc = true,
                         .first = false};
}

Status attach_tc_ingress(const TcIngressHook& hook, int prog_fd, const std::string& ifname,
                         int ifindex) {
    if (!hook.tcx) {
        // clsact or ingress + cls_bpf (direct action). BPF_TC_F_REPLACE swaps the program in
        // place, so a restarted agent replaces the old program without a gap. libbpf's filter
        // parent, ffff:fff2, names the ingress side of either qdisc.
        LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
        if (hook.ingress_qdisc) {
            BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
            BPFNET_TRY(kernel::add_ingress_qdisc(sock, ifindex));
        } else {
            // A device that already has its clsact (a restart's reconcile) answers EEXIST.
            ExpectedKernelErrors expected;
            int err = bpf_tc_hook_create(&tc_hook);
            if (err && err != -EEXIST)
                return fail(libbpf_error("creating clsact on " + ifname, err));
        }
        LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE,
                    .handle = hook.clsact_handle, .priority = pin_layout::kFilterPriority);
        if (int err2 = bpf_tc_attach(&tc_hook, &opts); err2)
            return fail(libbpf_error("attaching a program to " + ifname, err2));
        return {};
    }
    const std::string pin = pin_path(hook, ifname);
    int existing = bpf_obj_get(pin.c_str());
    if (existing >= 0) {
        Fd link(existing);
        BpfLinkInfo info{};
        uint32_t len = sizeof(info);
        bool live = bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0 &&
                    info.type == kBpfLinkTypeTcx &&
                    info.tcx.ifindex == static_cast<uint32_t>(ifindex);
        if (live) {
            // Re-adopt: swap the freshly loaded program into the running link atomically.
            if (int err = bpf_link_update(link.get(), prog_fd, nullptr); err)
                return fail(libbpf_error("updating the program of " + ifname, err));
            return {};
        }
        // The device behind this pin is gone (or was re-created): the link is defunct.
        ::unlink(pin.c_str());
    }
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = hook.first ? kBpfFBefore : 0);
    int fd = bpf_link_create(prog_fd, ifindex, static_cast<bpf_attach_type>(kBpfTcxIngress), &opts);
    if (fd < 0) return fail(libbpf_error("attaching a program to " + ifname + " (tcx)", fd));
    Fd link(fd);
    // Until pinned, the link lives only as long as this fd: a crash before the pin detaches it.
    if (int err = bpf_obj_pin(link.get(), pin.c_str()); err)
        return fail(libbpf_error("pinning the tcx link of " + ifname + " at " + pin, err));
    return {};
}

Status detach_tc_ingress(const TcIngressHook& hook, const std::string& ifname) {
    if (!hook.tcx) {
        const unsigned ifindex = if_nametoindex(ifname.c_str());
        if (ifindex == 0) return {};  // gone with its device
        LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = static_cast<int>(ifindex),
                    .attach_point = BPF_TC_INGRESS);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = hook.clsact_handle,
                    .priority = pin_layout::kFilterPriority);
        ExpectedKernelErrors expected;  // no qdisc or no filter: nothing to detach
        int err = bpf_tc_detach(&tc_hook, &opts);
        if (err && err != -ENOENT && err != -EINVAL)
            return fail(libbpf_error("detaching the program from " + ifname, err));
        return {};
    }
    const std::string pin = pin_path(hook, ifname);
    // The pin is the link's only reference: removing it detaches the program.
    if (::unlink(pin.c_str()) != 0 && errno != ENOENT)
        return fail(ErrorKind::Internal, fmt::format("removing {}: {}", pin, std::strerror(errno)));
    return {};
}

bool clsact_filter_present(int ifindex, uint32_t handle) {
    LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, query, .handle = handle, .priority = pin_layout::kFilterPriority);
    ExpectedKernelErrors expected;  // "no" is an answer here
    return bpf_tc_query(&tc_hook, &query) == 0;
}

}  // namespace bpfnet

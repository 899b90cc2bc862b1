#include "datapath/xdp_attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/fd.h"
#include "core/result.h"
#include "datapath/libbpf_log.h"

namespace bpfnet {

Status attach_xdp_native(const std::string& links_dir, int prog_fd, const std::string& ifname,
                         int ifindex) {
    const std::string pin = links_dir + "/" + ifname;
    int existing = bpf_obj_get(pin.c_str());
    if (existing >= 0) {
        Fd link(existing);
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0 &&
            info.type == BPF_LINK_TYPE_XDP && info.xdp.ifindex == static_cast<uint32_t>(ifindex)) {
            if (int err = bpf_link_update(link.get(), prog_fd, nullptr); err)
                return fail(libbpf_error("updating the XDP program of " + ifname, err));
            return {};
        }
        ::unlink(pin.c_str());  // the device went away: the link is defunct
    }
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
    if (fd == -EOPNOTSUPP) return fail(ErrorKind::Unsupported, "the driver has no native XDP");
    if (fd < 0) return fail(libbpf_error("attaching XDP to " + ifname, fd));
    Fd link(fd);
    if (int err = bpf_obj_pin(link.get(), pin.c_str()); err)
        return fail(libbpf_error("pinning the XDP link of " + ifname + " at " + pin, err));
    return {};
}

Status detach_xdp(const std::string& links_dir, const std::string& ifname) {
    const std::string pin = links_dir + "/" + ifname;
    if (::unlink(pin.c_str()) != 0 && errno != ENOENT)
        return fail(ErrorKind::Internal, fmt::format("removing {}: {}", pin, std::strerror(errno)));
    return {};
}

}  // namespace bpfnet

#include "kernel/child_links.h"

#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/route/link/ipvlan.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/vlan.h>

#include <optional>

#include <fmt/format.h>

#include "kernel/netns.h"
#include "kernel/nl_util.h"

namespace bpfnet::kernel {

Status create_child_link(NlSocket& host, const ChildLinkSpec& spec) {
    const std::string what =
        fmt::format("create {} {} on {} in {}", spec.kind, spec.name, spec.parent, spec.netns_path);
    BPFNET_TRY(check_ifname(spec.name, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr parent, require_link(host, spec.parent, what));
    BPFNET_ASSIGN_OR_RETURN(NetnsFd netns, NetnsFd::open(spec.netns_path));

    nl::LinkPtr link;
    if (spec.kind == "macvlan") {
        link.reset(rtnl_link_macvlan_alloc());
        if (!link) return out_of_memory(what);
        const int mode = rtnl_link_macvlan_str2mode(spec.mode.c_str());
        if (mode < 0)
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("{}: unknown macvlan mode \"{}\"", what, spec.mode));
        rtnl_link_macvlan_set_mode(link.get(), static_cast<uint32_t>(mode));
        if (!spec.mac.is_zero()) {
            nl::NlAddrPtr mac(nl_addr_build(AF_LLC, spec.mac.bytes.data(), spec.mac.bytes.size()));
            if (!mac) return out_of_memory(what);
            rtnl_link_set_addr(link.get(), mac.get());
        }
    } else if (spec.kind == "ipvlan") {
        link.reset(rtnl_link_ipvlan_alloc());
        if (!link) return out_of_memory(what);
        const int mode = rtnl_link_ipvlan_str2mode(spec.mode.c_str());
        if (mode < 0)
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("{}: unknown ipvlan mode \"{}\"", what, spec.mode));
        rtnl_link_ipvlan_set_mode(link.get(), static_cast<uint16_t>(mode));
    } else {
        return fail(ErrorKind::InvalidArgument, fmt::format("{}: unknown kind", what));
    }
    rtnl_link_set_name(link.get(), spec.name.c_str());
    rtnl_link_set_link(link.get(), rtnl_link_get_ifindex(parent.get()));
    if (spec.mtu != 0) rtnl_link_set_mtu(link.get(), spec.mtu);
    // Created straight inside the sandbox: never visible on the host, already under its name.
    rtnl_link_set_ns_fd(link.get(), netns.get());
    int err =
        nl_call([&] { return rtnl_link_add(host.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); });
    if (err < 0) {
        // EBUSY: the parent already has a passthru child (or passthru wants it alone); EINVAL /
        // EOPNOTSUPP: a mode or parent the driver refuses. The kernel's words say which.
        ErrorKind kind = is_exists(err) ? ErrorKind::Conflict : ErrorKind::InvalidArgument;
        return nl_failure(err, what, kind);
    }
    return {};
}

Status create_vlan(NlSocket& sock, const std::string& name, const std::string& parent,
                   uint16_t vlan_id, const std::string& alias) {
    const std::string what = fmt::format("create VLAN {} (id {}) on {}", name, vlan_id, parent);
    BPFNET_TRY(check_ifname(name, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr base, require_link(sock, parent, what));
    nl::LinkPtr link(rtnl_link_vlan_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), name.c_str());
    rtnl_link_set_link(link.get(), rtnl_link_get_ifindex(base.get()));
    rtnl_link_vlan_set_id(link.get(), vlan_id);
    return add_link_with_alias(sock, link.get(), name, alias, what);
}

Status create_dummy(NlSocket& sock, const std::string& name, const std::string& alias) {
    const std::string what = fmt::format("create dummy {}", name);
    BPFNET_TRY(check_ifname(name, what));
    nl::LinkPtr link(rtnl_link_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), name.c_str());
    if (int err = rtnl_link_set_type(link.get(), "dummy"); err < 0) return nl_failure(err, what);
    return add_link_with_alias(sock, link.get(), name, alias, what);
}

Result<bool> link_kind_supported(NlSocket& sock, const std::string& kind) {
    const std::string what = fmt::format("probe for link type {}", kind);
    nl::LinkPtr link(rtnl_link_alloc());
    if (!link) return out_of_memory(what);
    rtnl_link_set_name(link.get(), "bnprobe0");
    rtnl_link_set_link(link.get(), 1);  // the loopback device: no driver makes children of it
    if (int err = rtnl_link_set_type(link.get(), kind.c_str()); err < 0)
        return nl_failure(err, what);
    int err =
        nl_call([&] { return rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); });
    if (err >= 0) {
        roll_back(sock, "bnprobe0");  // a driver that took it after all: undo
        return true;
    }
    return t_kernel_error.extack.find("Unknown device type") == std::string::npos;
}

}  // namespace bpfnet::kernel

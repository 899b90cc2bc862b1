#include "kernel/nl_util.h"

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bpfnet::kernel {

// ---------------------------------------------------------------------------------------------
// Errors
//
// libnl folds the kernel's errno into its own NLE_* codes, and many distinct errnos (ENETUNREACH,
// EADDRNOTAVAIL for routes, ...) become "Unspecific failure". To keep messages useful we install an
// error callback on every socket that records the raw errno and the kernel's extended-ACK text.
// The callback runs synchronously on the thread making the request, so a thread_local is enough
// and survives the NlSocket being moved. Every request goes through nl_call(), which clears it
// first so a stale error from an earlier request can never be reported.
// ---------------------------------------------------------------------------------------------

thread_local KernelError t_kernel_error;

// The extended ACK message, if the kernel attached one. libnl passes nlmsg_data() of the
// NLMSG_ERROR message, so the header sits right before `err`.
std::string extack_message(const nlmsgerr* err) {
    const auto* hdr =
        reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(err) - NLMSG_HDRLEN);
    if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nlmsgerr));
    if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) {
        // The whole request is echoed after the nlmsgerr; the TLVs follow it.
        if (err->msg.nlmsg_len < NLMSG_HDRLEN) return {};
        offset += NLMSG_ALIGN(err->msg.nlmsg_len - NLMSG_HDRLEN);
    }
    if (offset >= hdr->nlmsg_len) return {};
    auto* attrs =
        reinterpret_cast<nlattr*>(const_cast<char*>(reinterpret_cast<const char*>(hdr) + offset));
    int len = static_cast<int>(hdr->nlmsg_len - offset);
    nlattr* attr = nullptr;
    int remaining = 0;
    nla_for_each_attr(attr, attrs, len, remaining) {
        if (nla_type(attr) != NLMSGERR_ATTR_MSG) continue;
        const auto* text = static_cast<const char*>(nla_data(attr));
        return std::string(text, strnlen(text, static_cast<size_t>(nla_len(attr))));
    }
    return {};
}

int record_kernel_error(sockaddr_nl*, nlmsgerr* err, void*) {
    t_kernel_error.errnum = -err->error;
    t_kernel_error.extack = extack_message(err);
    // NL_STOP keeps libnl's default handling: the request returns -nl_syserr2nlerr(error).
    return NL_STOP;
}

// Text for a failed libnl call: the kernel's own errno (and explanation) when it sent one,
// otherwise libnl's description (local failures such as out-of-memory or a dead socket).
std::string describe(int nlerr) {
    if (t_kernel_error.errnum == 0) return nl_geterror(nlerr);
    std::string text = std::error_code(t_kernel_error.errnum, std::generic_category()).message();
    if (!t_kernel_error.extack.empty()) text += fmt::format(" ({})", t_kernel_error.extack);
    return text;
}

bool is_exists(int nlerr) {
    return t_kernel_error.errnum != 0 ? t_kernel_error.errnum == EEXIST : nlerr == -NLE_EXIST;
}

Failure nl_failure(int nlerr, std::string_view what, ErrorKind kind) {
    return fail(kind, fmt::format("{}: {}", what, describe(nlerr)));
}

Failure out_of_memory(std::string_view what) {
    return fail(ErrorKind::Internal, fmt::format("{}: out of memory", what));
}

// The kernel's dev_valid_name() rules. Checking up front turns an over-long name into a clear
// InvalidArgument instead of the kernel's EINVAL (which libnl even reports as "not supported" for
// lookups by name).
Status check_ifname(const std::string& name, std::string_view what) {
    bool valid = !name.empty() && name.size() < IFNAMSIZ && name != "." && name != ".." &&
                 std::none_of(name.begin(), name.end(), [](char c) {
                     return c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' ||
                            c == '\r' || c == '\v' || c == '\f';
                 });
    if (!valid) {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{}: invalid interface name \"{}\"", what, name));
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// Lookups and conversions
// ---------------------------------------------------------------------------------------------

bool is_missing_link(int nlerr) {
    return nlerr == -NLE_NODEV || nlerr == -NLE_OBJ_NOTFOUND;
}

// One RTM_GETLINK by name (or by index when name is empty); a null pointer when there is no such
// link. Cheaper than dumping every link into a cache.
Result<nl::LinkPtr> lookup_link(NlSocket& sock, int ifindex, const std::string& name,
                                std::string_view what) {
    rtnl_link* raw = nullptr;
    int err = nl_call([&] {
        return rtnl_link_get_kernel(sock.get(), ifindex, name.empty() ? nullptr : name.c_str(),
                                    &raw);
    });
    nl::LinkPtr link(raw);
    if (err < 0) {
        if (is_missing_link(err)) return nl::LinkPtr{};
        return nl_failure(err, what);
    }
    return link;
}

// Like lookup_link by name, but a missing link is NotFound: the operation cannot proceed.
Result<nl::LinkPtr> require_link(NlSocket& sock, const std::string& name, std::string_view what) {
    BPFNET_TRY(check_ifname(name, what));
    BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr link, lookup_link(sock, 0, name, what));
    if (!link) return fail(ErrorKind::NotFound, fmt::format("{}: link {} not found", what, name));
    return link;
}

LinkInfo to_link_info(rtnl_link* link) {
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(link);
    if (const char* name = rtnl_link_get_name(link)) info.name = name;
    if (const char* kind = rtnl_link_get_type(link)) info.kind = kind;
    if (const char* alias = rtnl_link_get_ifalias(link)) info.alias = alias;
    info.master_ifindex = rtnl_link_get_master(link);
    info.group = rtnl_link_get_group(link);
    info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
    info.mtu = rtnl_link_get_mtu(link);
    info.arptype = rtnl_link_get_arptype(link);
    info.loopback = (rtnl_link_get_flags(link) & IFF_LOOPBACK) != 0;
    nl_addr* mac = rtnl_link_get_addr(link);
    if (mac && nl_addr_get_len(mac) == info.mac.bytes.size()) {
        std::memcpy(info.mac.bytes.data(), nl_addr_get_binary_addr(mac), info.mac.bytes.size());
    }
    return info;
}

nl::NlAddrPtr make_ipv4_addr(Ipv4 ip, int prefix_len) {
    uint32_t be = ip.network_order();
    nl::NlAddrPtr addr(nl_addr_build(AF_INET, &be, sizeof(be)));
    if (addr) nl_addr_set_prefixlen(addr.get(), prefix_len);
    return addr;
}

std::optional<Ipv4> to_ipv4(nl_addr* addr) {
    if (!addr || nl_addr_get_family(addr) != AF_INET || nl_addr_get_len(addr) != 4) {
        return std::nullopt;
    }
    uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(addr), sizeof(be));
    return Ipv4::from_network_order(be);
}

// Calls fn(T*) for every object of a cache (objects stay owned by the cache).

Result<nl::CachePtr> route_cache(NlSocket& sock, std::string_view what) {
    nl_cache* raw = nullptr;
    int err = nl_call([&] { return rtnl_route_alloc_cache(sock.get(), AF_INET, 0, &raw); });
    nl::CachePtr cache(raw);
    if (err < 0) return nl_failure(err, what);
    return cache;
}

bool is_main_ipv4_default(rtnl_route* route) {
    nl_addr* dst = rtnl_route_get_dst(route);
    return rtnl_route_get_family(route) == AF_INET &&
           rtnl_route_get_table(route) == RT_TABLE_MAIN && dst && nl_addr_get_prefixlen(dst) == 0;
}

// A random unicast, locally administered MAC.
MacAddr random_local_mac() {
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    uint64_t bits = gen();
    MacAddr mac;
    for (auto& b : mac.bytes) {
        b = static_cast<uint8_t>(bits);
        bits >>= 8;
    }
    mac.bytes[0] = static_cast<uint8_t>((mac.bytes[0] & 0xfe) | 0x02);
    return mac;
}

// ---------------------------------------------------------------------------------------------
// Link changes
// ---------------------------------------------------------------------------------------------

// Applies `fill` to an empty change set and sends it for the link `orig` (looked up from the
// kernel, so the request carries its ifindex and current flags).

Status bring_up(NlSocket& sock, rtnl_link* orig, std::string_view what) {
    return change_link(sock, orig, what, [](rtnl_link* c) { rtnl_link_set_flags(c, IFF_UP); });
}

Status set_alias(NlSocket& sock, rtnl_link* orig, const std::string& alias, std::string_view what) {
    return change_link(sock, orig, what,
                       [&](rtnl_link* c) { rtnl_link_set_ifalias(c, alias.c_str()); });
}

Status set_master(NlSocket& sock, rtnl_link* orig, int master_ifindex, std::string_view what) {
    return change_link(sock, orig, what,
                       [&](rtnl_link* c) { rtnl_link_set_master(c, master_ifindex); });
}

// Deletes a link we just created because a later configuration step failed. The original error is
// what the caller reports; a failed rollback can only be logged.
void roll_back(NlSocket& sock, const std::string& name) {
    Status undo = delete_link(sock, name);
    if (!undo)
        spdlog::warn("rollback of {} failed, link left behind: {}", name, undo.error().message);
}

Status add_link_with_alias(NlSocket& sock, rtnl_link* link, const std::string& name,
                           const std::string& alias, std::string_view what, int master_ifindex) {
    int err = nl_call([&] { return rtnl_link_add(sock.get(), link, NLM_F_CREATE | NLM_F_EXCL); });
    if (err < 0)
        return nl_failure(err, what, is_exists(err) ? ErrorKind::Conflict : ErrorKind::Internal);
    auto configure = [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(nl::LinkPtr created, require_link(sock, name, what));
        if (!alias.empty()) BPFNET_TRY(set_alias(sock, created.get(), alias, what));
        if (master_ifindex != 0) BPFNET_TRY(set_master(sock, created.get(), master_ifindex, what));
        return bring_up(sock, created.get(), what);
    };
    Status configured = configure();
    if (!configured) roll_back(sock, name);
    return configured;
}

}  // namespace bpfnet::kernel

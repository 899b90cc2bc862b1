#include "kernel/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "core/fd.h"
#include "kernel/netns.h"

namespace bpfnet::kernel {

namespace {

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

ErrorKind kind_for(int err) {
    if (err == ENOENT) return ErrorKind::NotFound;
    if (err == EINVAL) return ErrorKind::InvalidArgument;  // the kernel rejected the value
    return ErrorKind::Internal;
}

// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward". A key that already contains '/' is
// taken as slash-separated, as sysctl(8) does, so components with dots (VLAN interfaces such as
// "net/ipv4/conf/eth0.100/forwarding") can be addressed. Empty, "." and ".." components are
// rejected so a key can never leave /proc/sys.
Result<std::string> sysctl_path(const std::string& key) {
    const char separator = key.find('/') != std::string::npos ? '/' : '.';
    std::string path = "/proc/sys";
    size_t start = 0;
    while (true) {
        size_t end = key.find(separator, start);
        std::string_view part =
            std::string_view(key).substr(start, end == std::string::npos ? end : end - start);
        if (part.empty() || part == "." || part == ".." || part.find('\0') != part.npos) {
            return fail(ErrorKind::InvalidArgument, fmt::format("invalid sysctl key \"{}\"", key));
        }
        path += '/';
        path += part;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return path;
}

Status write_knob(const std::string& path, const std::string& key, const std::string& value) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        int err = errno;
        return fail(kind_for(err), fmt::format("write sysctl {}: {}", key, errno_text(err)));
    }
    // One write(): sysctl handlers parse each write separately, so splitting a value would set
    // something else than asked.
    ssize_t n;
    do {
        n = write(fd.get(), value.data(), value.size());
    } while (n < 0 && errno == EINTR);
    int err = errno;
    if (n < 0) {
        return fail(kind_for(err),
                    fmt::format("write sysctl {} = \"{}\": {}", key, value, errno_text(err)));
    }
    if (static_cast<size_t>(n) != value.size()) {
        return fail(ErrorKind::Internal,
                    fmt::format("write sysctl {} = \"{}\": short write", key, value));
    }
    return {};
}

}  // namespace

Result<std::string> read_sysctl(const std::string& key) {
    BPFNET_ASSIGN_OR_RETURN(std::string path, sysctl_path(key));
    Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        int err = errno;
        return fail(kind_for(err), fmt::format("read sysctl {}: {}", key, errno_text(err)));
    }
    std::string value;
    char buf[512];
    while (true) {
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            return fail(kind_for(err), fmt::format("read sysctl {}: {}", key, errno_text(err)));
        }
        if (n == 0) break;
        value.append(buf, static_cast<size_t>(n));
    }
    // The kernel terminates values with a newline; inner whitespace (the tab in
    // ip_local_port_range) is part of the value.
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    return value;
}

Status write_sysctl(const std::string& key, const std::string& value) {
    BPFNET_ASSIGN_OR_RETURN(std::string path, sysctl_path(key));
    return write_knob(path, key, value);
}

Status disable_link_ipv6(const std::string& ifname) {
    // Slash-separated: an interface name may contain dots.
    auto st = write_sysctl(fmt::format("net/ipv6/conf/{}/disable_ipv6", ifname), "1");
    std::error_code ec;
    if (!st && st.error().kind == ErrorKind::NotFound &&
        !std::filesystem::exists("/proc/sys/net/ipv6", ec))
        return {};
    return st;
}

Status disable_link_ipv6_in(const std::string& netns_path, const std::string& ifname) {
    // /proc/sys/net is the namespace of the thread that opens it.
    return run_in_netns(netns_path, [&] { return disable_link_ipv6(ifname); });
}

}  // namespace bpfnet::kernel

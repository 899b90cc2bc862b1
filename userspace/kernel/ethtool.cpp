#include "kernel/ethtool.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/fd.h"

namespace bpfnet::kernel {

Status set_gro(const std::string& ifname, bool on) {
    if (ifname.size() >= IFNAMSIZ)
        return fail(ErrorKind::InvalidArgument, fmt::format("interface name {} too long", ifname));
    Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0)
        return fail(ErrorKind::Internal, fmt::format("socket: {}", std::strerror(errno)));
    ethtool_value value{};
    value.cmd = ETHTOOL_SGRO;
    value.data = on ? 1 : 0;
    ifreq request{};
    std::memcpy(request.ifr_name, ifname.c_str(), ifname.size());
    request.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(sock.get(), SIOCETHTOOL, &request) != 0)
        return fail(ErrorKind::Internal, fmt::format("setting GRO {} on {}: {}", on ? "on" : "off",
                                                     ifname, std::strerror(errno)));
    return {};
}

}  // namespace bpfnet::kernel

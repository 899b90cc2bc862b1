#include "kernel/port_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"

namespace bpfnet::kernel {

bool host_port_in_use(IpProto proto, Ipv4 ip, uint16_t port) {
    int type = proto == IpProto::Udp ? SOCK_DGRAM : SOCK_STREAM;
    int protocol = proto == IpProto::Sctp ? IPPROTO_SCTP : 0;
    Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, protocol));
    if (fd.get() < 0) return false;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = ip.network_order();
    bool in_use = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
                  errno == EADDRINUSE;
    return in_use;
}

}  // namespace bpfnet::kernel

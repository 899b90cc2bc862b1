#include "kernel/host_watch.h"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bpfnet::kernel {

namespace {

constexpr int kReceiveBuffer = 8 << 20;

// Whether a parsed rtnetlink object is a change the agent must look at.
bool is_relevant(nl_object* obj) {
    const std::string_view type = nl_object_get_type(obj);
    if (type == "route/link") {
        auto* link = reinterpret_cast<rtnl_link*>(obj);
        // A bridge port's state (AF_BRIDGE): comes with every endpoint joining or leaving a
        // bridge and says nothing about uplinks or addresses (the link's own change comes as an
        // AF_UNSPEC message of its own).
        if (rtnl_link_get_family(link) == AF_BRIDGE) return false;
        const char* alias = rtnl_link_get_ifalias(link);
        if (alias && std::string_view(alias).rfind("bpfnet:", 0) == 0) return false;
        // Containers' veths (bpfnet's, Docker's) come and go with every container; they are
        // never uplinks by themselves ("auto" takes a veth only with the default route, whose
        // change is a route event) and carry no other bridge's subnet.
        const char* kind = rtnl_link_get_type(link);
        return !(kind && std::string_view(kind) == "veth");
    }
    if (type == "route/route") {
        // Connected routes come with their addresses; only the default route changes which
        // device is the way out.
        nl_addr* dst = rtnl_route_get_dst(reinterpret_cast<rtnl_route*>(obj));
        return !dst || nl_addr_get_prefixlen(dst) == 0;
    }
    return type == "route/addr";
}

}  // namespace

void HostWatch::SockDeleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}

Result<std::unique_ptr<HostWatch>> HostWatch::start(std::function<void()> on_change,
                                                    std::chrono::milliseconds settle) {
    std::unique_ptr<HostWatch> watch(new HostWatch());
    watch->on_change_ = std::move(on_change);
    watch->settle_ = settle;
    watch->sock_.reset(nl_socket_alloc());
    if (!watch->sock_) return fail(ErrorKind::Internal, "host watch: cannot allocate a socket");
    nl_sock* sock = watch->sock_.get();
    // Notifications carry no sequence numbers of ours.
    nl_socket_disable_seq_check(sock);
    if (int err = nl_connect(sock, NETLINK_ROUTE); err < 0)
        return fail(ErrorKind::Internal, fmt::format("host watch: {}", nl_geterror(err)));
    if (int err = nl_socket_add_memberships(sock, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
                                            RTNLGRP_IPV4_ROUTE, 0);
        err < 0) {
        return fail(ErrorKind::Internal, fmt::format("host watch: {}", nl_geterror(err)));
    }
    // Room for bursts: a host making or removing endpoints quickly sends notifications faster
    // than a survey (which an overrun forces) takes, and a survey at 4,000 endpoints took ~0.4 s
    // of a core, during which the next overrun built up. The agent has CAP_NET_ADMIN, so the
    // size is not capped by net.core.rmem_max; without it, what rmem_max allows.
    const int fd = nl_socket_get_fd(sock);
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof(kReceiveBuffer)) != 0)
        nl_socket_set_buffer_size(sock, kReceiveBuffer, 0);
    nl_socket_set_nonblocking(sock);
    nl_socket_modify_cb(
        sock, NL_CB_VALID, NL_CB_CUSTOM,
        [](nl_msg* msg, void* arg) -> int {
            auto* self = static_cast<HostWatch*>(arg);
            if (self->relevant_) return NL_OK;
            nl_msg_parse(
                msg,
                [](nl_object* obj, void* flag) {
                    if (is_relevant(obj)) *static_cast<bool*>(flag) = true;
                },
                &self->relevant_);
            return NL_OK;
        },
        watch.get());
    watch->stop_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (watch->stop_.get() < 0)
        return fail(ErrorKind::Internal,
                    fmt::format("host watch: eventfd: {}", std::strerror(errno)));
    watch->thread_ = std::thread([w = watch.get()] { w->run(); });
    return watch;
}

HostWatch::~HostWatch() {
    if (thread_.joinable()) {
        const uint64_t one = 1;
        if (::write(stop_.get(), &one, sizeof(one)) < 0) {
            spdlog::warn("host watch: cannot signal the thread to stop: {}", std::strerror(errno));
        }
        thread_.join();
    }
}

bool HostWatch::drain() {
    relevant_ = false;
    for (;;) {
        const int err = nl_recvmsgs_default(sock_.get());
        if (err >= 0) continue;
        if (err == -NLE_AGAIN) break;
        // The kernel dropped notifications (the socket's buffer overran): what changed is
        // unknown, so treat it as a change.
        if (err == -NLE_NOMEM) {
            relevant_ = true;
            continue;
        }
        spdlog::debug("host watch: {}", nl_geterror(err));
        break;
    }
    return relevant_;
}

void HostWatch::run() {
    pollfd fds[2] = {{nl_socket_get_fd(sock_.get()), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    bool pending = false;
    for (;;) {
        const int timeout = pending ? static_cast<int>(settle_.count()) : -1;
        const int ready = ::poll(fds, 2, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            spdlog::error("host watch: poll: {}", std::strerror(errno));
            return;
        }
        if (fds[1].revents) return;
        if (ready == 0) {
            // Quiet for `settle` since the last relevant change.
            pending = false;
            on_change_();
            continue;
        }
        if (fds[0].revents && drain()) pending = true;
    }
}

}  // namespace bpfnet::kernel

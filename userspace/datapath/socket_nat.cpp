#include "datapath/socket_nat.h"

#include "core/pin_layout.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/sock.skel.h"
#include "bpfnet/abi.h"
#include "core/fd.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/libbpf_log.h"
#include "datapath/pinned_maps.h"
#include "maps/socket_nat_maps.h"

namespace bpfnet {

namespace {

// Debian 12's UAPI headers may lack these; the values are the kernel's.
constexpr int kSoNetnsCookie = 71;
constexpr uint32_t kBpfLinkTypeCgroup = 3;

}  // namespace

Result<uint64_t> current_netns_cookie() {
    Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0)
        return fail(ErrorKind::Internal, fmt::format("socket: {}", std::strerror(errno)));
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (::getsockopt(sock.get(), SOL_SOCKET, kSoNetnsCookie, &cookie, &len) != 0) {
        return fail(
            ErrorKind::Unsupported,
            fmt::format("SO_NETNS_COOKIE: {} (kernel older than 5.14?)", std::strerror(errno)));
    }
    return cookie;
}

std::string cgroup2_mount_point(const std::string& mounts) {
    std::istringstream in(mounts);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string device, mount_point, type;
        fields >> device >> mount_point >> type;
        if (type == "cgroup2") return mount_point;
    }
    return "";
}

struct SocketNat::State {
    BpfSkeleton<sock> skel;
    std::string links_dir;
    std::string cgroup_root;
    SocketNatMaps maps;
};

SocketNat::SocketNat(std::unique_ptr<State> state) : state_(std::move(state)) {}
SocketNat::~SocketNat() = default;

const std::string& SocketNat::cgroup_root() const {
    return state_->cgroup_root;
}

Result<std::unique_ptr<SocketNat>> SocketNat::open(const std::string& pin_dir) {
    auto state = std::make_unique<State>();
    std::ifstream mounts_file("/proc/self/mounts");
    std::stringstream mounts;
    mounts << mounts_file.rdbuf();
    state->cgroup_root = cgroup2_mount_point(mounts.str());
    if (state->cgroup_root.empty()) {
        return fail(ErrorKind::Unsupported, "no cgroup v2 hierarchy is mounted");
    }
    state->links_dir = pin_dir + "/" + pin_layout::kCgroupLinks;
    std::error_code ec;
    std::filesystem::create_directories(state->links_dir, ec);
    if (ec) {
        return fail(ErrorKind::Internal,
                    fmt::format("cannot create {}: {}", state->links_dir, ec.message()));
    }
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.c_str());
    BPFNET_TRY(state->skel.open(&opts));
    BPFNET_TRY(drop_incompatible_pins(state->skel->obj, pin_dir));
    BPFNET_TRY(state->skel.load());
    auto* skel = state->skel.get();
    state->maps = SocketNatMaps(bpf_map__fd(skel->maps.bpfnet_sk_netns),
                                bpf_map__fd(skel->maps.bpfnet_sk_cfg));

    BPFNET_ASSIGN_OR_RETURN(uint64_t cookie, current_netns_cookie());
    BPFNET_TRY(state->maps.set_host_netns(cookie));

    Fd cgroup(::open(state->cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cgroup.get() < 0) {
        return fail(ErrorKind::Internal,
                    fmt::format("open {}: {}", state->cgroup_root, std::strerror(errno)));
    }
    const std::pair<bpf_program*, bpf_attach_type> programs[] = {
        {skel->progs.bpfnet_connect4, BPF_CGROUP_INET4_CONNECT},
        {skel->progs.bpfnet_sendmsg4, BPF_CGROUP_UDP4_SENDMSG},
        {skel->progs.bpfnet_recvmsg4, BPF_CGROUP_UDP4_RECVMSG},
        {skel->progs.bpfnet_getpeername4, BPF_CGROUP_INET4_GETPEERNAME},
    };
    for (const auto& [program, attach_type] : programs) {
        std::string pin = state->links_dir + "/" + bpf_program__name(program);
        int prog_fd = bpf_program__fd(program);
        int existing = bpf_obj_get(pin.c_str());
        if (existing >= 0) {
            Fd link(existing);
            bpf_link_info info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0 &&
                info.type == kBpfLinkTypeCgroup) {
                // Re-adopt: the new program replaces the old one in the running link.
                if (int err = bpf_link_update(link.get(), prog_fd, nullptr); err)
                    return fail(libbpf_error("updating the program of " + pin, err));
                continue;
            }
            ::unlink(pin.c_str());
        }
        int fd = bpf_link_create(prog_fd, cgroup.get(), attach_type, nullptr);
        if (fd < 0) {
            return fail(libbpf_error(
                fmt::format("attaching {} to {}", bpf_program__name(program), state->cgroup_root),
                fd));
        }
        Fd link(fd);
        if (int err = bpf_obj_pin(link.get(), pin.c_str()); err)
            return fail(libbpf_error("pinning " + pin, err));
    }
    spdlog::info("socket NAT attached to cgroup {} (links under {})", state->cgroup_root,
                 state->links_dir);
    return std::unique_ptr<SocketNat>(new SocketNat(std::move(state)));
}

Status SocketNat::allow_sandbox(uint64_t netns_cookie, uint32_t network) {
    return state_->maps.allow_sandbox(netns_cookie, network);
}

void SocketNat::forget_sandbox(uint64_t netns_cookie, uint32_t network) {
    state_->maps.forget_sandbox(netns_cookie, network);
}

void SocketNat::forget_networks_except(const std::set<uint32_t>& networks) {
    state_->maps.forget_networks_except(networks);
}

}  // namespace bpfnet

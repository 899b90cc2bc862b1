#include "datapath/bpf_datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/endpoint.skel.h"
#include "bpfnet/abi.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/bpf_util.h"
#include "datapath/libbpf_log.h"
#include "datapath/socket_nat.h"
#include "kernel/netlink.h"

namespace bpfnet {

namespace {

// Debian's 6.1 UAPI headers predate tcx (6.6): these are the kernel's values.
constexpr int kBpfTcxIngress = 46;
constexpr uint32_t kBpfLinkTypeTcx = 11;

// The head of struct bpf_link_info as the kernel fills it for a tcx link: type, id, prog_id, then
// the union (8-byte aligned) whose tcx member starts with the ifindex.
struct TcxLinkInfo {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t pad;
    uint32_t ifindex;
    uint32_t attach_type;
    uint8_t rest[64];
};

void copy_mac(uint8_t* dst, const MacAddr& mac) {
    std::memcpy(dst, mac.bytes.data(), 6);
}

bool ifindex_exists(uint32_t ifindex) {
    char name[IF_NAMESIZE];
    return if_indextoname(ifindex, name) != nullptr;
}

}  // namespace

struct BpfDatapath::State {
    BpfSkeleton<endpoint> skel;
    std::string pin_dir;
    std::string links_dir;
    bool tcx = true;
    int prog_fd = -1;
    int net_fd = -1, ep_by_if_fd = -1, ep_by_ip_fd = -1, subnets_fd = -1, stats_fd = -1;
    std::unique_ptr<SocketNat> socket_nat;  // null where it cannot run: the kernel NAT serves
    std::string socket_nat_unavailable;
};

BpfDatapath::BpfDatapath(KernelDatapath& kernel, std::unique_ptr<State> state)
    : kernel_(kernel), state_(std::move(state)) {}

BpfDatapath::~BpfDatapath() = default;

const std::string& BpfDatapath::pin_dir() const {
    return state_->pin_dir;
}
bool BpfDatapath::uses_tcx() const {
    return state_->tcx;
}

Result<std::unique_ptr<BpfDatapath>> BpfDatapath::open(KernelDatapath& kernel,
                                                       const std::string& bpffs_root, bool tcx) {
    auto state = std::make_unique<State>();
    state->pin_dir = (std::filesystem::path(bpffs_root) / "bpfnet").string();
    state->links_dir = state->pin_dir + "/links";
    state->tcx = tcx;
    std::error_code ec;
    std::filesystem::create_directories(state->links_dir, ec);
    if (ec)
        return fail(ErrorKind::Internal,
                    fmt::format("cannot create {}: {}", state->links_dir, ec.message()));

    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = state->pin_dir.c_str());
    BPFNET_TRY(state->skel.open(&opts));
    BPFNET_TRY(state->skel.load());
    auto* skel = state->skel.get();
    state->prog_fd = bpf_program__fd(skel->progs.bpfnet_from_ep);
    state->net_fd = bpf_map__fd(skel->maps.bpfnet_net);
    state->ep_by_if_fd = bpf_map__fd(skel->maps.bpfnet_ep_by_if);
    state->ep_by_ip_fd = bpf_map__fd(skel->maps.bpfnet_ep_by_ip);
    state->subnets_fd = bpf_map__fd(skel->maps.bpfnet_subnets);
    state->stats_fd = bpf_map__fd(skel->maps.bpfnet_ep_stats);
    if (auto nat = SocketNat::open(state->pin_dir); nat) {
        state->socket_nat = std::move(*nat);
    } else {
        state->socket_nat_unavailable = nat.error().message;
        spdlog::warn(
            "published ports: socket NAT unavailable ({}); the host reaches them through "
            "the kernel NAT",
            nat.error().message);
    }
    spdlog::info("BPF datapath loaded: maps pinned under {}, attach via {}", state->pin_dir,
                 tcx ? "tcx links" : "clsact");
    return std::unique_ptr<BpfDatapath>(new BpfDatapath(kernel, std::move(state)));
}

Status BpfDatapath::ensure_network(const NetworkSpec& spec) {
    BPFNET_TRY(kernel_.ensure_network(spec));
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto bridge, kernel::find_link(sock, network.bridge_name));
    if (!bridge)
        return fail(ErrorKind::Internal, fmt::format("bridge {} vanished", network.bridge_name));
    uint32_t key = bridge->ifindex;
    bpfnet_net_info info{};
    info.subnet = network.ipam.subnet.network().network_order();
    info.gateway = network.ipam.gateway.network_order();
    info.prefix_len = network.ipam.subnet.prefix_len;
    info.flags = (spec.options.enable_icc ? BPFNET_NET_ICC : 0) |
                 (network.internal ? BPFNET_NET_INTERNAL : 0);
    copy_mac(info.gateway_mac, bridge->mac);
    // A bridge re-created under a new ifindex leaves its old entry behind: drop entries for this
    // subnet under any other key first.
    for (uint32_t other : map_keys<uint32_t>(state_->net_fd)) {
        bpfnet_net_info old{};
        if (other != key && bpf_map_lookup_elem(state_->net_fd, &other, &old) == 0 &&
            old.subnet == info.subnet && old.prefix_len == info.prefix_len) {
            bpf_map_delete_elem(state_->net_fd, &other);
        }
    }
    if (int err = bpf_map_update_elem(state_->net_fd, &key, &info, BPF_ANY); err) {
        return fail(map_error("bpfnet_net update", err));
    }
    bpfnet_lpm_v4 prefix{.prefix_len = info.prefix_len, .addr = info.subnet};
    if (int err = bpf_map_update_elem(state_->subnets_fd, &prefix, &key, BPF_ANY); err) {
        return fail(map_error("bpfnet_subnets update", err));
    }
    return {};
}

Status BpfDatapath::remove_network(const Network& network) {
    uint32_t subnet = network.ipam.subnet.network().network_order();
    for (uint32_t key : map_keys<uint32_t>(state_->net_fd)) {
        bpfnet_net_info info{};
        if (bpf_map_lookup_elem(state_->net_fd, &key, &info) == 0 && info.subnet == subnet &&
            info.prefix_len == network.ipam.subnet.prefix_len) {
            bpf_map_delete_elem(state_->net_fd, &key);
        }
    }
    bpfnet_lpm_v4 prefix{.prefix_len = network.ipam.subnet.prefix_len, .addr = subnet};
    bpf_map_delete_elem(state_->subnets_fd, &prefix);
    return kernel_.remove_network(network);
}

Status BpfDatapath::ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                    const Sandbox& sandbox) {
    BPFNET_TRY(kernel_.ensure_endpoint(spec, endpoint, sandbox));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::find_link(sock, endpoint.host_ifname));
    BPFNET_ASSIGN_OR_RETURN(auto bridge, kernel::find_link(sock, spec.network.bridge_name));
    if (!host || !bridge) {
        return fail(ErrorKind::Internal,
                    fmt::format("{} or {} vanished while connecting", endpoint.host_ifname,
                                spec.network.bridge_name));
    }
    uint32_t ifindex = host->ifindex;
    bpfnet_endpoint src{};
    src.ip = endpoint.ip.network_order();
    src.network = bridge->ifindex;
    copy_mac(src.mac, endpoint.mac);
    bpfnet_ep_key dest_key{.network = static_cast<__u32>(bridge->ifindex), .ip = src.ip};
    bpfnet_ep_dest dest{};
    dest.ifindex = ifindex;
    copy_mac(dest.mac, endpoint.mac);
    // Maps first, program last: the program drops traffic from a veth it has no entry for.
    if (int err = bpf_map_update_elem(state_->ep_by_if_fd, &ifindex, &src, BPF_ANY); err) {
        return fail(map_error("bpfnet_ep_by_if update", err));
    }
    if (int err = bpf_map_update_elem(state_->ep_by_ip_fd, &dest_key, &dest, BPF_ANY); err) {
        bpf_map_delete_elem(state_->ep_by_if_fd, &ifindex);
        return fail(map_error("bpfnet_ep_by_ip update", err));
    }
    return attach(endpoint.host_ifname, host->ifindex);
}

Status BpfDatapath::remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) {
    BPFNET_TRY(detach(endpoint.host_ifname));
    uint32_t ip = endpoint.ip.network_order();
    for (uint32_t key : map_keys<uint32_t>(state_->ep_by_if_fd)) {
        bpfnet_endpoint src{};
        if (bpf_map_lookup_elem(state_->ep_by_if_fd, &key, &src) == 0 && src.ip == ip &&
            std::memcmp(src.mac, endpoint.mac.bytes.data(), 6) == 0) {
            bpf_map_delete_elem(state_->ep_by_if_fd, &key);
            bpf_map_delete_elem(state_->stats_fd, &key);
        }
    }
    for (const auto& key : map_keys<bpfnet_ep_key>(state_->ep_by_ip_fd)) {
        bpfnet_ep_dest dest{};
        if (key.ip == ip && bpf_map_lookup_elem(state_->ep_by_ip_fd, &key, &dest) == 0 &&
            std::memcmp(dest.mac, endpoint.mac.bytes.data(), 6) == 0) {
            bpf_map_delete_elem(state_->ep_by_ip_fd, &key);
        }
    }
    return kernel_.remove_endpoint(endpoint, sandbox);
}

Status BpfDatapath::attach(const std::string& host_ifname, int ifindex) {
    if (!state_->tcx) {
        // clsact + cls_bpf (direct action). BPF_TC_F_REPLACE swaps the program in place, so a
        // restarted agent replaces the old program without a gap.
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
        int err = bpf_tc_hook_create(&hook);
        if (err && err != -EEXIST)
            return fail(libbpf_error("creating clsact on " + host_ifname, err));
        LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = state_->prog_fd, .flags = BPF_TC_F_REPLACE,
                    .handle = 1, .priority = 1);
        if (int err2 = bpf_tc_attach(&hook, &opts); err2) {
            return fail(libbpf_error("attaching the endpoint program to " + host_ifname, err2));
        }
        return {};
    }
    std::string pin = state_->links_dir + "/" + host_ifname;
    int existing = bpf_obj_get(pin.c_str());
    if (existing >= 0) {
        Fd link(existing);
        TcxLinkInfo info{};
        uint32_t len = sizeof(info);
        bool live = bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0 &&
                    info.type == kBpfLinkTypeTcx && info.ifindex == static_cast<uint32_t>(ifindex);
        if (live) {
            // Re-adopt: swap the freshly loaded program into the running link atomically.
            if (int err = bpf_link_update(link.get(), state_->prog_fd, nullptr); err) {
                return fail(libbpf_error("updating the program of " + host_ifname, err));
            }
            return {};
        }
        // The veth behind this pin is gone (or was re-created): the link is defunct.
        ::unlink(pin.c_str());
    }
    int fd = bpf_link_create(state_->prog_fd, ifindex, static_cast<bpf_attach_type>(kBpfTcxIngress),
                             nullptr);
    if (fd < 0)
        return fail(
            libbpf_error("attaching the endpoint program to " + host_ifname + " (tcx)", fd));
    Fd link(fd);
    // Until pinned, the link lives only as long as this fd: a crash before the pin detaches it.
    if (int err = bpf_obj_pin(link.get(), pin.c_str()); err) {
        return fail(libbpf_error("pinning the tcx link of " + host_ifname + " at " + pin, err));
    }
    return {};
}

Status BpfDatapath::detach(const std::string& host_ifname) {
    std::string pin = state_->links_dir + "/" + host_ifname;
    // The pin is the link's only reference: removing it detaches the program.
    if (::unlink(pin.c_str()) != 0 && errno != ENOENT) {
        return fail(ErrorKind::Internal, fmt::format("removing {}: {}", pin, std::strerror(errno)));
    }
    return {};
}

// The firewall and the kernel NAT are applied for every network through the kernel datapath by
// the service; this programs what BPF adds on top for the BPF networks' published ports: the host's
// own connections get the endpoint's address at the socket (traffic from outside and hairpin still
// goes through the kernel NAT for now).
Status BpfDatapath::sync_policy(const std::vector<NetworkSpec>& /*networks*/,
                                const std::vector<PublishedPort>& ports) {
    if (!state_->socket_nat) return {};
    return state_->socket_nat->sync(ports);
}

std::string BpfDatapath::published_ports_path() const {
    std::string host = state_->socket_nat ? "from the host: BPF socket NAT (cgroup " +
                                                state_->socket_nat->cgroup_root() + ")"
                                          : "from the host: kernel NAT (socket NAT unavailable: " +
                                                state_->socket_nat_unavailable + ")";
    return host +
           "; from outside and hairpin: kernel NAT (nftables DNAT maps); outbound: nftables "
           "masquerade (BPF SNAT not yet available)";
}
Status BpfDatapath::remove_policy() {
    return kernel_.remove_policy();
}

Result<std::vector<std::string>> BpfDatapath::collect_garbage(const std::set<std::string>& keep) {
    std::vector<std::string> removed;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(state_->links_dir, ec)) {
        std::string name = entry.path().filename().string();
        // Attached through clsact now: any tcx link pinned by an earlier run is stale.
        if (keep.count(name) && state_->tcx) continue;
        BPFNET_TRY(detach(name));
        removed.push_back("tcx link " + name);
    }
    // Entries whose device is gone can never match a packet again; they only take map space.
    for (uint32_t key : map_keys<uint32_t>(state_->ep_by_if_fd)) {
        if (!ifindex_exists(key)) {
            bpf_map_delete_elem(state_->ep_by_if_fd, &key);
            bpf_map_delete_elem(state_->stats_fd, &key);
        }
    }
    for (const auto& key : map_keys<bpfnet_ep_key>(state_->ep_by_ip_fd)) {
        bpfnet_ep_dest dest{};
        if (bpf_map_lookup_elem(state_->ep_by_ip_fd, &key, &dest) == 0 &&
            !ifindex_exists(dest.ifindex)) {
            bpf_map_delete_elem(state_->ep_by_ip_fd, &key);
        }
    }
    for (uint32_t key : map_keys<uint32_t>(state_->net_fd)) {
        if (!ifindex_exists(key)) bpf_map_delete_elem(state_->net_fd, &key);
    }
    for (const auto& key : map_keys<bpfnet_lpm_v4>(state_->subnets_fd)) {
        uint32_t network = 0;
        bpfnet_net_info info{};
        if (bpf_map_lookup_elem(state_->subnets_fd, &key, &network) == 0 &&
            bpf_map_lookup_elem(state_->net_fd, &network, &info) != 0) {
            bpf_map_delete_elem(state_->subnets_fd, &key);
        }
    }
    return removed;
}

}  // namespace bpfnet

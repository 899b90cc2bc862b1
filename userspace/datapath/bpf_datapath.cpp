#include "datapath/bpf_datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bpf/endpoint.skel.h"
#include "bpf/uplink.skel.h"
#include "bpfnet/abi.h"
#include "core/pin_layout.h"
#include "datapath/bpf_datapath_state.h"
#include "datapath/bpf_skeleton.h"
#include "datapath/host_addresses.h"
#include "datapath/libbpf_log.h"
#include "datapath/pinned_maps.h"
#include "datapath/socket_nat.h"
#include "datapath/tc_attach.h"
#include "datapath/xdp_attach.h"
#include "kernel/ethtool.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"
#include "kernel/sysctl.h"

namespace bpfnet {

namespace {

bool ifindex_exists(uint32_t ifindex) {
    char name[IF_NAMESIZE];
    return if_indextoname(ifindex, name) != nullptr;
}

using pin_layout::kUplinkFilterHandle;

using PortId =
    std::tuple<uint32_t, uint16_t, uint8_t>;  // host address, port (network order), proto

PortId port_id(const PortBinding& binding) {
    return {binding.host_ip.network_order(), htons(binding.host_port),
            static_cast<uint8_t>(binding.proto)};
}
std::pair<uint32_t, uint16_t> port_target(const PublishedPort& p) {
    return {p.endpoint_ip.network_order(), htons(p.binding.container_port)};
}
// A routed network's bindings are not translated: the host's firewall opens their ports.
std::vector<PublishedPort> translated_ports(const std::vector<PublishedPort>& ports) {
    std::vector<PublishedPort> out;
    for (const auto& p : ports)
        if (!p.routed) out.push_back(p);
    return out;
}

}  // namespace

BpfDatapath::BpfDatapath(KernelDatapath& kernel, std::unique_ptr<State> state)
    : kernel_(kernel), state_(std::move(state)) {}

BpfDatapath::~BpfDatapath() = default;

const std::string& BpfDatapath::pin_dir() const {
    return state_->pin_dir;
}

Result<std::unique_ptr<BpfDatapath>> BpfDatapath::open(KernelDatapath& kernel,
                                                       const std::string& bpffs_root, bool tcx,
                                                       const BpfDatapathOptions& options) {
    auto state = std::make_unique<State>();
    state->options = options;
    state->pin_dir = (std::filesystem::path(bpffs_root) / pin_layout::kDir).string();
    // An endpoint's program goes on a cls_bpf filter even where tcx exists: attaching or
    // releasing a tcx link waits for a full (not expedited) RCU grace period while holding RTNL,
    // which measured 4-20 ms on every connect and disconnect here (three times a connect's own
    // cost, varying with the grace period, and stalling every other netlink user meanwhile); a
    // cls_bpf filter is added and removed without waiting. The veth is ours alone, so tcx's
    // ownership buys nothing, and the filter goes with the device. Its qdisc is `ingress`, not
    // clsact: half the tc blocks, whose binding searches a host-wide list (kernel/ingress_qdisc.h).
    state->endpoint_hook = endpoint_veth_hook(state->pin_dir + "/" + pin_layout::kEndpointLinks);
    state->uplink_hook = {state->pin_dir + "/" + pin_layout::kUplinkLinks, tcx,
                          kUplinkFilterHandle};
    state->xdp_links_dir = state->pin_dir + "/" + pin_layout::kUplinkXdpLinks;
    for (const auto* dir :
         {&state->endpoint_hook.links_dir, &state->uplink_hook.links_dir, &state->xdp_links_dir}) {
        std::error_code ec;
        std::filesystem::create_directories(*dir, ec);
        if (ec)
            return fail(ErrorKind::Internal,
                        fmt::format("cannot create {}: {}", *dir, ec.message()));
    }
    if (options.ct_max_entries < 2)
        return fail(ErrorKind::InvalidArgument, "conntrack size must be at least 2 entries");

    // Both objects define the conntrack map; the first load creates (or reuses) the pin and the
    // second reuses it, so both need the configured size.
    LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = state->pin_dir.c_str());
    BPFNET_TRY(state->skel.open(&opts));
    bpf_map__set_max_entries(state->skel->maps.bpfnet_ct, options.ct_max_entries);
    BPFNET_TRY(drop_incompatible_pins(state->skel->obj, state->pin_dir));
    BPFNET_TRY(state->skel.load());
    BPFNET_TRY(state->uplink_skel.open(&opts));
    bpf_map__set_max_entries(state->uplink_skel->maps.bpfnet_ct, options.ct_max_entries);
    BPFNET_TRY(drop_incompatible_pins(state->uplink_skel->obj, state->pin_dir));
    BPFNET_TRY(state->uplink_skel.load());

    auto* skel = state->skel.get();
    state->prog_fd = bpf_program__fd(skel->progs.bpfnet_from_ep);
    state->networks =
        NetworkMaps(bpf_map__fd(skel->maps.bpfnet_net), bpf_map__fd(skel->maps.bpfnet_subnets));
    state->endpoints = EndpointMaps(bpf_map__fd(skel->maps.bpfnet_ep_by_if),
                                    bpf_map__fd(skel->maps.bpfnet_ep_by_ip),
                                    bpf_map__fd(skel->maps.bpfnet_ep_stats));
    state->conntrack = ConntrackMap(bpf_map__fd(skel->maps.bpfnet_ct));
    state->uplink_maps = UplinkMaps(bpf_map__fd(skel->maps.bpfnet_uplinks));
    auto* up = state->uplink_skel.get();
    state->uplink_prog_fd = bpf_program__fd(up->progs.bpfnet_from_uplink);
    state->uplink_xdp_fd = bpf_program__fd(up->progs.bpfnet_up_xdp);
    state->ports = PublishedPortMaps(bpf_map__fd(up->maps.bpfnet_pub_port),
                                     bpf_map__fd(up->maps.bpfnet_local_ip));
    if (auto nat = SocketNat::open(state->pin_dir); nat) {
        state->socket_nat = std::move(*nat);
    } else {
        state->socket_nat_unavailable = nat.error().message;
        spdlog::warn(
            "published ports: socket NAT unavailable ({}); the host reaches them through "
            "the kernel NAT",
            nat.error().message);
    }
    spdlog::info(
        "BPF datapath loaded: maps pinned under {}, endpoints attach via cls_bpf on the ingress "
        "qdisc, the host's devices via {}, conntrack {} entries",
        state->pin_dir, tcx ? "tcx links" : "clsact", options.ct_max_entries);
    std::unique_ptr<BpfDatapath> datapath(new BpfDatapath(kernel, std::move(state)));
    // Attach to the uplinks now, so a restarted agent swaps its new program into the running
    // links at once rather than at the first change.
    if (auto st = datapath->refresh_host(); !st) spdlog::warn("uplinks: {}", st.error().message);
    return datapath;
}

Status BpfDatapath::ensure_network(const NetworkSpec& spec) {
    BPFNET_TRY(kernel_.ensure_network(spec));
    const Network& network = spec.network;
    const GatewayMode mode = spec.options.gateway_mode;
    const bool direct = mode == GatewayMode::NatUnprotected || mode == GatewayMode::Routed ||
                        !spec.options.trusted_host_interfaces.empty();
    const bool egress = !network.internal && mode != GatewayMode::Isolated;
    // Egress is translated exactly where the kernel datapath's nftables would masquerade it.
    const bool masquerade =
        spec.options.enable_ip_masquerade && !network.internal && mode != GatewayMode::Routed;
    const uint32_t flags =
        (spec.options.enable_icc ? BPFNET_NET_ICC : 0) |
        (network.internal ? BPFNET_NET_INTERNAL : 0) | (direct ? BPFNET_NET_DIRECT_ROUTING : 0) |
        (masquerade ? BPFNET_NET_MASQUERADE : 0) | (egress ? BPFNET_NET_EGRESS : 0);
    // isolated: the bridge has no address, so there is no gateway to answer ARP for.
    BPFNET_TRY(put_network_maps(
        network, mode == GatewayMode::Isolated ? Ipv4{} : network.ipam.gateway, flags));
    return {};
}

namespace {

// A network that reaches the BPF maps without a datapath ID would share key 0 with "another
// bridge" in bpfnet_subnets: refused, never written.
Result<uint32_t> network_key(const Network& network) {
    if (network.datapath_id == 0)
        return fail(ErrorKind::Internal,
                    fmt::format("network {} has no datapath ID", network.id.substr(0, 12)));
    return network.datapath_id;
}

}  // namespace

Result<uint32_t> BpfDatapath::put_network_maps(const Network& network, Ipv4 gateway,
                                               uint32_t flags) {
    BPFNET_ASSIGN_OR_RETURN(const uint32_t key, network_key(network));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto bridge, kernel::find_link(sock, network.bridge_name));
    if (!bridge)
        return fail(ErrorKind::Internal, fmt::format("bridge {} vanished", network.bridge_name));
    // A bridge re-created under a new ifindex changes this value only: every key stays.
    BPFNET_TRY(state_->networks.put(NetworkEntry{
        .id = key,
        .subnet = network.ipam.subnet,
        .gateway = gateway,
        .flags = flags,
        .bridge_ifindex = static_cast<uint32_t>(bridge->ifindex),
        .gateway_mac = bridge->mac,
    }));
    return key;
}

void BpfDatapath::drop_network_maps(const Network& network) {
    // Only its own: a subnet entry of another network (never expected) or another bridge stays.
    state_->networks.drop(network.datapath_id, network.ipam.subnet);
}

Status BpfDatapath::remove_network(const Network& network) {
    drop_network_maps(network);
    return kernel_.remove_network(network);
}

Status BpfDatapath::ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                    const Sandbox& sandbox) {
    BPFNET_ASSIGN_OR_RETURN(const uint32_t network, network_key(spec.network));
    BPFNET_TRY(kernel_.ensure_endpoint(spec, endpoint, sandbox));
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::find_link(sock, endpoint.host_ifname));
    if (!host) {
        return fail(ErrorKind::Internal,
                    fmt::format("{} vanished while connecting", endpoint.host_ifname));
    }
    EndpointEntry entry{.ifindex = static_cast<uint32_t>(host->ifindex),
                        .network = network,
                        .ip = endpoint.ip,
                        .mac = endpoint.mac};
    if (xdp_may_run()) {
        // XDP on an uplink redirects to the host end; the veth hands such frames to the sandbox
        // end only if that has NAPI, which GRO gives it. Docker's container end can be reached
        // only before Docker takes it (at Join); later it simply stays a TC-only target.
        Status gro = endpoint.owner == Owner::Docker
                         ? kernel::set_gro(endpoint.ifname, true)
                         : kernel::run_in_netns(sandbox.netns_path, [&] {
                               return kernel::set_gro(endpoint.ifname, true);
                           });
        if (gro)
            entry.xdp_target = true;
        else
            spdlog::debug("endpoint {} reached from uplinks by TC only: {}",
                          endpoint.id.substr(0, 12), gro.error().message);
    }
    // Maps first, program last: the program drops traffic from a veth it has no entry for.
    BPFNET_TRY(state_->endpoints.put(entry));
    if (state_->socket_nat && endpoint.owner != Owner::Docker) {
        // Hairpin through the socket NAT for this sandbox's sockets towards its own network's
        // published ports. Docker's sandboxes do not exist yet at Join: they hairpin through the
        // kernel NAT, as does any sandbox whose cookie cannot be read.
        uint64_t cookie = 0;
        Status read = kernel::run_in_netns(sandbox.netns_path, [&]() -> Status {
            BPFNET_ASSIGN_OR_RETURN(cookie, current_netns_cookie());
            return {};
        });
        Status allowed = read ? state_->socket_nat->allow_sandbox(cookie, network) : read;
        if (!allowed)
            spdlog::warn("sandbox {} hairpins through the kernel NAT: {}", sandbox.name,
                         allowed.error().message);
    }
    return attach_tc_ingress(state_->endpoint_hook, state_->prog_fd, endpoint.host_ifname,
                             host->ifindex);
}

// Best effort: a namespace that is gone can never open a socket again, and entries of deleted
// networks are collected with the garbage.
void BpfDatapath::forget_sandbox_hairpin(const Sandbox& sandbox, uint32_t network) {
    if (!state_->socket_nat || sandbox.owner == Owner::Docker ||
        !kernel::netns_exists(sandbox.netns_path))
        return;
    uint64_t cookie = 0;
    Status read = kernel::run_in_netns(sandbox.netns_path, [&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(cookie, current_netns_cookie());
        return {};
    });
    if (read) state_->socket_nat->forget_sandbox(cookie, network);
}

Status BpfDatapath::remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) {
    // The cls_bpf filter goes with the veth.
    // The keys come from the kernel: the host end's ifindex (the veth goes below, after the
    // maps) names the source entry, which names the network of the destination entry. Only an
    // endpoint whose veth is already gone (a crash halfway) costs a scan of the maps.
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::find_link(sock, endpoint.host_ifname));
    const std::optional<uint32_t> ifindex =
        host ? std::optional<uint32_t>(static_cast<uint32_t>(host->ifindex)) : std::nullopt;
    for (uint32_t network : state_->endpoints.remove(ifindex, endpoint.ip, endpoint.mac))
        forget_sandbox_hairpin(sandbox, network);
    return kernel_.remove_endpoint(endpoint, sandbox);
}

// The firewall and the kernel NAT are applied for every network through the kernel datapath by
// the service (the kernel NAT stays as the slow path for what BPF leaves to the stack); this
// programs what BPF adds for the BPF networks' published ports: the maps the uplink program and the
// socket NAT share, the uplinks, and the end of flows whose port is gone.
Status BpfDatapath::sync_policy(const std::vector<NetworkSpec>& /*networks*/,
                                const std::vector<PublishedPort>& all_ports) {
    const auto ports = translated_ports(all_ports);
    BPFNET_TRY(state_->ports.sync(ports));
    BPFNET_ASSIGN_OR_RETURN(auto addresses, host_ipv4_addresses());
    BPFNET_TRY(state_->ports.sync_local_ips(addresses));
    BPFNET_TRY(forget_unpublished_flows(ports));
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel_.host_interfaces());
    BPFNET_TRY(sync_other_bridges(host));
    return sync_uplinks(host);
}

Result<bool> BpfDatapath::refresh_host() {
    BPFNET_TRY(kernel_.refresh_host());
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel_.host_interfaces());
    BPFNET_ASSIGN_OR_RETURN(auto addresses, host_ipv4_addresses());
    BPFNET_TRY(state_->ports.sync_local_ips(addresses));
    BPFNET_TRY(sync_other_bridges(host));
    BPFNET_TRY(sync_uplinks(host));
    return false;
}

Status BpfDatapath::sync_other_bridges(const kernel::HostInterfaces& host) {
    std::vector<Cidr> subnets;
    for (const auto& [subnet, bridge] : host.foreign_subnets) subnets.push_back(subnet);
    return state_->networks.sync_other_bridges(subnets);
}

// Attaches the uplink program to every configured uplink that exists, detaches it from devices no
// longer configured, and records the outcome per device for `bpfnet status`. A missing or failing
// uplink is not an error for the caller: its clients reach published ports through the kernel NAT.
Status BpfDatapath::sync_uplinks(const kernel::HostInterfaces& host) {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    std::set<std::string> wanted;
    std::map<std::string, std::string> outcome;
    for (const auto& [name, why] : host.uplinks) wanted.insert(name);
    if (!host.auto_note.empty()) outcome["auto"] = host.auto_note;
    std::set<std::string> attached;
    std::map<int, UplinkEgress> egress;
    std::map<std::string, UplinkEgress> egress_by_name;
    for (const auto& name : wanted) {
        BPFNET_ASSIGN_OR_RETURN(auto link, kernel::find_link(sock, name));
        if (!link) {
            outcome[name] = "missing";
            continue;
        }
        if (auto st =
                attach_tc_ingress(state_->uplink_hook, state_->uplink_prog_fd, name, link->ifindex);
            !st) {
            outcome[name] = st.error().message;
            spdlog::warn("uplink {}: {}", name, st.error().message);
            continue;
        }
        attached.insert(name);
        // Egress may leave through it once answers arriving on it are translated back.
        if (auto address = host.uplink_addresses.find(name);
            address != host.uplink_addresses.end()) {
            egress[link->ifindex] = UplinkEgress{address->second, state_->options.snat_ports};
            egress_by_name[name] = egress[link->ifindex];
        }
        const std::string xdp = sync_uplink_xdp(name, link->ifindex, link->kind);
        outcome[name] = fmt::format("{}tc ingress ({}){}",
                                    state_->xdp_uplinks.count(name) ? "xdp (native) + " : "",
                                    state_->uplink_hook.tcx ? "tcx" : "clsact", xdp);
    }
    // Before any uplink loses its program: egress stops leaving where answers are not translated.
    BPFNET_TRY(state_->uplink_maps.sync(egress));
    for (const auto& name : state_->uplinks)
        if (!attached.count(name)) BPFNET_TRY(detach_tc_ingress(state_->uplink_hook, name));
    for (auto it = state_->xdp_uplinks.begin(); it != state_->xdp_uplinks.end();) {
        if (attached.count(*it)) {
            ++it;
            continue;
        }
        BPFNET_TRY(detach_xdp(state_->xdp_links_dir, *it));
        it = state_->xdp_uplinks.erase(it);
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(state_->xdp_links_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!state_->xdp_uplinks.count(name)) BPFNET_TRY(detach_xdp(state_->xdp_links_dir, name));
    }
    TcIngressHook pins = state_->uplink_hook;
    pins.tcx = true;  // tcx links pinned by this or an earlier run
    for (const auto& entry : std::filesystem::directory_iterator(pins.links_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!attached.count(name) || !state_->uplink_hook.tcx)
            BPFNET_TRY(detach_tc_ingress(pins, name));
    }
    state_->egress_uplinks = std::move(egress_by_name);
    state_->uplinks = std::move(attached);
    state_->uplink_state = std::move(outcome);
    return {};
}

bool BpfDatapath::xdp_may_run() const {
    return state_->options.uplink_xdp != "never" && !state_->options.uplinks.empty();
}

// Returns "" when XDP runs on the uplink, else "; XDP not used: <why>".
std::string BpfDatapath::sync_uplink_xdp(const std::string& ifname, int ifindex,
                                         const std::string& kind) {
    std::string why;
    if (state_->options.uplink_xdp == "never") {
        why = "--uplink-xdp never";
    } else if (state_->options.uplink_xdp == "auto" && kind == "veth") {
        why =
            "veth (its peer may pass partially checksummed packets; --uplink-xdp always "
            "overrides)";
    } else if (auto st =
                   attach_xdp_native(state_->xdp_links_dir, state_->uplink_xdp_fd, ifname, ifindex);
               !st) {
        why = st.error().message;
    }
    if (why.empty()) {
        state_->xdp_uplinks.insert(ifname);
        return "";
    }
    if (state_->xdp_uplinks.erase(ifname) ||
        std::filesystem::exists(state_->xdp_links_dir + "/" + ifname)) {
        if (auto st = detach_xdp(state_->xdp_links_dir, ifname); !st)
            spdlog::warn("uplink {}: {}", ifname, st.error().message);
    }
    return "; XDP not used: " + why;
}

Status BpfDatapath::publish_ports(const std::vector<PublishedPort>& all_ports) {
    const auto ports = translated_ports(all_ports);
    BPFNET_TRY(state_->ports.put(ports));
    for (const auto& p : ports) state_->published[port_id(p.binding)] = port_target(p);
    return {};
}

Status BpfDatapath::unpublish_ports(const std::vector<PublishedPort>& all_ports) {
    const auto ports = translated_ports(all_ports);
    if (ports.empty()) return {};
    BPFNET_TRY(state_->ports.erase(ports));
    for (const auto& p : ports) state_->published.erase(port_id(p.binding));
    return forget_flows_outside_published();
}

// A flow to a port that is no longer published (or now leads elsewhere) must not keep reaching
// the old endpoint: its entries go when the port does. The scan only runs when a port went away.
Status BpfDatapath::forget_unpublished_flows(const std::vector<PublishedPort>& ports) {
    std::map<PortId, std::pair<uint32_t, uint16_t>> now;
    for (const auto& p : ports) now[port_id(p.binding)] = port_target(p);
    bool removed = false;
    for (const auto& [id, target] : state_->published) {
        auto it = now.find(id);
        removed = removed || it == now.end() || it->second != target;
    }
    state_->published = std::move(now);
    if (!removed) return {};
    return forget_flows_outside_published();
}

Status BpfDatapath::forget_flows_outside_published() {
    const auto& now = state_->published;
    std::set<uint32_t> local;
    if (auto addresses = host_ipv4_addresses(); addresses) local = std::move(*addresses);
    state_->conntrack.forget_flows_if([&](const bpfnet_ct_key& key, const bpfnet_ct_entry& entry) {
        if (entry.flags & BPFNET_CT_F_EGRESS) return false;  // started by an endpoint: no port
        const std::pair<uint32_t, uint16_t> target{entry.nat_addr, entry.nat_port};
        auto exact = now.find({key.daddr, key.dport, key.proto});
        auto any = now.find({0, key.dport, key.proto});
        const bool still = exact != now.end() ? exact->second == target
                                              : any != now.end() && local.count(key.daddr) &&
                                                    any->second == target;
        return !still;
    });
    return {};
}

std::string BpfDatapath::published_ports_path() const {
    std::string outside = "from outside: ";
    if (state_->uplink_state.empty()) {
        outside += "kernel NAT (no uplinks configured)";
    } else {
        std::vector<std::string> parts;
        for (const auto& [name, what] : state_->uplink_state)
            parts.push_back(fmt::format("{} {}", name, what));
        outside += fmt::format(
            "BPF DNAT + conntrack ({} entries) at uplink {}; fragments, SCTP to another port and "
            "other devices: kernel NAT",
            state_->options.ct_max_entries, fmt::join(parts, ", "));
    }
    std::string host = state_->socket_nat ? "from the host: BPF socket NAT (cgroup " +
                                                state_->socket_nat->cgroup_root() + ")"
                                          : "from the host: kernel NAT (socket NAT unavailable: " +
                                                state_->socket_nat_unavailable + ")";
    return outside + "; " + host +
           "; hairpin: BPF socket NAT for sandboxes on the endpoint's network, kernel NAT "
           "otherwise";
}

std::string BpfDatapath::egress_path() const {
    if (state_->egress_uplinks.empty())
        return "nowhere: no uplink with an IPv4 address has the uplink program, so every flow "
               "goes to the host's stack";
    std::vector<std::string> parts;
    for (const auto& [name, uplink] : state_->egress_uplinks)
        parts.push_back(fmt::format("{} (SNAT {}, ports {}-{})", name, uplink.snat_address.str(),
                                    uplink.ports.first, uplink.ports.last));
    std::string warning;
    // A host socket's ephemeral port in the SNAT range could share a 5-tuple with an egress flow,
    // whose answers would then go to the container.
    const PortRange snat = state_->options.snat_ports;
    if (auto text = kernel::read_sysctl("net.ipv4.ip_local_port_range"); text)
        if (auto ephemeral = parse_port_range(*text); ephemeral && overlaps(snat, *ephemeral))
            warning = fmt::format(
                " (WARNING: overlaps ip_local_port_range {}-{}; set --snat-ports "
                "outside it)",
                ephemeral->first, ephemeral->last);
    return fmt::format("out of {}{}", fmt::join(parts, ", "), warning);
}

Status BpfDatapath::remove_policy() {
    return kernel_.remove_policy();
}

Result<std::vector<std::string>> BpfDatapath::collect_garbage(const std::set<std::string>&) {
    std::vector<std::string> removed;
    std::error_code ec;
    // Endpoints' tcx links pinned by an earlier version: their veths carry the cls_bpf filter
    // now (ensure_endpoint ran first at start), so every pin here is stale.
    TcIngressHook pins = state_->endpoint_hook;
    pins.tcx = true;
    for (const auto& entry : std::filesystem::directory_iterator(pins.links_dir, ec)) {
        std::string name = entry.path().filename().string();
        BPFNET_TRY(detach_tc_ingress(pins, name));
        removed.push_back("tcx link " + name);
    }
    // Entries whose device is gone can never match a packet again; they only take map space.
    state_->endpoints.forget_interfaces_if(
        [](uint32_t ifindex) { return !ifindex_exists(ifindex); });
    state_->endpoints.forget_unbacked_destinations();
    return removed;
}

void BpfDatapath::forget_networks_except(const std::set<uint32_t>& live) {
    state_->networks.forget_networks_except(live);
    state_->endpoints.forget_networks_except(live);
    state_->overlay_maps.forget_networks_except(live);
    if (state_->socket_nat) state_->socket_nat->forget_networks_except(live);
    state_->networks.forget_subnets_except(live);
}

}  // namespace bpfnet

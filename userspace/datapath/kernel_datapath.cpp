#include "datapath/kernel_datapath.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/drop_log.h"
#include "kernel/neighbours.h"
#include "kernel/netlink.h"
#include "kernel/netns.h"
#include "kernel/routed_port.h"
#include "kernel/sysctl.h"

namespace bpfnet {

namespace {

constexpr const char* kAliasPrefix = "bpfnet:";

Cidr gateway_cidr(const Network& network) {
    return Cidr{network.ipam.gateway, network.ipam.subnet.prefix_len};
}

}  // namespace

std::string default_bridge_name(const std::string& network_id) {
    return "bn-" + network_id.substr(0, 12);
}
std::string host_veth_name(const std::string& endpoint_id) {
    return "bnv-" + endpoint_id.substr(0, 11);
}
std::string handover_veth_name(const std::string& endpoint_id) {
    return "bnp-" + endpoint_id.substr(0, 11);
}

uint32_t network_ifgroup(const std::string& network_id) {
    // IDs are hex; anything else (a hand-made test ID) still gets a stable group.
    const std::string_view head = std::string_view(network_id).substr(0, 8);
    uint32_t group = 0;
    auto [end, ec] = std::from_chars(head.data(), head.data() + head.size(), group, 16);
    if (ec != std::errc{} || end != head.data() + head.size())
        group = static_cast<uint32_t>(std::hash<std::string_view>{}(head));
    // 31 bits: iproute2 prints groups as signed numbers, which would make the top half confusing.
    group &= 0x7fffffff;
    return group != 0 ? group : 1;
}

KernelDatapath::KernelDatapath(std::string instance, std::vector<std::string> uplinks)
    : instance_(std::move(instance)),
      uplinks_(std::move(uplinks)),
      nft_table_("bpfnet_" + instance_),
      docker_user_(instance_) {}

std::string KernelDatapath::forward_firewall_state() const {
    std::lock_guard lock(survey_mutex_);
    return log_state_.empty() ? docker_user_.state() : docker_user_.state() + "; " + log_state_;
}

bool KernelDatapath::drops_logged() {
    if (log_drops_) return *log_drops_;
    // Loaded nfnetlink_log shows itself here (in every namespace): then the rules will load and
    // the probe's transaction, which would otherwise load the module, is not needed.
    Status st;
    if (!std::filesystem::exists("/proc/net/netfilter/nfnetlink_log"))
        st = nft_.run(render_log_probe(nft_table_ + "_logprobe"));
    std::lock_guard lock(survey_mutex_);
    log_drops_ = st.ok();
    log_state_ =
        st ? fmt::format("nftables drops logged to NFLOG group {} (bpfnet monitor)", kDropLogGroup)
           : "nftables drops counted, not logged (" + st.error().message + ")";
    if (!st) spdlog::warn("firewall: {}", log_state_);
    return *log_drops_;
}

Result<kernel::HostInterfaces> KernelDatapath::survey_host() const {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    return kernel::survey_host_interfaces(sock, uplinks_,
                                          fmt::format("{}{}:", kAliasPrefix, instance_));
}

std::string KernelDatapath::host_interfaces_state() const {
    std::lock_guard lock(survey_mutex_);
    if (!surveyed_) {
        auto host = survey_host();
        if (!host) return "survey failed: " + host.error().message;
        last_survey_ = std::move(*host);
        surveyed_ = true;
    }
    std::vector<std::string> uplinks;
    for (const auto& [name, why] : last_survey_.uplinks)
        uplinks.push_back(fmt::format("{} ({})", name, why));
    std::map<std::string, std::vector<std::string>> bridges;
    for (const auto& [subnet, bridge] : last_survey_.foreign_subnets)
        bridges[bridge].push_back(subnet.str());
    std::vector<std::string> others;
    for (const auto& [bridge, subnets] : bridges)
        others.push_back(fmt::format("{} {}", bridge, fmt::join(subnets, " ")));
    return fmt::format(
        "uplinks: {}; other container networks (isolated both ways): {}",
        uplinks.empty()
            ? (last_survey_.auto_note.empty() ? std::string("none") : last_survey_.auto_note)
            : fmt::format("{}", fmt::join(uplinks, ", ")),
        others.empty() ? std::string("none") : fmt::format("{}", fmt::join(others, ", ")));
}

Result<bool> KernelDatapath::refresh_host() {
    BPFNET_ASSIGN_OR_RETURN(auto host, survey_host());
    std::lock_guard lock(survey_mutex_);
    // The first survey changes nothing that was applied: the first policy sync uses it.
    const bool uplinks_changed = surveyed_ && host.uplinks != last_survey_.uplinks;
    last_survey_ = std::move(host);
    surveyed_ = true;
    return uplinks_changed;
}

Result<kernel::HostInterfaces> KernelDatapath::host_interfaces() {
    {
        std::lock_guard lock(survey_mutex_);
        if (surveyed_) return last_survey_;
    }
    BPFNET_TRY(refresh_host());
    std::lock_guard lock(survey_mutex_);
    return last_survey_;
}

std::string KernelDatapath::owner_alias(const std::string& what, const std::string& id) const {
    return fmt::format("{}{}:{}:{}", kAliasPrefix, instance_, what, id.substr(0, 12));
}

bool KernelDatapath::owned_by_us(const std::string& alias) const {
    return alias.rfind(fmt::format("{}{}:", kAliasPrefix, instance_), 0) == 0;
}

Status KernelDatapath::ensure_network(const NetworkSpec& spec) {
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto existing, kernel::find_link(sock, network.bridge_name));
    if (existing) {
        // A bridge of that name that we did not make belongs to someone else; never adopt or
        // delete it (docker would reuse it, but then `network rm` could not tell whose it is).
        if (existing->kind != "bridge" || !owned_by_us(existing->alias)) {
            return fail(ErrorKind::Conflict,
                        fmt::format("interface {} already exists and is not managed by this bpfnet "
                                    "agent; choose another {}",
                                    network.bridge_name, opt::kBridgeName));
        }
        // Bridges made before the agent zeroed it on creation.
        BPFNET_TRY(kernel::zero_bridge_forward_delay(sock, network.bridge_name));
    } else {
        BPFNET_TRY(kernel::create_bridge(sock, network.bridge_name, spec.options.mtu,
                                         owner_alias("net", network.id)));
    }
    // gateway_mode_ipv4=isolated: the bridge has no address, so not even the host is reachable.
    if (spec.options.gateway_mode != GatewayMode::Isolated)
        BPFNET_TRY(kernel::add_address(sock, network.bridge_name, gateway_cidr(network)));
    BPFNET_TRY(kernel::set_link_up(sock, network.bridge_name));
    if (!spec.options.enable_icc) {
        // icc=false is an ip/ip6 forward rule matching bridge-to-same-bridge traffic, which only
        // sees bridged frames through br_netfilter. Without it the rule would silently not apply.
        for (const char* key :
             {"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"}) {
            auto st = kernel::write_sysctl(key, "1");
            if (!st && st.error().kind == ErrorKind::NotFound) {
                return fail(
                    ErrorKind::Unsupported,
                    fmt::format("{}=false needs the kernel's br_netfilter (modprobe br_netfilter)",
                                opt::kEnableIcc));
            }
            BPFNET_TRY(st);
        }
    }
    if (!network.internal) {
        // Routing between the bridge and the uplinks needs forwarding on, as docker turns it on.
        BPFNET_TRY(kernel::write_sysctl("net.ipv4.ip_forward", "1"));
    }
    return {};
}

Status KernelDatapath::remove_network(const Network& network) {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto existing, kernel::find_link(sock, network.bridge_name));
    if (!existing) return {};
    // A crash between creating the bridge and labelling it leaves our default-named bridge without
    // an alias; the store recorded that name before creation, so it is still ours to delete.
    bool unlabelled_default =
        existing->alias.empty() && network.bridge_name == default_bridge_name(network.id);
    if (!owned_by_us(existing->alias) && !unlabelled_default) {
        spdlog::warn("not deleting {}: it is not marked as created by this agent",
                     network.bridge_name);
        return {};
    }
    return kernel::delete_link(sock, network.bridge_name);
}

// Docker endpoints: the pair is made on the host and the container end handed to Docker, which
// moves it into the sandbox, renames it and gives it its addresses and routes (Join's contract).
Status KernelDatapath::ensure_docker_endpoint(const NetworkSpec& spec, const Endpoint& endpoint) {
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host_end, kernel::find_link(host, endpoint.host_ifname));
    if (host_end) {
        BPFNET_TRY(attach_host_end(host, spec, endpoint));
        return kernel::set_link_up(host, endpoint.host_ifname);
    }
    if (endpoint.state == Lifecycle::Ready) {
        // The container end lives in Docker's sandbox under a name Docker chose; a new pair could
        // not be put in its place without Docker, so say what happened and how to repair it.
        return fail(ErrorKind::Internal,
                    fmt::format("the host end {} of Docker endpoint {} has disappeared; reconnect "
                                "the container (docker network disconnect, then connect)",
                                endpoint.host_ifname, endpoint.id.substr(0, 12)));
    }
    // An interrupted Join may have left the container end behind on the host.
    BPFNET_TRY(kernel::delete_link(host, endpoint.ifname));
    kernel::VethSpec veth{
        .host_name = endpoint.host_ifname,
        .host_alias = owner_alias("ep", endpoint.id),
        .bridge_name = "",  // attach_host_end makes it a bridge port or a routed port
        .peer_name = endpoint.ifname,
        .peer_netns_path = "",
        .peer_mac = endpoint.mac,
        .mtu = static_cast<unsigned>(spec.options.mtu),
        .host_ipv6 = false,
    };
    BPFNET_TRY(kernel::create_veth(host, veth));
    Status attached = attach_host_end(host, spec, endpoint);
    // A pair that cannot be attached (a full network) is useless: leave nothing behind.
    if (!attached) (void)kernel::delete_link(host, endpoint.host_ifname);
    return attached;
}

// A bridge port, or a routed port (kernel/routed_port.h) as the network's endpoint mode says:
// under `auto` an endpoint stays what it became, and one the bridge has no room for is routed.
Status KernelDatapath::attach_host_end(kernel::NlSocket& host, const NetworkSpec& spec,
                                       const Endpoint& endpoint) {
    const Network& network = spec.network;
    const EndpointMode mode = spec.options.endpoint_mode;
    const uint32_t group = network_ifgroup(network.id);
    BPFNET_ASSIGN_OR_RETURN(auto link, kernel::find_link(host, endpoint.host_ifname));
    if (!link) {
        return fail(ErrorKind::Internal,
                    fmt::format("{} vanished while connecting", endpoint.host_ifname));
    }
    bool routed = mode == EndpointMode::Routed ||
                  (mode == EndpointMode::Auto && kernel::is_routed_port(*link, group));
    if (!routed) {
        Status port = kernel::set_link_master(host, endpoint.host_ifname, network.bridge_name);
        if (port) {
            // Published ports reached from the endpoint itself come back through its own port.
            BPFNET_TRY(kernel::set_bridge_port_hairpin(host, endpoint.host_ifname));
            // The host never ARPs for its endpoints (see kernel/neighbours.h).
            BPFNET_ASSIGN_OR_RETURN(auto bridge, kernel::find_link(host, network.bridge_name));
            if (!bridge) {
                return fail(ErrorKind::Internal,
                            fmt::format("{} vanished while connecting", network.bridge_name));
            }
            return kernel::replace_permanent_neighbour(host, bridge->ifindex, endpoint.ip,
                                                       endpoint.mac);
        }
        if (mode != EndpointMode::Auto || port.error().kind != ErrorKind::Exhausted) return port;
        spdlog::debug("bridge {} is full: endpoint {} is routed", network.bridge_name,
                      endpoint.id.substr(0, 12));
    }
    return kernel::make_routed_port(host, kernel::RoutedPortSpec{
                                              .ifname = endpoint.host_ifname,
                                              .bridge = network.bridge_name,
                                              .group = group,
                                              .endpoint_ip = endpoint.ip,
                                              .endpoint_mac = endpoint.mac,
                                              .gateway = network.ipam.gateway,
                                          });
}

Status KernelDatapath::ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                       const Sandbox& sandbox) {
    if (endpoint.owner == Owner::Docker) return ensure_docker_endpoint(spec, endpoint);
    const Network& network = spec.network;
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto inner, kernel::NlSocket::open_in_netns(sandbox.netns_path));

    BPFNET_ASSIGN_OR_RETURN(auto host_end, kernel::find_link(host, endpoint.host_ifname));
    BPFNET_ASSIGN_OR_RETURN(auto sandbox_end, kernel::find_link(inner, endpoint.ifname));
    // Either half missing (a crash mid-create, a sandbox namespace re-created after reboot) means
    // the pair is unusable: rebuild it from scratch rather than patch it.
    if (!host_end || !sandbox_end || sandbox_end->mac != endpoint.mac) {
        if (host_end) BPFNET_TRY(kernel::delete_link(host, endpoint.host_ifname));
        if (sandbox_end) BPFNET_TRY(kernel::delete_link(inner, endpoint.ifname));
        kernel::VethSpec veth{
            .host_name = endpoint.host_ifname,
            .host_alias = owner_alias("ep", endpoint.id),
            .bridge_name = "",  // attach_host_end makes it a bridge port or a routed port
            .peer_name = endpoint.ifname,
            .peer_netns_path = sandbox.netns_path,
            .peer_mac = endpoint.mac,
            .mtu = static_cast<unsigned>(spec.options.mtu),
            .host_ipv6 = false,
        };
        BPFNET_TRY(kernel::create_veth(host, veth));
        Status attached = attach_host_end(host, spec, endpoint);
        // A pair that cannot be attached (a full network) is useless: leave nothing behind.
        if (!attached) (void)kernel::delete_link(host, endpoint.host_ifname);
        BPFNET_TRY(attached);
    } else {
        BPFNET_TRY(attach_host_end(host, spec, endpoint));
        // A pair an older agent made may still carry IPv6 on its host end (see create_veth).
        BPFNET_TRY(kernel::disable_link_ipv6(endpoint.host_ifname));
        BPFNET_TRY(kernel::set_link_up(host, endpoint.host_ifname));
    }
    BPFNET_TRY(kernel::add_address(inner, endpoint.ifname,
                                   Cidr{endpoint.ip, network.ipam.subnet.prefix_len}));
    // Networks are IPv4-only, and as Docker does for those, the container's end gets no IPv6:
    // otherwise each new one sends router solicitations, MLD reports and DAD probes that the
    // bridge floods to every port of the network (measured: bursts that overflow the CPU's
    // receive backlog and drop other traffic with 4,000 endpoints on a host).
    BPFNET_TRY(kernel::disable_link_ipv6_in(sandbox.netns_path, endpoint.ifname));
    BPFNET_TRY(kernel::set_link_up(inner, endpoint.ifname));
    if (endpoint.default_route) {
        BPFNET_TRY(kernel::replace_default_route(inner, endpoint.ifname, network.ipam.gateway));
    }
    return {};
}

Status KernelDatapath::remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) {
    BPFNET_ASSIGN_OR_RETURN(auto host, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto host_end, kernel::find_link(host, endpoint.host_ifname));
    BPFNET_TRY(kernel::delete_link(host, endpoint.host_ifname));
    // The bridge's entry for a bridge port outlives the veth (a routed port's died with it). The
    // veth names its bridge; only when it was already gone is the whole table searched.
    if (!host_end)
        BPFNET_TRY(kernel::delete_permanent_neighbours(host, endpoint.ip, endpoint.mac));
    else if (host_end->master_ifindex > 0)
        BPFNET_TRY(kernel::delete_neighbour(host, host_end->master_ifindex, endpoint.ip));
    // Docker owns its sandboxes; the container end died with the host end (or, if Docker never
    // took it, is still on the host under its hand-over name).
    if (endpoint.owner == Owner::Docker) return kernel::delete_link(host, endpoint.ifname);
    // The sandbox end normally dies with its peer; if the host end was already gone (half-made
    // pair), remove a leftover of that name in the sandbox too.
    if (kernel::netns_exists(sandbox.netns_path)) {
        BPFNET_ASSIGN_OR_RETURN(auto inner, kernel::NlSocket::open_in_netns(sandbox.netns_path));
        BPFNET_ASSIGN_OR_RETURN(auto leftover, kernel::find_link(inner, endpoint.ifname));
        if (leftover && leftover->kind == "veth")
            BPFNET_TRY(kernel::delete_link(inner, endpoint.ifname));
    }
    return {};
}

namespace {

// A routed network's binding opens the container port itself; every other one is translated.
void split_ports(const std::vector<PublishedPort>& ports, std::vector<FirewallPort>& nat,
                 std::vector<FirewallOpenPort>& open) {
    for (const auto& p : ports) {
        if (p.routed) {
            open.push_back(FirewallOpenPort{.proto = p.binding.proto,
                                            .endpoint_ip = p.endpoint_ip,
                                            .endpoint_port = p.binding.container_port});
            continue;
        }
        nat.push_back(FirewallPort{.proto = p.binding.proto,
                                   .host_ip = p.binding.host_ip,
                                   .host_port = p.binding.host_port,
                                   .endpoint_ip = p.endpoint_ip,
                                   .endpoint_port = p.binding.container_port});
    }
}

bool same_port(const FirewallPort& a, const FirewallPort& b) {
    return a.proto == b.proto && a.host_ip == b.host_ip && a.host_port == b.host_port;
}
bool same_port(const FirewallOpenPort& a, const FirewallOpenPort& b) {
    return a.proto == b.proto && a.endpoint_ip == b.endpoint_ip &&
           a.endpoint_port == b.endpoint_port;
}

// Removes one entry equal to `port` from `from`; whether there was one.
template <typename Port>
bool erase_one(std::vector<Port>& from, const Port& port) {
    auto it =
        std::find_if(from.begin(), from.end(), [&](const Port& p) { return same_port(p, port); });
    if (it == from.end()) return false;
    from.erase(it);
    return true;
}

}  // namespace

// Connections from the host's loopback are DNATed out through the bridge with a 127/8 source
// (masqueraded on the way): the kernel routes those only with route_localnet on the bridge. The
// firewall drops 127/8 destinations arriving from bridges, so endpoints gain nothing.
Status KernelDatapath::allow_loopback_dnat(const std::vector<PublishedPort>& ports) {
    std::set<std::string> bridges;
    for (const auto& p : ports)
        if (!p.routed) bridges.insert(p.bridge);
    for (const auto& bridge : bridges) {
        // Slash form: a bridge name may contain dots.
        BPFNET_TRY(kernel::write_sysctl("net/ipv4/conf/" + bridge + "/route_localnet", "1"));
    }
    return {};
}

Status KernelDatapath::publish_ports(const std::vector<PublishedPort>& ports) {
    return change_ports(ports, true);
}

Status KernelDatapath::unpublish_ports(const std::vector<PublishedPort>& ports) {
    return change_ports(ports, false);
}

// Element edits when the ruleset keeps its shape (the routed ports' set exists before and after);
// otherwise the whole ruleset again, from what was applied plus the
// change, so no store or host survey is read either way.
Status KernelDatapath::change_ports(const std::vector<PublishedPort>& ports, bool add) {
    if (!applied_) return fail(ErrorKind::Internal, "no firewall applied yet");
    PortElements change{.add = add};
    split_ports(ports, change.ports, change.routed_ports);
    FirewallSpec next = *applied_;
    if (add) {
        BPFNET_TRY(allow_loopback_dnat(ports));
        next.ports.insert(next.ports.end(), change.ports.begin(), change.ports.end());
        next.routed_ports.insert(next.routed_ports.end(), change.routed_ports.begin(),
                                 change.routed_ports.end());
    } else {
        for (const auto& p : change.ports) {
            if (!erase_one(next.ports, p))
                return fail(ErrorKind::Internal,
                            fmt::format("published port {}/{} is not in the firewall", p.host_port,
                                        to_string(p.proto)));
        }
        // Two bindings may open one container port: its element goes with the last of them.
        std::vector<FirewallOpenPort> gone;
        for (const auto& p : change.routed_ports) {
            if (!erase_one(next.routed_ports, p))
                return fail(ErrorKind::Internal, "routed port is not in the firewall");
            const bool still_open = std::any_of(next.routed_ports.begin(), next.routed_ports.end(),
                                                [&](const auto& q) { return same_port(p, q); });
            const bool listed = std::any_of(gone.begin(), gone.end(),
                                            [&](const auto& q) { return same_port(p, q); });
            if (!still_open && !listed) gone.push_back(p);
        }
        change.routed_ports = std::move(gone);
    }
    // The published-port maps are always in the ruleset; the routed_open set (and the rules that
    // name it) only while some routed port is open.
    const bool same_shape = next.routed_ports.empty() == applied_->routed_ports.empty();
    const std::string script =
        same_shape ? render_port_elements(nft_table_, change) : render_ruleset(next);
    // An nft transaction is atomic: when it fails, the tables are still what applied_ says.
    if (!script.empty()) BPFNET_TRY(nft_.run(script));
    applied_ = std::move(next);
    return {};
}

Status KernelDatapath::sync_policy(const std::vector<NetworkSpec>& networks,
                                   const std::vector<PublishedPort>& ports) {
    // With no networks there is nothing to enforce: leave no tables behind (an agent that is never
    // started again must not leave rules that could match a later network's subnet).
    if (networks.empty()) return remove_policy();
    FirewallSpec spec;
    spec.table = nft_table_;
    spec.log_drops = drops_logged();
    BPFNET_ASSIGN_OR_RETURN(auto host, host_interfaces());
    spec.uplinks = host.uplink_names();
    split_ports(ports, spec.ports, spec.routed_ports);
    BPFNET_TRY(allow_loopback_dnat(ports));
    for (const auto& n : networks) {
        spec.networks.push_back(FirewallNetwork{
            .bridge = n.network.bridge_name,
            .subnet = n.network.ipam.subnet,
            .icc = n.options.enable_icc,
            .masquerade = n.options.enable_ip_masquerade,
            .internal = n.network.internal,
            .group = n.pass_through ? 0 : network_ifgroup(n.network.id),
            .overlay = n.pass_through,
            .gateway_mode = n.options.gateway_mode,
            .trusted = n.options.trusted_host_interfaces,
        });
    }
    applied_.reset();  // a failed run may have left the tables as they were or gone
    BPFNET_TRY(nft_.run(render_ruleset(spec)));
    applied_ = std::move(spec);
    // Every time, not once: Docker may have started (and set FORWARD to DROP) since the last sync,
    // or someone flushed the chain.
    return docker_user_.ensure();
}

Status KernelDatapath::remove_policy() {
    applied_.reset();
    BPFNET_TRY(docker_user_.remove());
    return nft_.run(render_teardown(nft_table_));
}

Result<std::vector<std::string>> KernelDatapath::collect_garbage(
    const std::set<std::string>& keep) {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto links, kernel::list_links(sock));
    std::vector<std::string> removed;
    // Endpoints first: deleting a bridge with ports would leave the veths behind un-enslaved.
    for (int pass = 0; pass < 2; ++pass) {
        for (const auto& link : links) {
            bool bridge = link.kind == "bridge";
            if ((pass == 0) == bridge) continue;
            if (!owned_by_us(link.alias) || keep.count(link.name)) continue;
            BPFNET_TRY(kernel::delete_link(sock, link.name));
            removed.push_back(link.name);
        }
    }
    return removed;
}

}  // namespace bpfnet

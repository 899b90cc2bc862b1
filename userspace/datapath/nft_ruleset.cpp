// Renders the agent's whole firewall as one nft script and applies it through libnftables.
//
// Layout (all tables named spec.table):
//   table ip  T: set `bridges`; chain forward (isolation, internal, icc=false, then the mark that
//                lets the rest pass Docker's FORWARD DROP); chain postrouting (masquerade).
//   table ip6 T: set `bridges`; chain forward with the same filter rules, so IPv6 (link-local or
//                otherwise) cannot bypass isolation, internal networks or icc=false.
//
// Why icc=false is an ip/ip6 forward rule (`iifname A oifname A drop`) and not a bridge-family rule
// (`meta ibrname A ...`): naming the bridge from the bridge family needs the kernel's
// nft_meta_bridge (CONFIG_NFT_BRIDGE_META), which many kernels (including the 6.18 this was built
// on) lack; the rule is then rejected with EOPNOTSUPP and, the script being one transaction, no
// policy would apply at all. Frames bridged between two ports instead reach the ip/ip6 forward
// hooks through br_netfilter (with bridge-nf-call-ip{,6}tables=1, the kernel default once
// br_netfilter is present), with the bridge as both input and output interface. That is the
// mechanism docker's own `-i br -o br -j DROP` relies on. ARP does not pass those hooks, so it
// still flows, as with docker.
//
// Every script starts by deleting the tables (`add table` first, so the delete cannot fail when
// they are missing) and then declares them afresh: one transaction that replaces the whole state
// whether or not it existed. The bridge-family table is part of that idiom only to remove a table
// left by an agent that used the bridge-family design.
#include "datapath/nft_ruleset.h"

#include "datapath/docker_user_chain.h"

#include <nftables/libnftables.h>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

namespace bpfnet {
namespace {

// nft's scanner takes a quoted string as everything up to the next '"' (no escapes), so any byte
// but '"' can be written inside quotes. Two exceptions: a trailing '*' makes the string a prefix
// wildcard unless written as "\*"; when nft sees that "\*" it strips every backslash in the string,
// and it checks the length before unescaping (so "\*" counts two bytes of the 15). A name with '"',
// or ending in '*' and containing '\' or 15 bytes long, therefore cannot be written at all.
// For such a name we emit a reference to an undefined variable: nft then rejects the script with
// "unknown identifier 'interface_name_not_expressible_in_nftables'", the transaction does nothing
// and the previous policy stays. Failing closed beats a rule that silently matches another device.
std::string quote_ifname(std::string_view name) {
    const bool trailing_star = !name.empty() && name.back() == '*';
    if (name.empty() || name.find('"') != std::string_view::npos ||
        (trailing_star && (name.size() >= 15 || name.find('\\') != std::string_view::npos))) {
        return "$interface_name_not_expressible_in_nftables";
    }
    std::string out = "\"";
    if (trailing_star) {
        out.append(name.substr(0, name.size() - 1));
        out += "\\*";
    } else {
        out.append(name);
    }
    out += '"';
    return out;
}

// Comments are informational only, so instead of escaping we reduce them to printable ASCII without
// quotes or backslashes (nft would otherwise misparse or unescape them).
std::string quote_comment(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        const bool printable = c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
        out += printable ? c : '?';
    }
    out += '"';
    return out;
}

std::string comment(std::string_view what, std::string_view bridge) {
    std::string text = "bpfnet ";
    text.append(what);
    text += ": ";
    text.append(bridge);
    return quote_comment(text);
}

void append_rule(std::string& out, const std::string& rule) {
    out += "\t\t";
    out += rule;
    out += '\n';
}

// `{ "a", "b" }`: an anonymous set of interface names for one rule.
std::string ifname_list(const std::vector<std::string>& names) {
    std::vector<std::string> quoted;
    for (const auto& n : names) quoted.push_back(quote_ifname(n));
    return fmt::format("{{ {} }}", fmt::join(quoted, ", "));
}

// What the drops above let through and bpfnet forwards for its networks gets kForwardAcceptMark,
// which this agent's DOCKER-USER rule accepts (see docker_user_chain.h): traffic between bpfnet
// networks (what isolation and icc left), published ports (DNATed) and replies into the networks,
// direct routing where the gateway mode allows it, and egress to any device but another bridge
// (an uplink that is a bridge excepted). What goes from a bpfnet network into another bridge
// after the isolation drops (DNATed connections to Docker's published ports) is left unmarked, so
// Docker's own FORWARD rules decide about Docker's networks: bpfnet opens nothing Docker would not.
// A published port's element of map published_any (host address 0) or published_ip, with its
// DNAT target or (for a delete) its key alone.
std::string published_element(const FirewallPort& p, bool with_target) {
    std::string element = std::string(to_string(p.proto)) + " . " + std::to_string(p.host_port);
    if (p.host_ip.value != 0) element = p.host_ip.str() + " . " + element;
    if (with_target)
        element += " : " + p.endpoint_ip.str() + " . " + std::to_string(p.endpoint_port);
    return element;
}

// A routed network's open container port: its element of set routed_open.
std::string routed_open_element(const FirewallOpenPort& p) {
    return fmt::format("{} . {} . {}", p.endpoint_ip.str(), to_string(p.proto), p.endpoint_port);
}

void render_accept_marks(std::string& out, const FirewallSpec& spec, bool with_groups) {
    const std::string mark = fmt::format(" meta mark set meta mark | {:#010x}", kForwardAcceptMark);
    // An overlay's frames between its local ports and its VXLAN port, which br_netfilter shows to
    // the forward hook with the overlay's bridge as input and output.
    for (const auto& n : spec.networks) {
        if (!n.overlay) continue;
        const std::string br = quote_ifname(n.bridge);
        append_rule(out, "iifname " + br + " oifname " + br + mark);
    }
    std::vector<std::string> from_ours{"iifname @bridges"};
    std::vector<std::string> to_ours{"oifname @bridges"};
    if (with_groups) {
        from_ours.emplace_back("iifgroup @groups");
        to_ours.emplace_back("oifgroup @groups");
    }
    for (const auto& from : from_ours)
        for (const auto& to : to_ours) append_rule(out, from + " " + to + mark);
    for (const auto& to : to_ours) {
        append_rule(out, to + " ct status dnat" + mark);
        append_rule(out, to + " ct state established,related" + mark);
    }
    for (const auto& from : from_ours) {
        append_rule(out, from + " meta oifkind != \"bridge\"" + mark);
        append_rule(out, from + " oifname @uplinks" + mark);
    }
    // New connections from outside that the gateway mode lets through.
    for (const auto& n : spec.networks) {
        if (n.overlay || n.internal) continue;
        std::vector<std::string> to_network{"oifname " + quote_ifname(n.bridge)};
        if (n.group) to_network.push_back("oifgroup " + std::to_string(n.group));
        std::string from;
        if (n.gateway_mode == GatewayMode::Nat) {
            if (n.trusted.empty()) continue;
            from = "iifname " + ifname_list(n.trusted) + " ";
        }
        for (const auto& to : to_network) append_rule(out, from + to + mark);
    }
}

// The rules every policed network adds beyond isolation and icc: drops of traffic between the
// network and other container networks on the host (bridges that are neither this agent's nor
// uplinks: Docker's docker0, libvirt's virbr0, another runtime's), both ways, and of connections
// routed straight to a container's address where the gateway mode does not allow them.
// DNATed connections (published ports, this agent's or Docker's) are exempt, as between networks.
void render_outside_rules(std::string& out, const FirewallNetwork& n, bool ipv4, bool with_groups,
                          bool with_routed_ports, bool log_drops) {
    // " counter [log ...] drop comment ...": the log statement hands the packet to NFLOG group
    // kDropLogGroup, where `bpfnet monitor` shows it with the same reason word a BPF drop has.
    auto drop = [&](std::string_view reason, std::string_view what) {
        std::string verdict = " counter";
        if (log_drops) {
            verdict += " log prefix " + quote_comment(drop_log_prefix(reason, n.bridge)) +
                       fmt::format(" group {}", kDropLogGroup);
        }
        return verdict + " drop comment " + comment(what, n.bridge);
    };
    const std::string br = quote_ifname(n.bridge);
    const std::string group = std::to_string(n.group);
    std::vector<std::string> from_network{"iifname " + br};
    std::vector<std::string> to_network{"oifname " + br};
    if (n.group) {
        from_network.push_back("iifgroup " + group);
        to_network.push_back("oifgroup " + group);
    }
    for (const auto& from : from_network) {
        append_rule(out, from +
                             " meta oifkind \"bridge\" oifname != @all_bridges oifname != @uplinks "
                             "ct status ! dnat" +
                             drop("other-bridge", "isolation from other bridges, outbound"));
    }
    for (const auto& to : to_network) {
        append_rule(out, to +
                             " meta iifkind \"bridge\" iifname != @all_bridges iifname != @uplinks "
                             "ct status ! dnat" +
                             drop("other-bridge", "isolation from other bridges, inbound"));
    }
    if (n.gateway_mode == GatewayMode::NatUnprotected) return;
    // From anything but this agent's policed networks (their isolation drops cover them; an
    // overlay's bridge is not exempt) and the host itself (the output hook, not this one).
    std::string from_outside = " iifname != @bridges";
    if (with_groups) from_outside += " iifgroup != @groups";
    if (n.gateway_mode == GatewayMode::Nat && !n.trusted.empty())
        from_outside += " iifname != " + ifname_list(n.trusted);
    // Not only new connections: also what conntrack calls invalid (a stray RST, odd flags), as
    // Docker lets in only established and related traffic.
    std::string what = " ct state != { established, related } ct status ! dnat";
    if (n.gateway_mode == GatewayMode::Routed) {
        // Routed: the published container ports and ICMP are open, nothing else.
        what += ipv4 ? " meta l4proto != icmp" : " meta l4proto != ipv6-icmp";
        if (ipv4 && with_routed_ports)
            what += " ip daddr . meta l4proto . th dport != @routed_open";
    }
    for (const auto& to : to_network) {
        append_rule(out, to + from_outside + what + drop("unpublished", "direct routing"));
    }
}

void render_ifname_set(std::string& out, const char* name, const std::vector<std::string>& names) {
    out += std::string("\tset ") + name + " {\n\t\ttype ifname\n";
    std::set<std::string_view> seen;
    std::string elements;
    for (const auto& n : names) {
        // Duplicate elements would make nft reject the set declaration.
        if (!seen.insert(n).second) continue;
        if (!elements.empty()) elements += ", ";
        elements += quote_ifname(n);
    }
    // An empty `elements = { }` is a syntax error, so an empty set has no elements line.
    if (!elements.empty()) out += "\t\telements = { " + elements + " }\n";
    out += "\t}\n\n";
}

// The sets (bridges: the networks policed here; all_bridges: every bridge of this agent, overlays
// included; uplinks; groups: routed endpoint ports) and the forward chain. The same for the ip and
// ip6 families but for routed_open, the IPv4 container ports routed networks open. A network is
// its bridge plus its routed ports (interface group G): every rule about "the bridge" has a twin
// for the group.
void render_filter(std::string& out, const FirewallSpec& spec, bool ipv4) {
    std::vector<std::string> policed;
    std::vector<std::string> all;
    std::set<uint32_t> groups;
    for (const auto& n : spec.networks) {
        all.push_back(n.bridge);
        if (n.overlay) continue;
        policed.push_back(n.bridge);
        if (n.group != 0) groups.insert(n.group);
    }
    render_ifname_set(out, "bridges", policed);
    render_ifname_set(out, "all_bridges", all);
    render_ifname_set(out, "uplinks", spec.uplinks);
    // Only networks with routed ports need the set (and the rules that name it).
    if (!groups.empty()) {
        out += "\tset groups {\n\t\ttypeof meta iifgroup\n\t\telements = { " +
               fmt::format("{}", fmt::join(groups, ", ")) + " }\n\t}\n\n";
    }
    const bool with_routed_ports = ipv4 && !spec.routed_ports.empty();
    if (with_routed_ports) {
        std::string elements;
        std::set<std::tuple<uint32_t, int, uint16_t>> seen;
        for (const auto& p : spec.routed_ports) {
            if (!seen.insert({p.endpoint_ip.value, static_cast<int>(p.proto), p.endpoint_port})
                     .second)
                continue;
            if (!elements.empty()) elements += ", ";
            elements += routed_open_element(p);
        }
        out += "\tset routed_open {\n\t\ttype ipv4_addr . inet_proto . inet_service\n";
        out += "\t\telements = { " + elements + " }\n\t}\n\n";
    }
    // Priority filter - 1: run before other filter-priority forward chains on the host (firewalld,
    // a distribution's `inet filter`), which might accept the traffic first. Drops are final across
    // chains anyway; the earlier hook only keeps our counters accurate.
    out += "\tchain forward {\n";
    out += "\t\ttype filter hook forward priority filter - 1; policy accept;\n";
    for (const auto& n : spec.networks) {
        if (n.overlay) continue;
        const std::string br = quote_ifname(n.bridge);
        const std::string group = std::to_string(n.group);
        // " oifgroup != G": the network's own routed ports are not "elsewhere".
        const std::string not_own_out = n.group ? " oifgroup != " + group : "";
        const std::string not_own_in = n.group ? " iifgroup != " + group : "";
        if (n.internal) {
            // These also stop traffic to and from every other bridge, so the isolation rules
            // below would never match for an internal network and are left out.
            append_rule(out, "iifname " + br + " oifname != " + br + not_own_out +
                                 " counter drop comment " +
                                 comment("internal, outbound", n.bridge));
            append_rule(out, "oifname " + br + " iifname != " + br + not_own_in +
                                 " counter drop comment " + comment("internal, inbound", n.bridge));
            if (n.group) {
                append_rule(out, "iifgroup " + group + " oifname != " + br + not_own_out +
                                     " counter drop comment " +
                                     comment("internal, outbound from routed ports", n.bridge));
                append_rule(out, "oifgroup " + group + " iifname != " + br + not_own_in +
                                     " counter drop comment " +
                                     comment("internal, inbound to routed ports", n.bridge));
            }
        } else {
            // Dropping only what enters from this network is enough: every network has these
            // rules, so both directions between two networks are covered (replies included).
            // Published ports are reachable from every network, as with Docker (whose proxy
            // connects from the host): DNATed connections are exempt from isolation.
            const std::string verdict =
                " ct status ! dnat counter drop comment " + comment("isolation", n.bridge);
            append_rule(out, "iifname " + br + " oifname @bridges oifname != " + br + verdict);
            if (n.group) {
                append_rule(out, "iifname " + br + " oifgroup @groups" + not_own_out + verdict);
                append_rule(out,
                            "iifgroup " + group + " oifname @bridges oifname != " + br + verdict);
                append_rule(out, "iifgroup " + group + " oifgroup @groups" + not_own_out + verdict);
            }
        }
        if (!n.internal)
            render_outside_rules(out, n, ipv4, !groups.empty(), with_routed_ports, spec.log_drops);
        if (!n.icc) {
            const std::string verdict = " counter drop comment " + comment("icc=false", n.bridge);
            append_rule(out, "iifname " + br + " oifname " + br + verdict);
            if (n.group) {
                append_rule(out, "iifname " + br + " oifgroup " + group + verdict);
                append_rule(out, "iifgroup " + group + " oifname " + br + verdict);
                append_rule(out, "iifgroup " + group + " oifgroup " + group + verdict);
            }
        }
    }
    if (!spec.networks.empty()) render_accept_marks(out, spec, !groups.empty());
    out += "\t}\n";
}

bool has_routed_ports(const FirewallSpec& spec) {
    return std::any_of(spec.networks.begin(), spec.networks.end(),
                       [](const FirewallNetwork& n) { return n.group != 0; });
}

// route_localnet is on for bridges with published ports and on every routed port (so loopback
// connections can be DNATed out through them); never let an endpoint use that to reach the host's
// 127/8.
void render_loopback_guard(std::string& out, const FirewallSpec& spec) {
    out +=
        "\n\tchain loopback_guard {\n\t\ttype filter hook prerouting priority raw; policy "
        "accept;\n";
    const std::string guard = " ip daddr 127.0.0.0/8 counter drop comment " +
                              quote_comment("bpfnet: endpoints may not reach the host's loopback");
    append_rule(out, "iifname @bridges" + guard);
    if (has_routed_ports(spec)) append_rule(out, "iifgroup @groups" + guard);
    out += "\t}\n";
}

// Published ports: two DNAT maps (ports bound to one host address, ports bound to all of them)
// looked up in one hash step whatever their number, unlike one iptables rule per port. prerouting
// serves traffic arriving from outside and from endpoints (hairpin), output serves the host itself.
void render_published_ports(std::string& out, const FirewallSpec& spec) {
    std::string any_elements;
    std::string ip_elements;
    for (const auto& p : spec.ports) {
        std::string& elements = p.host_ip.value == 0 ? any_elements : ip_elements;
        if (!elements.empty()) elements += ", ";
        elements += published_element(p, true);
    }
    out += "\n\tmap published_any {\n";
    out += "\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n";
    if (!any_elements.empty()) out += "\t\telements = { " + any_elements + " }\n";
    out += "\t}\n\n\tmap published_ip {\n";
    out += "\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service\n";
    if (!ip_elements.empty()) out += "\t\telements = { " + ip_elements + " }\n";
    out += "\t}\n";
    render_loopback_guard(out, spec);
    const char* hooks[][2] = {{"prerouting", "dstnat"}, {"output", "-100"}};
    for (const auto& [hook, priority] : hooks) {
        out += std::string("\n\tchain ") + hook + " {\n\t\ttype nat hook " + hook + " priority " +
               priority + "; policy accept;\n";
        append_rule(out,
                    "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map "
                    "@published_ip");
        append_rule(out,
                    "fib daddr type local dnat ip to meta l4proto . th dport map @published_any");
        out += "\t}\n";
    }
}

// Source NAT for DNATed connections whose answers would otherwise not come back through the host.
void render_published_masquerades(std::string& out, const FirewallSpec& spec) {
    // Connections from the host's loopback (curl 127.0.0.1:8080) leave through a bridge
    // with a 127/8 source the endpoint cannot answer: give them the bridge's address.
    append_rule(out, "ct status dnat ip saddr 127.0.0.0/8 counter masquerade comment " +
                         quote_comment("bpfnet published ports: from loopback"));
    for (const auto& n : spec.networks) {
        if (n.internal || n.overlay) continue;
        // Hairpin: an endpoint reaching a published port of its own network through a host
        // address would get the answer straight from the peer's address; masquerading makes
        // the answer come back through the host, where conntrack reverses the DNAT.
        const std::string subnet = n.subnet.masked().str();
        append_rule(out, "ct status dnat ip saddr " + subnet + " ip daddr " + subnet +
                             " counter masquerade comment " + comment("hairpin", n.bridge));
    }
    // From another container network (a bridge that does not masquerade its own traffic):
    // the answer would go to that network's subnet, which endpoints may not reach (the BPF
    // endpoint program drops it before the host could reverse the DNAT). With the host's
    // address as source, the answer comes back through the host, as docker-proxy's would.
    std::vector<std::string> to_ours{"oifname @bridges"};
    if (has_routed_ports(spec)) to_ours.emplace_back("oifgroup @groups");
    for (const auto& to : to_ours) {
        append_rule(out, "ct status dnat " + to +
                             " meta iifkind \"bridge\" iifname != @all_bridges iifname != "
                             "@uplinks counter masquerade comment " +
                             quote_comment("bpfnet published ports: from other bridges"));
    }
}

void render_delete(std::string& out, const std::string& table) {
    for (const char* family : {"ip", "ip6", "bridge"}) {
        out += "add table ";
        out += family;
        out += ' ' + table + '\n';
        out += "delete table ";
        out += family;
        out += ' ' + table + '\n';
    }
}

struct NftCtxDeleter {
    void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};
using NftCtx = std::unique_ptr<nft_ctx, NftCtxDeleter>;

// nft reports each problem as "[<location>: ]Error: ..." followed by a source line and a caret
// marker. For a script given as a buffer the quoted source line is often not the one at fault, so
// the message keeps the "Error:" lines (at most three, joined into one line for logs and API
// replies) and falls back to the first lines of whatever nft printed.
std::string summarize_nft_error(std::string_view text) {
    constexpr int kMaxLines = 3;
    std::string errors;
    std::string first;
    std::vector<std::string_view> seen;
    int error_lines = 0;
    int first_lines = 0;
    while (!text.empty()) {
        const size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
            line.remove_suffix(1);
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
            line.remove_prefix(1);
        if (!line.empty()) {
            // The same error is reported once per offending expression; say it once.
            if (line.find("Error:") != std::string_view::npos && error_lines < kMaxLines &&
                std::find(seen.begin(), seen.end(), line) == seen.end()) {
                seen.push_back(line);
                if (!errors.empty()) errors += "; ";
                errors.append(line);
                ++error_lines;
            }
            if (first_lines < kMaxLines) {
                if (!first.empty()) first += "; ";
                first.append(line);
                ++first_lines;
            }
        }
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return errors.empty() ? first : errors;
}

// libnftables keeps some process-wide state (caches, GMP allocator hooks) and concurrent
// transactions gain nothing, so all runs in the process are serialized; each gets a fresh context
// so no cache outlives a run and sees a ruleset someone else changed meanwhile.
std::mutex nft_mutex;

}  // namespace

std::string render_log_probe(const std::string& table) {
    // A table of its own, made and deleted in one transaction: nothing of it ever stays.
    return fmt::format(
        "add table ip {0}\nadd chain ip {0} probe\nadd rule ip {0} probe counter log prefix "
        "\"{1}probe \" group {2} drop\ndelete table ip {0}\n",
        table, kDropLogPrefix, kDropLogGroup);
}

std::string render_ruleset(const FirewallSpec& spec) {
    std::string out = "# bpfnet firewall: generated, replaced as a whole on every change\n";
    render_delete(out, spec.table);

    out += "table ip " + spec.table + " {\n";
    render_filter(out, spec, true);
    // The published-port maps, chains and masquerades are there even with no port published, so
    // that publishing the first port (or unpublishing the last) changes map elements only, as any
    // other port does, instead of replacing the ruleset.
    render_published_ports(out, spec);
    out += "\n\tchain postrouting {\n";
    out += "\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
    render_published_masquerades(out, spec);
    for (const auto& n : spec.networks) {
        if (!n.masquerade || n.internal || n.overlay || n.gateway_mode == GatewayMode::Routed)
            continue;
        // `oifname !=` keeps traffic between endpoints of the same bridge (which br_netfilter also
        // shows to this hook) and traffic to the gateway unmasqueraded.
        const std::string br = quote_ifname(n.bridge);
        const std::string not_own = n.group ? " oifgroup != " + std::to_string(n.group) : "";
        append_rule(out, "ip saddr " + n.subnet.masked().str() + " oifname != " + br + not_own +
                             " counter masquerade comment " + comment("masquerade", n.bridge));
    }
    out += "\t}\n}\n";

    out += "table ip6 " + spec.table + " {\n";
    render_filter(out, spec, false);
    out += "}\n";
    return out;
}

std::string render_port_elements(const std::string& table, const PortElements& change) {
    const char* verb = change.add ? "add" : "delete";
    std::string any;
    std::string ip;
    for (const auto& p : change.ports) {
        std::string& elements = p.host_ip.value == 0 ? any : ip;
        if (!elements.empty()) elements += ", ";
        elements += published_element(p, change.add);
    }
    std::string open;
    for (const auto& p : change.routed_ports) {
        if (!open.empty()) open += ", ";
        open += routed_open_element(p);
    }
    std::string out;
    const std::pair<const char*, const std::string*> sets[] = {
        {"published_any", &any}, {"published_ip", &ip}, {"routed_open", &open}};
    for (const auto& [name, elements] : sets) {
        if (elements->empty()) continue;
        out += fmt::format("{} element ip {} {} {{ {} }}\n", verb, table, name, *elements);
    }
    return out;
}

std::string render_teardown(const std::string& table) {
    std::string out = "# bpfnet firewall teardown\n";
    render_delete(out, table);
    return out;
}

Status NftRunner::run(const std::string& script) {
    std::lock_guard lock(nft_mutex);
    NftCtx ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return fail(ErrorKind::Internal, "nftables: cannot create a libnftables context");
    // Buffer both streams: the agent must not print nft output (or errors) on its own stdio.
    if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
        return fail(ErrorKind::Internal, "nftables: cannot buffer libnftables output");
    }
    if (nft_run_cmd_from_buffer(ctx.get(), script.c_str()) != 0) {
        const char* err = nft_ctx_get_error_buffer(ctx.get());
        std::string detail = summarize_nft_error(err ? err : "");
        if (detail.empty()) detail = "the transaction failed without an error message";
        return fail(ErrorKind::Internal, "nftables: " + detail);
    }
    return {};
}

}  // namespace bpfnet

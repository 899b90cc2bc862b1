#include "kernel/host_interfaces.h"

#include <net/if_arp.h>

#include <algorithm>
#include <set>

namespace bpfnet::kernel {

namespace {

constexpr std::string_view kBpfnetAliasPrefix = "bpfnet:";

bool starts_with(const std::string& text, std::string_view prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::vector<std::string> HostInterfaces::uplink_names() const {
    std::vector<std::string> out;
    for (const auto& [name, why] : uplinks) out.push_back(name);
    return out;
}

HostInterfaces classify_host_interfaces(const HostInterfaceFacts& facts,
                                        const std::vector<std::string>& configured,
                                        const std::string& own_alias_prefix) {
    HostInterfaces out;
    const bool want_auto =
        std::find(configured.begin(), configured.end(), "auto") != configured.end();
    for (const auto& name : configured)
        if (name != "auto") out.uplinks[name] = "--uplink";

    const std::set<int> routed(facts.routed_ifindexes.begin(), facts.routed_ifindexes.end());
    std::set<int> with_global_address;
    for (const auto& a : facts.addresses)
        if (a.global) with_global_address.insert(a.ifindex);

    if (want_auto) {
        for (const auto& link : facts.links) {
            if (out.uplinks.count(link.name)) continue;
            const bool default_route = link.name == facts.default_route_ifname;
            const bool container_side = link.kind == "bridge" || link.kind == "veth";
            if (!link.up || link.loopback || link.arptype != ARPHRD_ETHER) continue;
            if (starts_with(link.alias, kBpfnetAliasPrefix)) continue;
            if (!with_global_address.count(link.ifindex) || !routed.count(link.ifindex)) continue;
            if (container_side && !default_route) continue;
            out.uplinks[link.name] = default_route ? "default route" : "global address";
        }
        if (out.uplinks.empty())
            out.auto_note = "auto: no device with a global IPv4 address and a route";
    }

    for (const auto& link : facts.links) {
        if (!out.uplinks.count(link.name)) continue;
        for (const auto& a : facts.addresses) {
            if (a.ifindex != link.ifindex || !a.global) continue;
            out.uplink_addresses[link.name] = a.address.addr;
            break;
        }
    }

    std::map<int, const LinkInfo*> foreign;
    for (const auto& link : facts.links) {
        if (link.kind != "bridge" || out.uplinks.count(link.name)) continue;
        if (!own_alias_prefix.empty() && starts_with(link.alias, own_alias_prefix)) continue;
        foreign[link.ifindex] = &link;
    }
    for (const auto& a : facts.addresses) {
        auto it = foreign.find(a.ifindex);
        if (it == foreign.end() || !a.global) continue;
        out.foreign_subnets[a.address.masked()] = it->second->name;
    }
    return out;
}

Result<HostInterfaces> survey_host_interfaces(NlSocket& sock,
                                              const std::vector<std::string>& configured,
                                              const std::string& own_alias_prefix) {
    HostInterfaceFacts facts;
    BPFNET_ASSIGN_OR_RETURN(facts.links, list_links(sock));
    BPFNET_ASSIGN_OR_RETURN(facts.addresses, list_all_ipv4_addresses(sock));
    BPFNET_ASSIGN_OR_RETURN(facts.routed_ifindexes, ipv4_route_ifindexes(sock));
    BPFNET_ASSIGN_OR_RETURN(auto default_route, default_route_ifname(sock));
    facts.default_route_ifname = default_route.value_or("");
    return classify_host_interfaces(facts, configured, own_alias_prefix);
}

}  // namespace bpfnet::kernel

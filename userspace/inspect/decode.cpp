#include "inspect/decode.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

#include <bpfnet/abi.h>

namespace bpfnet::inspect {

namespace {

template <typename T>
T load(const uint8_t* bytes) {
    T out;
    std::memcpy(&out, bytes, sizeof(T));
    return out;
}

uint16_t port_of(uint16_t network_order) {
    return ntohs(network_order);
}

// An interface reference: its index and, where it still exists here, its name.
void put_interface(json& out, const char* index_field, const char* name_field, uint32_t ifindex,
                   const Names& names) {
    out[index_field] = ifindex;
    out[name_field] = ifindex && names.ifname ? names.ifname(ifindex) : "";
}
// A network reference: its datapath ID and, where the host still has it, its bridge's name.
void put_network(json& out, uint32_t network, const Names& names) {
    out["network"] = network;
    out["bridge"] = network && names.network_bridge ? names.network_bridge(network) : "";
}

json counters(const uint8_t* value, std::initializer_list<const char*> names) {
    json out = json::object();
    size_t offset = 0;
    for (const char* name : names) {
        out[name] = load<uint64_t>(value + offset);
        offset += 8;
    }
    return out;
}

json u32_key(const char* field, const uint8_t* key) {
    return json{{field, load<uint32_t>(key)}};
}

json ep_key(const uint8_t* key, const Names& names) {
    const auto k = load<bpfnet_ep_key>(key);
    json out = json::object();
    put_network(out, k.network, names);
    out["ip"] = ipv4_text(k.ip);
    return out;
}

std::vector<MapLayout> build_layouts() {
    std::vector<MapLayout> l;
    l.push_back({"bpfnet_net", "networks: subnet, gateway, bridge, policy flags (key: datapath ID)",
                 sizeof(uint32_t), sizeof(bpfnet_net_info), false,
                 [](const uint8_t* k, const Names& n) {
                     json out = json::object();
                     put_network(out, load<uint32_t>(k), n);
                     return out;
                 },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     const auto i = load<bpfnet_net_info>(v);
                     json out{{"subnet", fmt::format("{}/{}", ipv4_text(i.subnet), i.prefix_len)},
                              {"gateway", ipv4_text(i.gateway)},
                              {"gateway_mac", mac_text(i.gateway_mac)},
                              {"flags", net_flag_words(i.flags)}};
                     put_interface(out, "bridge_ifindex", "bridge", i.bridge_ifindex, n);
                     return out;
                 }});
    l.push_back({"bpfnet_ep_by_if", "endpoints by their host-side veth: address, MAC, network",
                 sizeof(uint32_t), sizeof(bpfnet_endpoint), false,
                 [](const uint8_t* k, const Names& n) {
                     json out = json::object();
                     put_interface(out, "ifindex", "interface", load<uint32_t>(k), n);
                     return out;
                 },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     const auto e = load<bpfnet_endpoint>(v);
                     json out{{"ip", ipv4_text(e.ip)}, {"mac", mac_text(e.mac)}};
                     put_network(out, e.network, n);
                     return out;
                 }});
    l.push_back({"bpfnet_ep_by_ip", "endpoints by network and address: where to deliver",
                 sizeof(bpfnet_ep_key), sizeof(bpfnet_ep_dest), false, ep_key,
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     const auto d = load<bpfnet_ep_dest>(v);
                     json out = json::object();
                     put_interface(out, "ifindex", "interface", d.ifindex, n);
                     out["mac"] = mac_text(d.mac);
                     std::vector<std::string> flags;
                     if (d.flags & BPFNET_EP_F_XDP_TARGET) flags.push_back("xdp-target");
                     out["flags"] = flags;
                     return out;
                 }});
    l.push_back({"bpfnet_subnets",
                 "every network's subnet, and other bridges' (longest-prefix match)",
                 sizeof(bpfnet_lpm_v4), sizeof(uint32_t), false,
                 [](const uint8_t* k, const Names&) {
                     const auto p = load<bpfnet_lpm_v4>(k);
                     return json{{"subnet", fmt::format("{}/{}", ipv4_text(p.addr), p.prefix_len)}};
                 },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     json out = json::object();
                     const uint32_t network = load<uint32_t>(v);
                     if (network == BPFNET_SUBNET_OTHER_BRIDGE)
                         out["network"] = "another bridge (not bpfnet's)";
                     else
                         put_network(out, network, n);
                     return out;
                 }});
    l.push_back({"bpfnet_ep_stats", "per-endpoint packet and byte counters (per CPU, summed)",
                 sizeof(uint32_t), sizeof(bpfnet_ep_stats), true,
                 [](const uint8_t* k, const Names& n) {
                     json out = json::object();
                     put_interface(out, "ifindex", "interface", load<uint32_t>(k), n);
                     return out;
                 },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return counters(v, {"from_packets", "from_bytes", "to_packets", "to_bytes"});
                 }});
    l.push_back({"bpfnet_drops", "drops by reason (per CPU, summed)", sizeof(uint32_t),
                 sizeof(bpfnet_drop_stats), true,
                 [](const uint8_t* k, const Names&) {
                     return json{{"reason", drop_reason_name(load<uint32_t>(k))}};
                 },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return counters(v, {"packets", "bytes"});
                 }});
    l.push_back({"bpfnet_events", "ring buffer of drop and trace events (read by bpfnet monitor)",
                 0, 0, false, nullptr, nullptr});
    l.push_back(
        {"bpfnet_tunnel", "overlay endpoints on other hosts: VTEP, VNI, MAC", sizeof(bpfnet_ep_key),
         sizeof(bpfnet_tunnel_dest), false, ep_key, [](const uint8_t* v, const Names&, uint64_t) {
             const auto t = load<bpfnet_tunnel_dest>(v);
             return json{{"vtep", ipv4_text(t.vtep)}, {"vni", t.vni}, {"mac", mac_text(t.mac)}};
         }});
    l.push_back({"bpfnet_vni", "overlay VNIs and the network each belongs to", sizeof(uint32_t),
                 sizeof(uint32_t), false,
                 [](const uint8_t* k, const Names&) { return u32_key("vni", k); },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     json out = json::object();
                     put_network(out, load<uint32_t>(v), n);
                     return out;
                 }});
    l.push_back({"bpfnet_vx_cfg", "the host's collect_md VXLAN device", sizeof(uint32_t),
                 sizeof(bpfnet_vx_cfg), false,
                 [](const uint8_t* k, const Names&) { return u32_key("index", k); },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     json out = json::object();
                     put_interface(out, "vxlan_ifindex", "vxlan",
                                   load<bpfnet_vx_cfg>(v).vxlan_ifindex, n);
                     return out;
                 }});
    l.push_back({"bpfnet_pub_port", "published ports: host address:port -> endpoint",
                 sizeof(bpfnet_svc_key), sizeof(bpfnet_svc_target), false,
                 [](const uint8_t* k, const Names&) {
                     const auto s = load<bpfnet_svc_key>(k);
                     return json{{"host_ip", s.host_ip ? ipv4_text(s.host_ip) : "0.0.0.0"},
                                 {"host_port", port_of(s.port)},
                                 {"proto", protocol_name(s.proto)}};
                 },
                 [](const uint8_t* v, const Names& n, uint64_t) {
                     const auto t = load<bpfnet_svc_target>(v);
                     json out{{"ip", ipv4_text(t.ip)}, {"port", port_of(t.port)}};
                     put_network(out, t.network, n);
                     return out;
                 }});
    l.push_back({"bpfnet_local_ip", "the host's own addresses (published ports answer on them)",
                 sizeof(uint32_t), sizeof(uint8_t), false,
                 [](const uint8_t* k, const Names&) {
                     return json{{"ip", ipv4_text(load<uint32_t>(k))}};
                 },
                 [](const uint8_t*, const Names&, uint64_t) {
                     return json{{"local", true}};
                 }});
    l.push_back({"bpfnet_ct", "conntrack of published-port and egress flows (two entries each)",
                 sizeof(bpfnet_ct_key), sizeof(bpfnet_ct_entry), false,
                 [](const uint8_t* k, const Names&) {
                     const auto c = load<bpfnet_ct_key>(k);
                     return json{{"src", ipv4_text(c.saddr)},
                                 {"sport", port_of(c.sport)},
                                 {"dst", ipv4_text(c.daddr)},
                                 {"dport", port_of(c.dport)},
                                 {"proto", protocol_name(c.proto)},
                                 {"dir", c.dir == BPFNET_CT_DIR_REPLY ? "reply" : "in"}};
                 },
                 [](const uint8_t* v, const Names& n, uint64_t now_ns) {
                     const auto e = load<bpfnet_ct_entry>(v);
                     const int64_t left = static_cast<int64_t>(e.expires_ns - now_ns);
                     json out{{"expires_in_s", left > 0 ? left / 1000000000 : 0},
                              {"packets", e.packets},
                              {"bytes", e.bytes},
                              {"nat_ip", ipv4_text(e.nat_addr)},
                              {"nat_port", port_of(e.nat_port)},
                              {"flags", ct_flag_words(e.flags)}};
                     put_interface(out, "ifindex", "interface", e.ifindex, n);
                     put_network(out, e.network, n);
                     out["smac"] = mac_text(e.smac);
                     out["dmac"] = mac_text(e.dmac);
                     // Only a flow sent through the kernel's neighbour code has one.
                     out["nexthop"] =
                         (e.flags & BPFNET_CT_F_NEIGH) ? json(ipv4_text(e.nexthop)) : json(nullptr);
                     return out;
                 }});
    l.push_back({"bpfnet_uplinks", "uplinks egress may leave through in BPF: SNAT address, ports",
                 sizeof(uint32_t), sizeof(bpfnet_uplink), false,
                 [](const uint8_t* k, const Names& n) {
                     json out = json::object();
                     put_interface(out, "ifindex", "interface", load<uint32_t>(k), n);
                     return out;
                 },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     const auto u = load<bpfnet_uplink>(v);
                     return json{{"snat_ip", ipv4_text(u.snat_addr)},
                                 {"port_min", u.port_min},
                                 {"port_max", u.port_max}};
                 }});
    l.push_back({"bpfnet_nat_cnt", "NAT counters: published ports and egress (per CPU, summed)",
                 sizeof(uint32_t), sizeof(bpfnet_nat_stats), true,
                 [](const uint8_t* k, const Names&) {
                     return json{{"counter", nat_counter_name(load<uint32_t>(k))}};
                 },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return counters(v, {"packets", "bytes"});
                 }});
    l.push_back({"bpfnet_sk_orig", "sockets the host's socket NAT rewrote: asked-for and real peer",
                 sizeof(uint64_t), sizeof(bpfnet_sock_orig), false,
                 [](const uint8_t* k, const Names&) {
                     return json{{"cookie", load<uint64_t>(k)}};
                 },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     const auto o = load<bpfnet_sock_orig>(v);
                     return json{{"ip", ipv4_text(o.ip)},
                                 {"port", port_of(o.port)},
                                 {"target_ip", ipv4_text(o.target_ip)},
                                 {"target_port", port_of(o.target_port)}};
                 }});
    l.push_back({"bpfnet_sk_cfg", "socket NAT configuration", sizeof(uint32_t),
                 sizeof(bpfnet_sock_cfg), false,
                 [](const uint8_t* k, const Names&) { return u32_key("index", k); },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return json{{"host_netns_cookie", load<bpfnet_sock_cfg>(v).host_netns_cookie}};
                 }});
    l.push_back({"bpfnet_sk_netns", "sandboxes whose sockets the socket NAT may rewrite",
                 sizeof(bpfnet_sk_netns_key), sizeof(uint8_t), false,
                 [](const uint8_t* k, const Names& n) {
                     const auto s = load<bpfnet_sk_netns_key>(k);
                     json out{{"netns_cookie", s.netns_cookie}};
                     put_network(out, s.network, n);
                     return out;
                 },
                 [](const uint8_t*, const Names&, uint64_t) {
                     return json{{"allowed", true}};
                 }});
    l.push_back(
        {"bpfnet_sk_stats", "socket NAT rewrites (per CPU, summed)", sizeof(uint32_t),
         sizeof(bpfnet_sock_stats), true,
         [](const uint8_t* k, const Names&) { return u32_key("index", k); },
         [](const uint8_t* v, const Names&, uint64_t) { return counters(v, {"rewrites"}); }});
    l.push_back({"bpfnet_pl_stats", "the probe program's counters", sizeof(uint32_t),
                 sizeof(bpfnet_pipeline_stats), false,
                 [](const uint8_t* k, const Names&) { return u32_key("index", k); },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return counters(v, {"packets", "bytes"});
                 }});
    l.push_back({"bpfnet_mon_cfg", "what bpfnet monitor asked the programs to report",
                 sizeof(uint32_t), sizeof(bpfnet_monitor_cfg), false,
                 [](const uint8_t* k, const Names&) { return u32_key("index", k); },
                 [](const uint8_t* v, const Names&, uint64_t) {
                     return json{{"trace", load<bpfnet_monitor_cfg>(v).trace != 0}};
                 }});
    return l;
}

}  // namespace

std::string ipv4_text(uint32_t network_order) {
    const auto* b = reinterpret_cast<const uint8_t*>(&network_order);
    return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
}

std::string mac_text(const uint8_t mac[6]) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                       mac[4], mac[5]);
}

namespace {
struct Named {
    uint32_t value;
    const char* name;
    const char* text;
};
constexpr Named kDropReasons[] = {
    {BPFNET_DROP_UNKNOWN_ENDPOINT, "unknown-endpoint", "sent from a veth that is no endpoint"},
    {BPFNET_DROP_MALFORMED, "malformed", "truncated or malformed header"},
    {BPFNET_DROP_SPOOFED_MAC, "spoofed-mac", "source MAC is not the endpoint's"},
    {BPFNET_DROP_SPOOFED_IP, "spoofed-ip", "source IP is not the endpoint's"},
    {BPFNET_DROP_CROSS_NETWORK, "cross-network", "destination is on another network"},
    {BPFNET_DROP_ICC_DISABLED, "icc-disabled", "inter-container traffic is disabled"},
    {BPFNET_DROP_INTERNAL, "internal", "leaving an internal network"},
    {BPFNET_DROP_VLAN_TAGGED, "vlan-tagged", "endpoints may not send VLAN-tagged frames"},
    {BPFNET_DROP_UNKNOWN_VNI, "unknown-vni", "VXLAN for a VNI no overlay here has"},
    {BPFNET_DROP_UNPUBLISHED, "unpublished",
     "from outside to a container address, not a published port"},
    {BPFNET_DROP_OTHER_BRIDGE, "other-bridge",
     "destination is another container network on the host (not bpfnet's)"},
};
constexpr Named kNatCounters[] = {
    {BPFNET_NAT_DNAT_NEW, "dnat-new", ""},
    {BPFNET_NAT_DNAT, "dnat", ""},
    {BPFNET_NAT_REPLY, "reply", ""},
    {BPFNET_NAT_ICMP_IN, "icmp-in", ""},
    {BPFNET_NAT_ICMP_OUT, "icmp-out", ""},
    {BPFNET_NAT_PASS_FRAG, "pass-fragment", ""},
    {BPFNET_NAT_PASS_SCTP, "pass-sctp", ""},
    {BPFNET_NAT_CT_FAILED, "ct-insert-failed", ""},
    {BPFNET_NAT_TTL_EXPIRED, "ttl-expired", ""},
    {BPFNET_NAT_DNAT_XDP, "dnat-xdp", ""},
    {BPFNET_NAT_SNAT_NEW, "snat-new", ""},
    {BPFNET_NAT_SNAT, "snat", ""},
    {BPFNET_NAT_EGRESS_REPLY, "egress-reply", ""},
    {BPFNET_NAT_SNAT_EXHAUSTED, "snat-exhausted", ""},
    {BPFNET_NAT_EGRESS_NEW, "egress-new", ""},
    {BPFNET_NAT_EGRESS_ROUTED, "egress-routed", ""},
    {BPFNET_NAT_EGRESS_STACK, "egress-stack", ""},
    {BPFNET_NAT_VX_ENCAP, "vx-encap", ""},
    {BPFNET_NAT_VX_ENCAP_DEVICE, "vx-encap-device", ""},
    {BPFNET_NAT_VX_DECAP, "vx-decap", ""},
    {BPFNET_NAT_VX_DECAP_DEVICE, "vx-decap-device", ""},
    {BPFNET_NAT_FRAG_OUT, "frag-out", ""},
    {BPFNET_NAT_PASS_HOST_FLOW, "pass-host-flow", ""},
    {BPFNET_NAT_VX_DECAP_XDP, "vx-decap-xdp", ""},
};
constexpr Named kProtocols[] = {
    {1, "icmp", ""}, {6, "tcp", ""}, {17, "udp", ""}, {132, "sctp", ""}};
}  // namespace

std::string drop_reason_name(uint32_t reason) {
    for (const auto& r : kDropReasons)
        if (r.value == reason) return r.name;
    return reason == 0 ? "none" : fmt::format("reason-{}", reason);
}

std::string drop_reason_text(uint32_t reason) {
    for (const auto& r : kDropReasons)
        if (r.value == reason) return r.text;
    return drop_reason_name(reason);
}

std::string nat_counter_name(uint32_t counter) {
    for (const auto& c : kNatCounters)
        if (c.value == counter) return c.name;
    return fmt::format("counter-{}", counter);
}

std::string protocol_name(uint8_t protocol) {
    for (const auto& p : kProtocols)
        if (p.value == protocol) return p.name;
    return std::to_string(protocol);
}

std::optional<uint8_t> protocol_number(const std::string& name) {
    for (const auto& p : kProtocols)
        if (name == p.name) return static_cast<uint8_t>(p.value);
    return std::nullopt;
}

std::vector<std::string> ct_flag_words(uint16_t flags) {
    std::vector<std::string> words;
    const std::pair<uint16_t, const char*> names[] = {
        {BPFNET_CT_F_SYN, "syn"},       {BPFNET_CT_F_REPLIED, "replied"},
        {BPFNET_CT_F_FIN_IN, "fin-in"}, {BPFNET_CT_F_FIN_OUT, "fin-out"},
        {BPFNET_CT_F_RST, "rst"},       {BPFNET_CT_F_XDP, "xdp"},
        {BPFNET_CT_F_EGRESS, "egress"}, {BPFNET_CT_F_NEIGH, "neigh"}};
    for (const auto& [bit, name] : names)
        if (flags & bit) words.push_back(name);
    return words;
}

std::vector<std::string> net_flag_words(uint32_t flags) {
    std::vector<std::string> words;
    if (flags & BPFNET_NET_ICC) words.push_back("icc");
    if (flags & BPFNET_NET_INTERNAL) words.push_back("internal");
    if (flags & BPFNET_NET_DIRECT_ROUTING) words.push_back("direct-routing");
    if (flags & BPFNET_NET_MASQUERADE) words.push_back("masquerade");
    if (flags & BPFNET_NET_EGRESS) words.push_back("egress");
    return words;
}

const std::vector<MapLayout>& map_layouts() {
    static const std::vector<MapLayout> layouts = build_layouts();
    return layouts;
}

const MapLayout* map_layout(const std::string& name) {
    for (const auto& l : map_layouts())
        if (l.name == name) return &l;
    return nullptr;
}

std::vector<uint8_t> sum_per_cpu(std::span<const uint8_t> slots, uint32_t value_size,
                                 unsigned cpus) {
    const size_t stride = (value_size + 7) / 8 * 8;
    std::vector<uint8_t> out(value_size, 0);
    for (unsigned cpu = 0; cpu < cpus && (cpu + 1) * stride <= slots.size(); ++cpu) {
        for (size_t field = 0; field + 8 <= value_size; field += 8) {
            uint64_t total = load<uint64_t>(out.data() + field) +
                             load<uint64_t>(slots.data() + cpu * stride + field);
            std::memcpy(out.data() + field, &total, 8);
        }
    }
    return out;
}

std::string fields_text(const json& object) {
    std::string out;
    for (const auto& [key, value] : object.items()) {
        if (!out.empty()) out += ' ';
        std::string text;
        if (value.is_string()) {
            text = value.get<std::string>();
        } else if (value.is_array()) {
            for (const auto& item : value) {
                if (!text.empty()) text += ',';
                text += item.is_string() ? item.get<std::string>() : item.dump();
            }
            if (text.empty()) text = "-";
        } else {
            text = value.dump();
        }
        if (text.empty()) text = "-";
        out += key + "=" + text;
    }
    return out;
}

}  // namespace bpfnet::inspect

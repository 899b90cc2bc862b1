// The kernel datapath's firewall: one nftables table pair per agent (names include the agent's
// instance id so several agents can run side by side), rebuilt atomically from the full desired
// state when networks or the host change. Published ports, which come and go with every
// `connect -p`, are map and set elements added and removed on their own (render_port_elements);
// the rules themselves are never edited one by one.
#pragma once

#include <string>
#include <vector>

#include "core/drop_log.h"
#include "core/ipv4.h"
#include "core/options.h"
#include "core/ports.h"
#include "core/result.h"

namespace bpfnet {

struct FirewallNetwork {
    std::string bridge;  // Linux bridge of the network
    Cidr subnet;
    bool icc = true;         // endpoint-to-endpoint traffic on the bridge allowed
    bool masquerade = true;  // SNAT to the outgoing interface's address when leaving the host
    bool internal = false;   // no traffic in or out of the bridge except among its own ports
    // Interface group of the network's routed endpoint ports (not bridge ports; see
    // kernel/routed_port.h), which belong to the network as its bridge does. 0: none.
    uint32_t group = 0;
    // A VXLAN overlay's bridge: not policed here (no isolation, icc, internal or masquerade rules;
    // it is not in the `bridges` set), only its bridged frames marked to pass the host's FORWARD
    // chain (see docker_user_chain.h).
    bool overlay = false;
    // What reaches the network from outside (see GatewayMode): nat drops direct routing to
    // container addresses except from `trusted` interfaces; nat-unprotected lets it through;
    // routed lets it through to `routed_ports` only and does not masquerade.
    GatewayMode gateway_mode = GatewayMode::Nat;
    std::vector<std::string> trusted{};
};

// A container port opened for direct access on a routed network (its published port).
struct FirewallOpenPort {
    IpProto proto = IpProto::Tcp;
    Ipv4 endpoint_ip;
    uint16_t endpoint_port = 0;
};

// A published port: traffic to host_ip:host_port (0.0.0.0: any local address) is DNATed to
// endpoint_ip:endpoint_port.
struct FirewallPort {
    IpProto proto = IpProto::Tcp;
    Ipv4 host_ip;
    uint16_t host_port = 0;
    Ipv4 endpoint_ip;
    uint16_t endpoint_port = 0;
};

struct FirewallSpec {
    std::string table;  // e.g. "bpfnet_1a2b3c4d": used for the ip and bridge family tables
    std::vector<FirewallNetwork> networks;
    std::vector<FirewallPort> ports;
    std::vector<FirewallOpenPort> routed_ports{};
    // The host's uplinks: a bridge among them (a host whose NIC is enslaved to br0) carries the
    // way out, so it is not "another container network".
    std::vector<std::string> uplinks{};
    // Log the drops that isolate networks from other bridges and from direct routing to NFLOG
    // (kDropLogGroup), for `bpfnet monitor`; only where the kernel has nfnetlink_log.
    bool log_drops = false;
};

// The firewall's drops go to NFLOG group kDropLogGroup with drop_log_prefix() (core/drop_log.h).
// A transaction that succeeds only where the kernel can log to NFLOG (nfnetlink_log), leaving
// nothing behind either way.
std::string render_log_probe(const std::string& table);

// The nft script that replaces both tables with the desired state (pure; unit-tested).
std::string render_ruleset(const FirewallSpec& spec);
// Published ports added to or removed from a ruleset without re-rendering it: the elements of the
// DNAT maps and of the routed ports' set. Only valid on a ruleset that render_ruleset made with
// both kinds already present or already absent as after the change (the maps, the set and the
// rules naming them exist only when they have elements); see KernelDatapath::publish_ports.
struct PortElements {
    bool add = true;  // false: delete (by key; each must be present)
    std::vector<FirewallPort> ports{};
    std::vector<FirewallOpenPort> routed_ports{};
};
std::string render_port_elements(const std::string& table, const PortElements& change);

// The nft script that removes both tables if they exist.
std::string render_teardown(const std::string& table);

// Runs nft scripts through libnftables; each script is one atomic transaction.
class NftRunner {
  public:
    Status run(const std::string& script);
};

}  // namespace bpfnet

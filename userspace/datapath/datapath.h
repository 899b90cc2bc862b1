// The datapath interface: everything that turns the CNM state into kernel objects for one network
// driver. The agent picks an implementation per network from its datapath graph
// (datapath_graph.h: kernel bridge, BPF over it, child links, overlay, host/none) and never
// touches links, rules or maps itself. Every operation is idempotent ("ensure"/"remove"), because
// the reconciler replays them after a crash or restart without knowing how far the last attempt
// got.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/options.h"
#include "core/ports.h"
#include "core/result.h"

namespace bpfnet {

// A network together with its parsed options, as the datapath needs it.
struct NetworkSpec {
    const Network& network;
    const BridgeOptions& options;
    // For the policy only: the network is not policed (no isolation, NAT or interface group), its
    // bridged frames only pass the host's FORWARD chain (an overlay, whose traffic stays inside
    // it).
    bool pass_through = false;
};

class Datapath {
  public:
    virtual ~Datapath() = default;

    // "kernel" or "bpf": shown by `status` and `network inspect`.
    virtual const char* name() const = 0;

    // What the firewall found of the host's iptables FORWARD chain (Docker's DROP policy) and did
    // about it, for `bpfnet status`; empty for datapaths that leave forwarding to another.
    virtual std::string forward_firewall_state() const { return ""; }

    // The host's uplinks and other container networks' bridges as this datapath sees them, for
    // `bpfnet status`; empty for datapaths that do not look.
    virtual std::string host_interfaces_state() const { return ""; }

    // How this datapath publishes ports, for `bpfnet status`.
    virtual std::string published_ports_path() const {
        return "kernel NAT (nftables DNAT maps, hairpin and loopback masquerade); outbound: "
               "nftables masquerade";
    }
    // Where this datapath sends its networks' egress itself, for `bpfnet status`; empty: the
    // host's stack does (bridge, routing, netfilter).
    virtual std::string egress_path() const { return ""; }

    // Creates or adopts the network's kernel objects (bridge with the gateway address, ...).
    virtual Status ensure_network(const NetworkSpec& spec) = 0;
    // Removes them; removing what does not exist is success.
    virtual Status remove_network(const Network& network) = 0;

    // Creates or repairs the endpoint's interface pair: the sandbox end named endpoint.ifname with
    // its MAC, address and (if endpoint.default_route) the default route via the network's gateway.
    virtual Status ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                                   const Sandbox& sandbox) = 0;
    virtual Status remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) = 0;

    // Applies the inter-network policy (isolation, icc, internal, masquerade) for exactly these
    // networks and the NAT for exactly these published ports, atomically replacing what was
    // applied before.
    virtual Status sync_policy(const std::vector<NetworkSpec>& networks,
                               const std::vector<PublishedPort>& ports) = 0;
    // Adds (publish) or removes (unpublish) the NAT of exactly these ports of one ready endpoint,
    // leaving every other port as it is: what `connect -p` and `disconnect` cost must not grow with
    // the ports already published. A datapath that cannot change them alone (no policy applied
    // yet, or the change reshapes what sync_policy made) fails, and the caller syncs the whole
    // policy instead.
    virtual Status publish_ports(const std::vector<PublishedPort>& /*ports*/) {
        return fail(ErrorKind::Unsupported, "this datapath publishes ports only in sync_policy");
    }
    virtual Status unpublish_ports(const std::vector<PublishedPort>& /*ports*/) {
        return fail(ErrorKind::Unsupported, "this datapath publishes ports only in sync_policy");
    }
    // The host's interfaces changed (see kernel/host_watch.h). Returns whether the policy must be
    // synced again (the firewall names the uplinks); what a datapath keeps itself it redoes here.
    virtual Result<bool> refresh_host() { return false; }

    // Removes all policy this datapath installed (used when the agent is told to clean up).
    virtual Status remove_policy() = 0;

    // Deletes host links this agent owns (by ownership marker) whose names are not in `keep`.
    // Returns the names deleted, for the log.
    virtual Result<std::vector<std::string>> collect_garbage(const std::set<std::string>& keep) = 0;
};

}  // namespace bpfnet

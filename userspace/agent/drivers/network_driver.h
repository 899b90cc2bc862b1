// A network driver: what one kind of network (bridge, macvlan/ipvlan, overlay, host/none) decides,
// as libnetwork's driverapi splits it. The service (agent/service.h) owns the order every
// operation follows, crash-safe and the same for all drivers (validate, record the intent, act on
// the kernel through the driver's datapath, record the outcome, undo on failure), and asks the
// network's driver at each step what is particular to it. No code outside a driver branches on a
// driver's name: it asks the driver (DriverRegistry::of) instead.
//
// Drivers are called with the service's lock held: they never take it, and never call back into
// the service.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/requests.h"
#include "core/ipv4.h"
#include "core/model.h"
#include "core/options.h"
#include "core/result.h"
#include "datapath/datapath.h"
#include "datapath/datapath_graph.h"

namespace bpfnet {

// What a driver decided about a new network besides the fields it filled in (NetworkDriver::plan).
struct NetworkPlan {
    // The ID of a network on this host the new one takes the place of (an overlay Docker creates
    // replaces this host's mirror of the same cluster overlay); empty: none. The service leaves it
    // out of every conflict check and deletes it when it records the new one.
    std::string replaces;
    // The host routes the subnet: it must not overlap what the host already reaches (a bridge).
    // A macvlan/ipvlan subnet is the parent's LAN, which the host may route; an overlay's is not
    // routed by the host at all.
    bool subnet_avoids_host_routes = true;
    // Subnets taken elsewhere that the new one must not overlap (an overlay: the cluster's).
    std::vector<Cidr> reserved_subnets;
};

// Refuses bpfnet.datapath=bpf on a host where BPF cannot be used (bridge and overlay networks).
Status check_bpf_requested(const BridgeOptions& options, const DatapathGraph& datapaths);

class NetworkDriver {
  public:
    virtual ~NetworkDriver() = default;

    // Docker's name for the driver ("bridge", "macvlan", "null", ...): Network::driver.
    virtual const char* name() const = 0;

    // ---- networks ------------------------------------------------------------------------
    // Refuses a request this driver cannot serve here, before anything is read or recorded.
    // `options` are the request's parsed common options.
    virtual Status check_request(const CreateNetworkRequest& request,
                                 const BridgeOptions& options) const = 0;
    // Fills in the driver's part of `network` (ID, name, owner, options already set): its bridge
    // or parent link, the options it decides. `snap` holds every network and endpoint here.
    virtual Result<NetworkPlan> plan(const CreateNetworkRequest& request, const Snapshot& snap,
                                     Network& network) = 0;
    // Once the subnet is chosen: what the network must hold beyond this host (an overlay claims
    // its subnet and VNI in the cluster store). Released again by abandon() if the creation fails.
    virtual Status claim(const CreateNetworkRequest& /*request*/, Network& /*network*/) {
        return {};
    }
    // The network's kernel objects are in place and it is about to be recorded ready: make it
    // known beyond this host (an overlay enters the cluster). A failure undoes the creation.
    virtual Status announce(const Network& /*network*/) { return {}; }
    // Undoes claim() and announce() of a creation that failed (best effort, logged).
    virtual void abandon(const Network& /*network*/) {}
    // Refuses to remove a network still in use beyond what the service sees (an overlay used by
    // other hosts).
    virtual Status check_remove(const Network& /*network*/) const { return {}; }
    // The network's kernel objects are gone: release what claim() took.
    virtual Status release(const Network& /*network*/) { return {}; }
    // The network is gone from this host's store (after release()).
    virtual Status removed(const Network& /*network*/) { return {}; }
    // The network took the name and labels Docker shows for it (learnt after creation).
    virtual Status renamed(const Network& /*network*/) { return {}; }
    // Predefined networks (host, none) exist once, made by the agent; they cannot be created or
    // removed by users.
    virtual bool predefined_only() const { return false; }
    // Whether Docker may create networks of this driver through the plugin (Docker serves its
    // own macvlan/ipvlan, host and null).
    virtual bool offered_to_docker() const { return false; }
    // Whether the network has an address plan (host and none have none).
    virtual bool has_ipam() const { return true; }

    // ---- datapath ------------------------------------------------------------------------
    virtual DatapathChoice datapath_choice(const Network& network) const = 0;
    // The datapath that makes the network's kernel objects and its endpoints' interfaces.
    virtual Datapath& datapath(const Network& network) = 0;
    // How the network enters the host's policy (firewall, NAT, BPF maps); none: it does not.
    virtual std::optional<DatapathKind> policed_as(const Network& /*network*/) const {
        return std::nullopt;
    }
    // Whether the policy only lets the network's bridged frames pass the host's FORWARD chain
    // instead of policing it (see NetworkSpec::pass_through).
    virtual bool passes_through_policy() const { return false; }
    // The options the policy applies to the network (isolation, icc, masquerade, gateway mode).
    virtual Result<BridgeOptions> policy_options(const Network& network) const {
        return parse_bridge_options(network.options);
    }
    // What the firewall does for the network, for `bpfnet status`; empty: nothing.
    virtual std::string firewall_summary(const Network& /*network*/) const { return ""; }
    // How the network's traffic reaches the outside (which path and why), for `bpfnet status`.
    virtual std::string egress_summary(const Network& /*network*/) const { return "none"; }
    // Host links the network owns besides its bridge or parent (an overlay's VXLAN device), which
    // reconcile must not take for stale.
    virtual std::vector<std::string> extra_links(const Network& /*network*/) const { return {}; }

    // ---- endpoints -----------------------------------------------------------------------
    // Docker's rules about joining a network of this driver (`in_sandbox`: the sandbox's other
    // endpoints).
    virtual Status check_connect(const Network& /*network*/, const Sandbox& /*sandbox*/,
                                 const std::vector<Endpoint>& /*in_sandbox*/,
                                 const ConnectRequest& /*request*/) {
        return {};
    }
    // A sandbox on a network of this driver joins no other; the error says why.
    virtual std::optional<Failure> excludes_other_networks() const { return std::nullopt; }
    // Why sandboxes can neither join nor leave a network of this driver (the host network: only
    // a host-mode sandbox is on it, for its whole life); none: they can.
    virtual std::optional<Failure> fixed_membership() const { return std::nullopt; }
    // Endpoints are records only: no address, no interface (host, none).
    virtual bool endpoints_are_records() const { return false; }
    // The endpoint's address: `requested` or a free one (`used`: the network's addresses here).
    virtual Result<Ipv4> allocate_address(const Network& network, const std::set<Ipv4>& used,
                                          std::optional<Ipv4> requested,
                                          const std::string& endpoint_id);
    // Returns an address allocate_address() gave (best effort, logged).
    virtual void release_address(const Network& /*network*/, const Endpoint& /*endpoint*/) {}
    // Whether the endpoint has a host end (a veth's); macvlan/ipvlan children live in the sandbox
    // only.
    virtual bool has_host_end() const { return true; }
    // Whether the network may give a sandbox its default route: it has a gateway on the host.
    virtual bool routes_outside(const Network& network) const { return !network.internal; }
    // Whether the driver's datapath publishes endpoints' host ports (NAT to the endpoint).
    virtual bool publishes_ports() const { return false; }
    // Why a request to publish ports on this driver's networks is refused; none: it is taken.
    virtual std::optional<Failure> refuses_ports() const { return std::nullopt; }
    // The endpoint is ready (joined) or is going (left): tell whoever else must know (an
    // overlay's other hosts). Best effort: failures are logged and retried at restart.
    virtual void endpoint_joined(const Network& /*network*/, const Endpoint& /*endpoint*/) {}
    virtual void endpoint_left(const Network& /*network*/, const Endpoint& /*endpoint*/) {}
};

}  // namespace bpfnet

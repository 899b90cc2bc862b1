// The network service: CNM operations (networks, sandboxes, endpoints) on top of the store and the
// datapath. Every operation follows the same crash-safe order: validate, record the intent in the
// store (state Creating/Deleting, naming every kernel object it will touch), act on the kernel,
// then record the outcome. reconcile() finishes or undoes whatever a crash interrupted. What is
// particular to bridge, macvlan/ipvlan, overlay, host or none networks the service asks the
// network's driver (agent/drivers/), at each step of that order.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/drivers/driver_registry.h"
#include "agent/requests.h"
#include "cluster/overlay_registry.h"
#include "core/ipam.h"
#include "core/model.h"
#include "core/options.h"
#include "datapath/datapath.h"
#include "datapath/datapath_graph.h"
#include "datapath/probe.h"
#include "store/store.h"

namespace bpfnet {

struct ServiceConfig {
    std::string state_dir;
    std::string run_dir;
    std::string bpffs_root;
    std::string netns_dir;
    std::string store_kind = "sqlite";
    // The predefined "bridge" network's Linux bridge ("none": no default bridge network, like
    // dockerd --bridge=none) and its subnet (empty: from the default pools).
    std::string default_bridge = "bpfnet0";
    std::string default_bridge_subnet;
};

// What Docker's Join needs back.
struct JoinResult {
    Endpoint endpoint;
    Network network;
};

class NetworkService {
  public:
    // `datapaths`: the agent's datapath graph, built once (see datapath/datapath_graph.h).
    NetworkService(ServiceConfig config, std::string instance, std::unique_ptr<Store> store,
                   std::unique_ptr<DatapathGraph> datapaths, ProbeResult probe);
    ~NetworkService();

    // Brings kernel state in line with the store: finishes or undoes interrupted operations,
    // re-creates missing objects, removes stale ones this agent owns.
    Status reconcile();

    Result<Network> create_network(const CreateNetworkRequest& request);
    Result<std::vector<Network>> list_networks();
    Result<Network> find_network(const std::string& ref);
    Status remove_network(const std::string& ref);
    // Removes every network without endpoints; returns their names.
    Result<std::vector<std::string>> prune_networks();

    Result<Endpoint> connect(const ConnectRequest& request);
    Status disconnect(const std::string& network_ref, const std::string& sandbox_ref, bool force);

    // ---- Docker's endpoint lifecycle (plugin protocol): create, join, leave, delete ----------
    // Docker gives the address (from its own IPAM or from bpfnet's pools) and maybe a MAC; with no
    // address, bpfnet allocates one. No kernel object exists until Join.
    Result<Endpoint> create_docker_endpoint(const std::string& network_id,
                                            const std::string& endpoint_id, std::optional<Ipv4> ip,
                                            std::optional<MacAddr> mac);
    // Makes the veth pair; the container end waits on the host for Docker to move it into
    // `sandbox_key` (a network namespace path Docker owns).
    Result<JoinResult> join_docker_endpoint(const std::string& network_id,
                                            const std::string& endpoint_id,
                                            const std::string& sandbox_key);
    Status leave_docker_endpoint(const std::string& network_id, const std::string& endpoint_id);
    // ProgramExternalConnectivity / RevokeExternalConnectivity: publish Docker's -p bindings.
    Result<Endpoint> publish_docker_ports(const std::string& network_id,
                                          const std::string& endpoint_id,
                                          const std::vector<PortRequest>& requests);
    Status unpublish_docker_ports(const std::string& network_id, const std::string& endpoint_id);
    Status delete_docker_endpoint(const std::string& network_id, const std::string& endpoint_id);
    // Docker's DeleteNetwork: removes the network and anything still attached to it.
    Status remove_docker_network(const std::string& network_id);
    Result<Endpoint> find_endpoint(const std::string& network_id, const std::string& endpoint_id);
    // Gives a Docker network the name and labels Docker shows for it (learnt from the engine after
    // creation: the plugin protocol carries neither).
    Status adopt_docker_identity(const std::string& network_id, const std::string& name,
                                 const std::map<std::string, std::string>& labels);

    // ---- Docker's IpamDriver: pools and their addresses -------------------------------------
    Result<AddressPool> request_pool(std::optional<Cidr> subnet, std::optional<Cidr> ip_range);
    Status release_pool(const std::string& pool_id);
    Result<std::pair<AddressPool, Ipv4>> request_address(const std::string& pool_id,
                                                         std::optional<Ipv4> address);
    Status release_address(const std::string& pool_id, Ipv4 address);
    // The id of the pool on exactly this subnet, or "" if bpfnet's IPAM has none.
    Result<std::string> find_pool_id(const Cidr& subnet);

    // Creates the predefined networks Docker users expect if they are missing: host and none
    // (no kernel objects), and bridge unless config().default_bridge is "none".
    Status ensure_predefined_networks();
    // Whether `network` is one of them (they cannot be removed).
    bool is_predefined(const Network& network) const;
    // The network's driver, for what the APIs show of it.
    const NetworkDriver& driver_of(const Network& network) const { return drivers_->of(network); }
    // Whether Docker may create networks of the driver named `name` through the plugin.
    bool offers_to_docker(const std::string& name) const {
        auto driver = drivers_->named(name);
        return driver && (*driver)->offered_to_docker();
    }

    // Host: the sandbox is the host's own namespace (bound under its name); None: a namespace
    // with loopback only that no network can be added to. Both are recorded as an endpoint on the
    // host or none network.
    Result<Sandbox> create_sandbox(const std::string& name, SandboxMode mode = SandboxMode::Own);

    // ---- overlay networks (the overlay driver does the work, under the service's lock) ----
    // Gives the service the cluster store (before reconcile), whose overlay networks the graph's
    // overlay datapath serves; without it overlay networks are refused.
    void attach_cluster(OverlayRegistry* registry);
    // From the cluster store's watch: mirror overlay networks made on other hosts, drop those
    // removed, and program every network's tunnels to the other hosts' endpoints.
    void on_cluster_change();
    // Called by the host watch (kernel/host_watch.h) when the host's links, addresses or default
    // route changed: the datapaths re-survey, and the policy is synced again if the uplinks moved.
    void on_host_change();
    // After a restart: claim this host's overlay endpoints' addresses and publish them again.
    Status republish_overlay_endpoints();
    Result<std::vector<Sandbox>> list_sandboxes();
    Result<Sandbox> find_sandbox(const std::string& ref);
    Status remove_sandbox(const std::string& ref);

    // A consistent snapshot of everything, for inspect/ls output.
    using Snapshot = bpfnet::Snapshot;
    Result<Snapshot> snapshot();

    DatapathChoice datapath_choice(const Network& network) const {
        return drivers_->of(network).datapath_choice(network);
    }
    // How each usable datapath publishes ports, by datapath name.
    std::map<std::string, std::string> published_ports_paths() const;
    // How the networks' forwarded traffic passes the host's iptables FORWARD chain.
    std::string forward_firewall_state() const;
    std::string host_interfaces_state() const;
    // What the firewall does for one network (its gateway mode, masquerade, direct routing), for
    // `bpfnet status`.
    std::string firewall_summary(const Network& network) const {
        return drivers_->of(network).firewall_summary(network);
    }
    // How one network reaches the outside (BPF, the host's stack, none), for `bpfnet status`.
    std::string egress_summary(const Network& network) const {
        return drivers_->of(network).egress_summary(network);
    }
    const ProbeResult& probe() const { return probe_; }
    const ServiceConfig& config() const { return config_; }
    const std::string& instance() const { return instance_; }

  private:
    Result<Snapshot> load();
    // What an operation on one of `sandbox`'s endpoints may look at: every network (a host has
    // few), the sandbox's endpoints and the sandbox. Reading no more (the network's other
    // endpoints are asked for as addresses only) keeps connect and disconnect as cheap on a host
    // with thousands of endpoints and ports.
    Result<Snapshot> load_scope(const Sandbox& sandbox);
    Result<Sandbox> resolve_sandbox_locked(const std::string& ref);
    // What an operation on one Docker endpoint may look at: every network, the endpoint (if it
    // exists) and the sandbox it joined.
    Result<Snapshot> load_docker_scope(const std::string& endpoint_id);
    // The Docker endpoint `endpoint_id`, which must be on `network_id`.
    Result<Endpoint> docker_endpoint_locked(const std::string& network_id,
                                            const std::string& endpoint_id);
    // Adds (publish) or removes the NAT of one endpoint's published ports in the datapaths that
    // carry it, leaving every other port alone; where a datapath cannot, the whole policy is
    // synced instead.
    Status change_published_ports_locked(const Network& network, const Endpoint& endpoint,
                                         bool publish);
    Result<BridgeOptions> options_of(const Network& network) const;
    Datapath& datapath_for(const Network& network) {
        return drivers_->of(network).datapath(network);
    }
    Status sync_policy_locked(const std::vector<Network>& networks);
    Status sync_policy_locked();  // for every ready network
    // Host ports for `requests`, not clashing with any endpoint's but `except_endpoint`'s own, nor
    // with ports processes on the host listen on.
    Result<std::vector<PortBinding>> allocate_host_ports_locked(
        const std::vector<PortRequest>& requests, const Network& network,
        const std::string& except_endpoint);
    Status teardown_endpoint_locked(Endpoint endpoint, const Snapshot& snap, bool force);
    Status remove_network_locked(Network network, const Snapshot& snap);
    // Removes a Docker endpoint's kernel objects and returns it to "created, not joined"; drops
    // Docker's sandbox record once no endpoint uses it.
    Status unjoin_docker_endpoint_locked(Endpoint endpoint, const Snapshot& snap);
    Result<std::vector<Cidr>> subnets_in_use_locked(const Snapshot& snap,
                                                    const std::string& except_pool);
    Status reconcile_docker_endpoint_locked(const Endpoint& endpoint, const Snapshot& snap);
    Status ensure_default_route_locked(const Sandbox& sandbox);
    // Docker's rules about who may connect where (service_drivers.cpp): the network's driver's,
    // and those of the networks the sandbox is already on.
    Status check_connect_rules_locked(const Network& network, const Sandbox& sandbox,
                                      const Snapshot& snap, const ConnectRequest& request);
    // The endpoint that records a host- or none-mode sandbox's membership of the predefined
    // network of `driver`.
    Result<Endpoint> attach_builtin_locked(const BuiltinDriver& driver, const Sandbox& sandbox);
    // An endpoint that is a record only (NetworkDriver::endpoints_are_records), ready at once.
    Result<Endpoint> record_membership_locked(const Network& network, const Sandbox& sandbox);
    Status reconcile_locked();

    ServiceConfig config_;
    std::string instance_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<DatapathGraph> datapaths_;
    std::unique_ptr<DriverRegistry> drivers_;  // over store_ and datapaths_
    ProbeResult probe_;
    std::mutex mutex_;  // one operation at a time: allocations and kernel changes never interleave
};

}  // namespace bpfnet

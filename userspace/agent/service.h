// The network service: CNM operations (networks, sandboxes, endpoints) on top of the store and the
// datapath. Every operation follows the same crash-safe order: validate, record the intent in the
// store (state Creating/Deleting, naming every kernel object it will touch), act on the kernel,
// then record the outcome. reconcile() finishes or undoes whatever a crash interrupted.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ipam.h"
#include "core/model.h"
#include "core/options.h"
#include "datapath/datapath.h"
#include "datapath/probe.h"
#include "store/store.h"

namespace bpfnet {

struct ServiceConfig {
    std::string state_dir;
    std::string run_dir;
    std::string bpffs_root;
    std::string netns_dir;
    std::string store_kind = "sqlite";
};

struct CreateNetworkRequest {
    std::string name;
    std::string driver = "bridge";
    bool internal = false;
    std::map<std::string, std::string> options;
    std::map<std::string, std::string> labels;
    IpamRequest ipam;
};

struct ConnectRequest {
    std::string network;  // name, ID or ID prefix
    std::string sandbox;
    std::optional<Ipv4> ip;
    std::vector<std::string> aliases;
};

// Which datapath serves a network, and why.
struct DatapathChoice {
    std::string name;
    std::string reason;
};

class NetworkService {
  public:
    // `bpf_datapath` may be null (BPF unusable here); `bpf_unavailable` then says why.
    NetworkService(ServiceConfig config, std::string instance, std::unique_ptr<Store> store,
                   std::unique_ptr<Datapath> kernel_datapath,
                   std::unique_ptr<Datapath> bpf_datapath, std::string bpf_unavailable,
                   ProbeResult probe);
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

    Result<Sandbox> create_sandbox(const std::string& name);
    Result<std::vector<Sandbox>> list_sandboxes();
    Result<Sandbox> find_sandbox(const std::string& ref);
    Status remove_sandbox(const std::string& ref);

    // A consistent snapshot of everything, for inspect/ls output.
    struct Snapshot {
        std::vector<Network> networks;
        std::vector<Endpoint> endpoints;
        std::vector<Sandbox> sandboxes;
    };
    Result<Snapshot> snapshot();

    DatapathChoice datapath_choice(const Network& network) const;
    const ProbeResult& probe() const { return probe_; }
    const ServiceConfig& config() const { return config_; }
    const std::string& instance() const { return instance_; }

  private:
    Result<Snapshot> load();
    Result<BridgeOptions> options_of(const Network& network) const;
    Datapath& datapath_for(const Network& network);
    Status sync_policy_locked(const std::vector<Network>& networks);
    Status teardown_endpoint_locked(Endpoint endpoint, const Snapshot& snap, bool force);
    Status ensure_default_route_locked(const std::string& sandbox_id);
    Status reconcile_locked();

    ServiceConfig config_;
    std::string instance_;
    std::unique_ptr<Store> store_;
    // Declaration order matters: the BPF datapath wraps the kernel one and must be destroyed first.
    std::unique_ptr<Datapath> kernel_;
    std::unique_ptr<Datapath> bpf_;
    std::string bpf_unavailable_;
    ProbeResult probe_;
    std::mutex mutex_;  // one operation at a time: allocations and kernel changes never interleave
};

}  // namespace bpfnet

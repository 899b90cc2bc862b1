// A Datapath that touches no kernel: it records every call so tests can check what the network
// service asked for (and in which order), and it can be told to fail the next call of one operation
// so tests can check the service's rollback. Not thread-safe; the service serialises its calls.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/options.h"
#include "core/result.h"
#include "datapath/datapath.h"

namespace bpfnet {

class FakeDatapath : public Datapath {
  public:
    // NetworkSpec holds references into the caller's objects; this keeps copies.
    struct RecordedSpec {
        Network network;
        BridgeOptions options;
    };

    // ---- What the service asked for --------------------------------------------------------
    // Every call, in order, as "<operation> <id or name>", e.g. "ensure_network 3f2a...".
    std::vector<std::string> calls;
    // Networks/endpoints currently in place (ensured and not removed since), by id.
    std::map<std::string, RecordedSpec> networks;
    std::map<std::string, Endpoint> endpoints;
    // Ids of every successful ensure, in order (repeats included: ensure is idempotent).
    std::vector<std::string> ensured_network_ids;
    std::vector<std::string> ensured_endpoint_ids;
    // Everything remove_* was called with, in order (also for objects never ensured).
    std::vector<Network> removed_networks;
    std::vector<Endpoint> removed_endpoints;
    // The spec list of the last successful sync_policy, and how many syncs there were.
    std::vector<RecordedSpec> last_policy;
    int sync_policy_count = 0;
    std::vector<PublishedPort> last_ports;  // the published ports of the last successful sync
    int remove_policy_count = 0;
    std::vector<std::set<std::string>> garbage_keeps;  // `keep` of each collect_garbage

    // ---- Failure injection: the next call of that operation fails with this error, once ------
    std::optional<Error> fail_next_ensure_network;
    std::optional<Error> fail_next_remove_network;
    std::optional<Error> fail_next_ensure_endpoint;
    std::optional<Error> fail_next_remove_endpoint;
    std::optional<Error> fail_next_sync_policy;
    std::optional<Error> fail_next_remove_policy;
    std::optional<Error> fail_next_collect_garbage;

    // ---- Queries -----------------------------------------------------------------------------
    bool has_network(const std::string& id) const { return networks.count(id) > 0; }
    bool was_removed(const std::string& network_id) const {
        for (const auto& n : removed_networks)
            if (n.id == network_id) return true;
        return false;
    }
    bool policy_includes(const std::string& network_id) const {
        for (const auto& spec : last_policy)
            if (spec.network.id == network_id) return true;
        return false;
    }
    std::vector<std::string> policy_names() const {
        std::vector<std::string> names;
        for (const auto& spec : last_policy) names.push_back(spec.network.name);
        return names;
    }

    // ---- Datapath ----------------------------------------------------------------------------
    const char* name() const override { return "kernel"; }

    Status ensure_network(const NetworkSpec& spec) override {
        calls.push_back("ensure_network " + spec.network.id);
        if (auto error = take(fail_next_ensure_network)) return fail(std::move(*error));
        networks[spec.network.id] = RecordedSpec{spec.network, spec.options};
        ensured_network_ids.push_back(spec.network.id);
        return {};
    }

    Status remove_network(const Network& network) override {
        calls.push_back("remove_network " + network.id);
        if (auto error = take(fail_next_remove_network)) return fail(std::move(*error));
        networks.erase(network.id);
        removed_networks.push_back(network);
        return {};
    }

    Status ensure_endpoint(const NetworkSpec& /*spec*/, const Endpoint& endpoint,
                           const Sandbox& /*sandbox*/) override {
        calls.push_back("ensure_endpoint " + endpoint.id);
        if (auto error = take(fail_next_ensure_endpoint)) return fail(std::move(*error));
        endpoints[endpoint.id] = endpoint;
        ensured_endpoint_ids.push_back(endpoint.id);
        return {};
    }

    Status remove_endpoint(const Endpoint& endpoint, const Sandbox& /*sandbox*/) override {
        calls.push_back("remove_endpoint " + endpoint.id);
        if (auto error = take(fail_next_remove_endpoint)) return fail(std::move(*error));
        endpoints.erase(endpoint.id);
        removed_endpoints.push_back(endpoint);
        return {};
    }

    Status sync_policy(const std::vector<NetworkSpec>& specs,
                       const std::vector<PublishedPort>& ports) override {
        std::string names;
        for (const auto& spec : specs) names += (names.empty() ? "" : ",") + spec.network.name;
        calls.push_back("sync_policy [" + names + "]");
        if (auto error = take(fail_next_sync_policy)) return fail(std::move(*error));
        last_policy.clear();
        for (const auto& spec : specs)
            last_policy.push_back(RecordedSpec{spec.network, spec.options});
        last_ports = ports;
        ++sync_policy_count;
        return {};
    }

    Status remove_policy() override {
        calls.push_back("remove_policy");
        if (auto error = take(fail_next_remove_policy)) return fail(std::move(*error));
        last_policy.clear();
        ++remove_policy_count;
        return {};
    }

    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>& keep) override {
        calls.push_back("collect_garbage");
        if (auto error = take(fail_next_collect_garbage)) return fail(std::move(*error));
        garbage_keeps.push_back(keep);
        return std::vector<std::string>{};
    }

  private:
    static std::optional<Error> take(std::optional<Error>& slot) {
        std::optional<Error> out;
        out.swap(slot);
        return out;
    }
};

}  // namespace bpfnet

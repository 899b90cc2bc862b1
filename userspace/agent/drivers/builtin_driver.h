// The host and null drivers (one object per name): the predefined `host` and `none` networks,
// which have no kernel objects, no addresses and no datapath of their own. An endpoint on them
// only records that a sandbox is the host's namespace (host) or has loopback only (none); Docker's
// rules keep such a sandbox off every other network.
#pragma once

#include "agent/drivers/network_driver.h"

namespace bpfnet {

class BuiltinDriver final : public NetworkDriver {
  public:
    // `kind`: driver::kHost or driver::kNull.
    BuiltinDriver(const char* kind, DatapathGraph& datapaths)
        : kind_(kind), datapaths_(datapaths) {}

    const char* name() const override { return kind_; }
    // The predefined network's name: "host" or "none".
    const char* network_name() const;

    Status check_request(const CreateNetworkRequest& request,
                         const BridgeOptions& options) const override;
    Result<NetworkPlan> plan(const CreateNetworkRequest& request, const Snapshot& snap,
                             Network& network) override;
    bool predefined_only() const override { return true; }
    bool has_ipam() const override { return false; }

    DatapathChoice datapath_choice(const Network& network) const override;
    Datapath& datapath(const Network& network) override;

    Status check_connect(const Network& network, const Sandbox& sandbox,
                         const std::vector<Endpoint>& in_sandbox,
                         const ConnectRequest& request) override;
    std::optional<Failure> excludes_other_networks() const override;
    std::optional<Failure> fixed_membership() const override;
    bool endpoints_are_records() const override { return true; }
    bool routes_outside(const Network& /*network*/) const override { return false; }
    std::string egress_summary(const Network& /*network*/) const override {
        return host() ? "the host's own stack (the sandbox shares its namespace)" : "none";
    }

  private:
    bool host() const;
    const char* kind_;
    DatapathGraph& datapaths_;
};

}  // namespace bpfnet

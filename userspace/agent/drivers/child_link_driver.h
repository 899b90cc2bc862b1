// The macvlan and ipvlan drivers (one object per name): each endpoint is a child link of a parent
// interface, moved into its sandbox; the kernel's own driver switches the traffic, so there is no
// BPF datapath, no host end, no published ports and no host policy. Without a parent (or with
// --internal) the parent is a device bpfnet makes for the network, as Docker does.
#pragma once

#include "agent/drivers/network_driver.h"
#include "store/store.h"

namespace bpfnet {

class ChildLinkDriver final : public NetworkDriver {
  public:
    // `kind`: driver::kMacvlan or driver::kIpvlan.
    ChildLinkDriver(const char* kind, Store& store, DatapathGraph& datapaths)
        : kind_(kind), store_(store), datapaths_(datapaths) {}

    const char* name() const override { return kind_; }
    Status check_request(const CreateNetworkRequest& request,
                         const BridgeOptions& options) const override;
    Result<NetworkPlan> plan(const CreateNetworkRequest& request, const Snapshot& snap,
                             Network& network) override;

    DatapathChoice datapath_choice(const Network& network) const override;
    Datapath& datapath(const Network& network) override;

    Status check_connect(const Network& network, const Sandbox& sandbox,
                         const std::vector<Endpoint>& in_sandbox,
                         const ConnectRequest& request) override;
    bool has_host_end() const override { return false; }
    std::optional<Failure> refuses_ports() const override;
    std::string egress_summary(const Network& /*network*/) const override {
        return "the parent device's network, directly (no host stack, no NAT)";
    }

  private:
    const char* kind_;
    Store& store_;
    DatapathGraph& datapaths_;
};

}  // namespace bpfnet

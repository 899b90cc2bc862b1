// The bridge driver: a Linux bridge per network with the gateway address, veths to the sandboxes,
// the firewall and NAT (kernel layer), and BPF forwarding over them where BPF is usable
// (bpfnet.datapath=auto|bpf|kernel chooses per network). The only driver whose endpoints publish
// ports and whose networks the host's policy polices.
#pragma once

#include "agent/drivers/network_driver.h"

namespace bpfnet {

class BridgeDriver final : public NetworkDriver {
  public:
    explicit BridgeDriver(DatapathGraph& datapaths) : datapaths_(datapaths) {}

    const char* name() const override { return driver::kBridge; }
    Status check_request(const CreateNetworkRequest& request,
                         const BridgeOptions& options) const override;
    Result<NetworkPlan> plan(const CreateNetworkRequest& request, const Snapshot& snap,
                             Network& network) override;
    bool offered_to_docker() const override { return true; }

    DatapathChoice datapath_choice(const Network& network) const override;
    Datapath& datapath(const Network& network) override;
    std::optional<DatapathKind> policed_as(const Network& network) const override;
    std::string firewall_summary(const Network& network) const override;
    std::string egress_summary(const Network& network) const override;

    bool publishes_ports() const override { return true; }

  private:
    DatapathGraph& datapaths_;
};

}  // namespace bpfnet

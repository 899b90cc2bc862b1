// The datapath of macvlan and ipvlan networks: each endpoint is a child device of the network's
// parent, created straight inside its sandbox with its own MAC (macvlan) or the parent's (ipvlan),
// so containers sit on the parent's LAN as if they were machines of their own; the kernel's
// driver switches between them and the parent. There is no bridge, no veth, no NAT and no BPF
// program: nothing on the host sees a child's traffic, which is why this is also what bpfnet falls
// back to for these drivers.
//
// The parent is the user's device (`-o parent=eth0`), an 802.1Q VLAN sub-interface bpfnet makes
// on demand (`-o parent=eth0.10`, removed with the network), or, without a parent, an internal
// veth pair that connects the network's containers only with each other (Docker uses a dummy
// device; a veth needs no CONFIG_DUMMY). What bpfnet made is named in Network::bridge_name and
// carries the agent's ownership alias, so reconcile and garbage collection treat it like a bridge.
#pragma once

#include "datapath/datapath.h"
#include "datapath/kernel_datapath.h"

namespace bpfnet {

// Name of the internal parent of a parentless network: "bmp-" + 11 hex digits of its ID; its veth
// peer is "bmq-" + the same.
std::string internal_parent_name(const std::string& network_id);

class ChildLinkDatapath : public Datapath {
  public:
    // `kernel` supplies the ownership alias of the agent.
    explicit ChildLinkDatapath(const KernelDatapath& kernel) : kernel_(kernel) {}

    const char* name() const override { return "macvlan"; }
    std::string published_ports_path() const override {
        return "not applicable (containers are reached on their own addresses)";
    }
    Status ensure_network(const NetworkSpec& spec) override;
    Status remove_network(const Network& network) override;
    Status ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                           const Sandbox& sandbox) override;
    Status remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) override;
    Status sync_policy(const std::vector<NetworkSpec>&,
                       const std::vector<PublishedPort>&) override {
        return {};
    }
    Status remove_policy() override { return {}; }
    // What this datapath makes on the host (parents) is collected by the kernel datapath's sweep.
    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>&) override {
        return std::vector<std::string>{};
    }

  private:
    const KernelDatapath& kernel_;
};

}  // namespace bpfnet

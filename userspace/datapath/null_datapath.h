// The datapath of the host and none networks: they have no kernel objects. A sandbox on the host
// network is the host's namespace itself; one on none keeps only its loopback. Every operation is
// a no-op that succeeds, so the service handles their endpoints like any other.
#pragma once

#include "datapath/datapath.h"

namespace bpfnet {

class NullDatapath : public Datapath {
  public:
    const char* name() const override { return "none"; }
    std::string published_ports_path() const override { return "not applicable"; }
    Status ensure_network(const NetworkSpec&) override { return {}; }
    Status remove_network(const Network&) override { return {}; }
    Status ensure_endpoint(const NetworkSpec&, const Endpoint&, const Sandbox&) override {
        return {};
    }
    Status remove_endpoint(const Endpoint&, const Sandbox&) override { return {}; }
    Status sync_policy(const std::vector<NetworkSpec>&,
                       const std::vector<PublishedPort>&) override {
        return {};
    }
    Status remove_policy() override { return {}; }
    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>&) override {
        return std::vector<std::string>{};
    }
};

}  // namespace bpfnet

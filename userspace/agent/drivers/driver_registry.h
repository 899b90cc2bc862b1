// The agent's network drivers, one object per driver name, built once with the service. The
// service and the API layers reach a network's driver only through here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/drivers/builtin_driver.h"
#include "agent/drivers/network_driver.h"
#include "agent/drivers/overlay_driver.h"
#include "core/model.h"
#include "store/store.h"

namespace bpfnet {

class DriverRegistry {
  public:
    DriverRegistry(Store& store, DatapathGraph& datapaths);
    ~DriverRegistry();

    // The driver of a network in the store.
    NetworkDriver& of(const Network& network) const;
    // The driver a create request names ("none" is Docker's CLI name for null); unknown names are
    // an Unsupported error that lists what this agent has.
    Result<NetworkDriver*> named(const std::string& name) const;
    OverlayDriver& overlay() const { return *overlay_; }
    // host and null, whose networks the agent makes itself.
    std::vector<BuiltinDriver*> builtins() const { return {host_.get(), null_.get()}; }
    // The driver whose network records a sandbox of `mode` (Host: host, None: null).
    BuiltinDriver& builtin_for(SandboxMode mode) const;

  private:
    std::unique_ptr<NetworkDriver> bridge_;
    std::unique_ptr<NetworkDriver> macvlan_;
    std::unique_ptr<NetworkDriver> ipvlan_;
    std::unique_ptr<OverlayDriver> overlay_;
    std::unique_ptr<BuiltinDriver> host_;
    std::unique_ptr<BuiltinDriver> null_;
};

}  // namespace bpfnet

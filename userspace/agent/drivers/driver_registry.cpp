#include "agent/drivers/driver_registry.h"

#include <fmt/format.h>

#include "agent/drivers/bridge_driver.h"
#include "agent/drivers/child_link_driver.h"

namespace bpfnet {

DriverRegistry::DriverRegistry(Store& store, DatapathGraph& datapaths)
    : bridge_(std::make_unique<BridgeDriver>(datapaths)),
      macvlan_(std::make_unique<ChildLinkDriver>(driver::kMacvlan, store, datapaths)),
      ipvlan_(std::make_unique<ChildLinkDriver>(driver::kIpvlan, store, datapaths)),
      overlay_(std::make_unique<OverlayDriver>(store, datapaths)),
      host_(std::make_unique<BuiltinDriver>(driver::kHost, datapaths)),
      null_(std::make_unique<BuiltinDriver>(driver::kNull, datapaths)) {}

DriverRegistry::~DriverRegistry() = default;

Result<NetworkDriver*> DriverRegistry::named(const std::string& name) const {
    for (NetworkDriver* d :
         {bridge_.get(), macvlan_.get(), ipvlan_.get(), static_cast<NetworkDriver*>(overlay_.get()),
          static_cast<NetworkDriver*>(host_.get()), static_cast<NetworkDriver*>(null_.get())}) {
        if (name == d->name()) return d;
    }
    if (name == "none") return static_cast<NetworkDriver*>(null_.get());
    return fail(ErrorKind::Unsupported,
                fmt::format("network driver \"{}\" is not supported by this agent (available: "
                            "bridge, macvlan, ipvlan, overlay)",
                            name));
}

NetworkDriver& DriverRegistry::of(const Network& network) const {
    auto found = named(network.driver);
    // Only named() makes networks, so the store names known drivers; a record from a newer agent
    // is served as the bridge it most likely is rather than crash the agent.
    return found ? **found : *bridge_;
}

BuiltinDriver& DriverRegistry::builtin_for(SandboxMode mode) const {
    return mode == SandboxMode::Host ? *host_ : *null_;
}

}  // namespace bpfnet

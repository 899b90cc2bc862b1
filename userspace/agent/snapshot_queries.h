// Lookups over a loaded snapshot of the store, shared by the service's source files.
#pragma once

#include <algorithm>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "core/model.h"

namespace bpfnet {

inline const Network* network_by_id(const std::vector<Network>& networks, const std::string& id) {
    for (const auto& n : networks)
        if (n.id == id) return &n;
    return nullptr;
}

inline const Network* network_by_name(const std::vector<Network>& networks,
                                      const std::string& name) {
    for (const auto& n : networks)
        if (n.name == name) return &n;
    return nullptr;
}

inline const Sandbox* sandbox_by_id(const std::vector<Sandbox>& sandboxes, const std::string& id) {
    for (const auto& s : sandboxes)
        if (s.id == id) return &s;
    return nullptr;
}

inline std::vector<Endpoint> endpoints_where(const std::vector<Endpoint>& endpoints,
                                             const std::function<bool(const Endpoint&)>& pred) {
    std::vector<Endpoint> out;
    std::copy_if(endpoints.begin(), endpoints.end(), std::back_inserter(out), pred);
    return out;
}

}  // namespace bpfnet

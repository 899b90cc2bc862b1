// Pinned maps outlive the agent, and so outlive the layout they were created with: after an
// upgrade that changed a key, a value or a size (or a changed --ct-max), libbpf refuses to reuse
// the old pin and the program would not load. Such a pin is removed before load so the object
// creates the map afresh; the agent refills configuration maps from its store, and counters and
// conntrack start over (conntrack picks up running flows again on their next packet).
#pragma once

#include <string>

#include "core/result.h"

struct bpf_object;

namespace bpfnet {

// For every map of `obj` (opened, not loaded) pinned by name under `pin_dir`: removes the pin if
// its type, key or value size, max_entries or flags differ from the object's definition.
Status drop_incompatible_pins(bpf_object* obj, const std::string& pin_dir);

}  // namespace bpfnet

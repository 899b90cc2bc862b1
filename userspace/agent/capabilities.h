// Least privilege inside the agent: at start bpfnetd keeps only the capabilities its work needs
// (agent_capabilities(), each with the reason) in its effective and permitted sets, empties the
// inheritable and ambient sets, shrinks the bounding set to the same list and sets no_new_privs,
// so neither the agent nor anything that ever runs from it can regain the rest. The process stays
// uid 0 and the securebits are left as they are: with no uid change there is no setuid fixup that
// could clear the kept capabilities, so none of KEEP_CAPS/NO_SETUID_FIXUP is needed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace bpfnet {

// A capability the agent keeps, and what it is needed for.
struct NeededCapability {
    unsigned number;     // CAP_* from <linux/capability.h>
    const char* name;    // "CAP_BPF"
    const char* reason;  // one line, for the log and the docs
};

// The capabilities bpfnetd keeps, in capability-number order.
std::span<const NeededCapability> agent_capabilities();
// Bit n set for capability n of agent_capabilities().
uint64_t agent_capability_mask();

// "CAP_NET_ADMIN" for 12; "CAP_<n>" for a number neither this list nor libcap-ng can name.
std::string capability_name(unsigned capability);
// Names of the bits set in `mask`, in capability-number order.
std::vector<std::string> capability_names(uint64_t mask);
// The names joined with ", ", or "none", for messages.
std::string describe_capabilities(uint64_t mask);

// The capability sets and no_new_privs of one task, as /proc/<pid>/status shows them.
struct ProcessCapabilities {
    uint64_t inheritable = 0;   // CapInh
    uint64_t permitted = 0;     // CapPrm
    uint64_t effective = 0;     // CapEff
    uint64_t bounding = 0;      // CapBnd
    uint64_t ambient = 0;       // CapAmb
    bool no_new_privs = false;  // NoNewPrivs
    unsigned threads = 0;       // Threads
};
// Parses the text of a /proc/<pid>/status file. Every field above must be present.
Result<ProcessCapabilities> parse_process_capabilities(std::string_view status_text);
// This process's (its main thread's) capabilities, from /proc/self/status.
Result<ProcessCapabilities> read_process_capabilities();

// What dropping will do, from the sets the process holds now: keep the needed capabilities it has,
// note the needed ones it lacks (it runs without them: e.g. not as root, or on a kernel older than
// CAP_BPF), and remove everything else from the bounding set.
struct CapabilityPlan {
    uint64_t keep = 0;            // effective = permitted after the drop
    uint64_t not_held = 0;        // needed but not permitted now: cannot be gained
    uint64_t bounding_extra = 0;  // in the bounding set now, not needed
};
CapabilityPlan plan_capability_drop(const ProcessCapabilities& current);

// The outcome of drop_unneeded_capabilities(), for the log.
struct CapabilityDrop {
    CapabilityPlan plan;
    // False when the bounding set had capabilities to remove but CAP_SETPCAP, which removing them
    // takes, was not held (no_new_privs and the empty inheritable set still keep them unreachable).
    bool bounding_narrowed = true;
};

// Sets no_new_privs and reduces every capability set to plan_capability_drop(), then reads the sets
// back and fails unless they are exactly what was planned. Capabilities are per thread: this must
// run before the process starts its second thread, and fails if it already has.
Result<CapabilityDrop> drop_unneeded_capabilities();

}  // namespace bpfnet

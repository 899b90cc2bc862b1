// Crash-injection points for the crash-consistency tests. BPFNET_FAILPOINTS holds a comma-separated
// list of point names; reaching a listed point kills the agent with SIGKILL, exactly as an OOM kill
// or power loss would, so tests can stop it between any two steps of an operation.
#pragma once

#include <string_view>

namespace bpfnet {

void failpoint(std::string_view name);

}  // namespace bpfnet

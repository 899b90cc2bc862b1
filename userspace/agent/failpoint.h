// Crash-injection points for the crash-consistency tests. BPFNET_FAILPOINTS holds a comma-separated
// list of point names; reaching a listed point kills the agent with SIGKILL, exactly as an OOM kill
// or power loss would, so tests can stop it between any two steps of an operation.
// The sanitizer build (cmake -DBPFNET_SANITIZE=ON) also takes NAME=leak and NAME=oob: reaching the
// point leaks a heap block (LeakSanitizer reports it when the agent exits) or reads one byte past
// the end of one (AddressSanitizer aborts the agent there), so a test can prove that the e2e
// harness fails on such reports (tests/e2e/e2e_sec_sanitizer_harness.sh). Other builds have no
// such code and ignore those entries.
#pragma once

#include <string_view>

namespace bpfnet {

void failpoint(std::string_view name);

}  // namespace bpfnet

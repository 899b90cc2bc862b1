// Running another program and collecting what it says: for host tools that own a state bpfnet must
// join rather than re-implement (the iptables binary, which picks the host's backend, legacy or
// nf_tables, exactly as Docker's own calls do).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace bpfnet::kernel {

struct ProgramResult {
    int exit_code = 0;   // the program's exit status; 128 + N if signal N killed it
    std::string output;  // stdout and stderr, interleaved as written
};

// Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, and waits for it. An error only
// when it cannot be started (NotFound if it is not installed); a non-zero exit is a result.
Result<ProgramResult> run_program(const std::vector<std::string>& argv);

}  // namespace bpfnet::kernel

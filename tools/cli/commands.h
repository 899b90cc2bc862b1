// Registration of the CLI's command groups. Each group adds its subcommands to the app; their
// callbacks set the process exit code through Context.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace bpfnet::cli {

struct Context {
    std::string run_dir = "/run/bpfnet";
    int exit_code = 0;
};

void add_network_commands(CLI::App& app, Context& ctx);
void add_sandbox_commands(CLI::App& app, Context& ctx);
void add_system_commands(CLI::App& app, Context& ctx);

// Prints "msg" to stderr and records failure.
void report_error(Context& ctx, const std::string& message);

}  // namespace bpfnet::cli

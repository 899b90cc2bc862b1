// Registration of the CLI's command groups. Each group adds its subcommands to the app; their
// callbacks set the process exit code through Context.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "client/socket_path.h"

namespace bpfnet::cli {

struct Context {
    std::string run_dir = kDefaultRunDir;
    std::string bpffs_root = "/sys/fs/bpf";  // where the datapath's maps and links are pinned
    int exit_code = 0;
};

void add_network_commands(CLI::App& app, Context& ctx);
void add_sandbox_commands(CLI::App& app, Context& ctx);
void add_system_commands(CLI::App& app, Context& ctx);
void add_inspect_commands(CLI::App& app, Context& ctx);  // prog, map, endpoint, ct, nat, stats
void add_monitor_command(CLI::App& app, Context& ctx);
void add_help_command(CLI::App& app, Context& ctx);

// Prints "msg" to stderr and records failure.
void report_error(Context& ctx, const std::string& message);

}  // namespace bpfnet::cli

// bpfnet: the command line for bpfnetd. `network ...` mirrors `docker network ...`, `sandbox ...`
// manages named network namespaces for hosts without docker, `status`/`version` describe the agent.
#include <iostream>

#include <bpfnet/version.h>

#include "commands.h"

namespace bpfnet::cli {

void report_error(Context& ctx, const std::string& message) {
    std::cerr << message << '\n';
    ctx.exit_code = 1;
}

}  // namespace bpfnet::cli

int main(int argc, char** argv) {
    bpfnet::cli::Context ctx;
    CLI::App app{"bpfnet: container networks on an eBPF datapath", "bpfnet"};
    app.add_option("--run-dir", ctx.run_dir,
                   "Run directory of the agent to talk to (its API socket lives there)")
        ->envname("BPFNET_RUN_DIR")
        ->capture_default_str();
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every command");
    bpfnet::cli::add_network_commands(app, ctx);
    bpfnet::cli::add_sandbox_commands(app, ctx);
    bpfnet::cli::add_system_commands(app, ctx);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return ctx.exit_code;
}

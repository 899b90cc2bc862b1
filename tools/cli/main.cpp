// bpfnet: the command line for bpfnetd. `network ...` mirrors `docker network ...`, `sandbox ...`
// manages named network namespaces for hosts without docker, `status`/`version` describe the agent,
// and prog/map/endpoint/ct/nat/stats/monitor look into the datapath itself (without the agent).
#include <bpf/libbpf.h>

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
    // The inspection commands probe interfaces where bpfnet has nothing attached: libbpf's notes
    // about those are noise; failures that matter come back as errors.
    libbpf_set_print(nullptr);
    bpfnet::cli::Context ctx;
    CLI::App app{"bpfnet: container networks on an eBPF datapath", "bpfnet"};
    app.add_option("--run-dir", ctx.run_dir,
                   "Run directory of the agent to talk to (its API socket lives there)")
        ->envname("BPFNET_RUN_DIR")
        ->capture_default_str();
    app.add_option("--bpffs-root", ctx.bpffs_root,
                   "bpffs the agent pins its datapath under (the inspection commands read it)")
        ->envname("BPFNET_BPFFS_ROOT")
        ->capture_default_str();
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "Show help for every command");
    bpfnet::cli::add_network_commands(app, ctx);
    bpfnet::cli::add_sandbox_commands(app, ctx);
    bpfnet::cli::add_system_commands(app, ctx);
    bpfnet::cli::add_inspect_commands(app, ctx);
    bpfnet::cli::add_monitor_command(app, ctx);
    bpfnet::cli::add_help_command(app, ctx);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return ctx.exit_code;
}

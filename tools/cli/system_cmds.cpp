// `bpfnet status` and `bpfnet version`.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <bpfnet/version.h>

#include "client/api_client.h"
#include "commands.h"
#include "table.h"

namespace bpfnet::cli {

namespace {

// ordered_json keeps docker's field order (Name, Id, Created, ...) in what users read.
using json = nlohmann::ordered_json;

std::string yes_no(const json& v) {
    return v.is_boolean() && v.get<bool>() ? "yes" : "no";
}

void run_status(Context& ctx, const std::string& format) {
    auto reply = ApiClient(ctx.run_dir).call("GET", "/status");
    if (!reply) return report_error(ctx, reply.error().message);
    const json& s = *reply;
    if (format == "json") {
        std::cout << s.dump(4) << '\n';
        return;
    }
    const json& probe = s["Probe"];
    std::cout << fmt::format("Agent:       bpfnetd {} (instance {})\n",
                             s["Version"].get<std::string>(), s["Instance"].get<std::string>());
    std::cout << fmt::format("Store:       {} in {}\n", s["Store"].get<std::string>(),
                             s["StateDir"].get<std::string>());
    std::cout << fmt::format("API socket:  {}/bpfnetd.sock\n", s["RunDir"].get<std::string>());
    std::cout << fmt::format("Kernel:      {}\n", probe.value("kernel_release", "unknown"));
    std::cout << fmt::format(
        "BPF probe:   {}: bpf() {}, bpffs at {} {}, prog test run {}, tcx {}, "
        "redirect_peer {}, BTF {}\n",
        probe.value("bpf_usable", false) ? "usable" : "NOT usable", yes_no(probe["bpf_syscall"]),
        s["BpffsRoot"].get<std::string>(), yes_no(probe["bpffs"]), yes_no(probe["prog_test_run"]),
        yes_no(probe["tcx_link_api"]), yes_no(probe["redirect_peer"]), yes_no(probe["btf"]));
    for (const auto& reason : probe.value("reasons", json::array())) {
        std::cout << "             " << reason.get<std::string>() << '\n';
    }
    // Bound to a name: items() of a temporary would outlive the temporary in the loop.
    const json ports = s.value("PublishedPorts", json::object());
    for (const auto& [datapath, path] : ports.items()) {
        std::cout << fmt::format("Ports ({}): {}\n", datapath, path.get<std::string>());
    }
    if (const std::string fw = s.value("ForwardFirewall", ""); !fw.empty())
        std::cout << fmt::format("Forwarding:  {}\n", fw);
    if (const std::string host = s.value("HostInterfaces", ""); !host.empty())
        std::cout << fmt::format("Interfaces:  {}\n", host);
    // An agent older than the capability report sends neither field.
    if (s.contains("Capabilities")) {
        std::vector<std::string> caps = s["Capabilities"].get<std::vector<std::string>>();
        std::cout << fmt::format(
            "Capabilities: {}{}\n",
            caps.empty() ? std::string("none") : fmt::format("{}", fmt::join(caps, " ")),
            s.value("NoNewPrivs", false) ? " (no_new_privs)" : "");
    }
    std::cout << fmt::format("Sandboxes:   {}   Endpoints: {}\n", s["Sandboxes"].get<int>(),
                             s["Endpoints"].get<int>());
    std::cout << "Networks:\n";
    Table table({"NAME", "DRIVER", "DATAPATH", "WHY"});
    for (const auto& n : s["Networks"]) {
        table.add({n["Name"].get<std::string>(), n["Driver"].get<std::string>(),
                   n["Datapath"].get<std::string>(), n["Reason"].get<std::string>()});
    }
    table.print(std::cout);
    std::cout << "Firewall:\n";
    for (const auto& n : s["Networks"]) {
        const std::string firewall = n.value("Firewall", "");
        if (!firewall.empty())
            std::cout << fmt::format("  {}: {}\n", n["Name"].get<std::string>(), firewall);
    }
    std::cout << "Egress:\n";
    for (const auto& n : s["Networks"]) {
        const std::string egress = n.value("Egress", "");
        if (!egress.empty())
            std::cout << fmt::format("  {}: {}\n", n["Name"].get<std::string>(), egress);
    }
}

void run_version(Context& ctx) {
    std::cout << "Client: bpfnet " << BPFNET_VERSION << '\n';
    auto reply = ApiClient(ctx.run_dir).call("GET", "/version");
    if (!reply) return report_error(ctx, reply.error().message);
    std::cout << "Server: bpfnetd " << (*reply)["Version"].get<std::string>() << " (API "
              << (*reply)["ApiVersion"].get<std::string>() << ")\n";
}

}  // namespace

void add_system_commands(CLI::App& app, Context& ctx) {
    auto format = std::make_shared<std::string>("text");
    auto* status = app.add_subcommand(
        "status", "Show the agent, the datapath probe and which datapath serves each network");
    status->add_option("--format", *format, "text or json")->check(CLI::IsMember({"text", "json"}));
    status->callback([&ctx, format] { run_status(ctx, *format); });

    auto* version = app.add_subcommand("version", "Show client and agent versions");
    version->callback([&ctx] { run_version(ctx); });
}

}  // namespace bpfnet::cli

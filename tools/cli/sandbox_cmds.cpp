// `bpfnet sandbox create|rm|ls|inspect|exec`: named network namespaces managed by the agent, the
// stand-in for containers on hosts without docker (and in tests).
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "client/api_client.h"
#include "commands.h"
#include "table.h"

namespace bpfnet::cli {

namespace {

// ordered_json keeps docker's field order (Name, Id, Created, ...) in what users read.
using json = nlohmann::ordered_json;

struct SandboxArgs {
    std::vector<std::string> refs;
    std::string name;
    std::string network;               // create --network: host, none, or a network to connect
    std::string ip;                    // create --ip (with --network NET)
    std::vector<std::string> publish;  // create --publish (with --network NET)
    std::vector<std::string> command;
    std::string format = "table";
    bool quiet = false;
};

// Like `docker create --network`: host and none are the sandbox's namespace itself; any other
// network is connected right after creation (and the sandbox removed again if that fails).
void run_create(Context& ctx, const SandboxArgs& a) {
    const bool special = a.network == "host" || a.network == "none";
    if (a.network == "host" && !a.publish.empty())
        return report_error(ctx,
                            "published ports are discarded when using host network mode: the "
                            "sandbox uses the host's ports directly");
    if (special && !a.ip.empty())
        return report_error(ctx, fmt::format("--ip is not allowed with --network {}", a.network));
    if (a.network == "none" && !a.publish.empty())
        return report_error(ctx, "published ports need a network: none has only loopback");
    ApiClient client(ctx.run_dir);
    json request = {{"Name", a.name}};
    if (special) request["NetworkMode"] = a.network;
    auto reply = client.call("POST", "/sandboxes/create", request);
    if (!reply) return report_error(ctx, reply.error().message);
    const std::string id = (*reply)["Id"].get<std::string>();
    if (!a.network.empty() && !special) {
        json endpoint_config = json::object();
        if (!a.ip.empty()) endpoint_config["IPAMConfig"] = {{"IPv4Address", a.ip}};
        if (!a.publish.empty()) endpoint_config["Publish"] = a.publish;
        auto connected = client.call("POST", "/networks/" + a.network + "/connect",
                                     {{"Container", id}, {"EndpointConfig", endpoint_config}});
        if (!connected) {
            (void)client.call("DELETE", "/sandboxes/" + id);
            return report_error(ctx, connected.error().message);
        }
    }
    std::cout << id << '\n';
}

void run_rm(Context& ctx, const SandboxArgs& a) {
    ApiClient client(ctx.run_dir);
    for (const auto& ref : a.refs) {
        auto reply = client.call("DELETE", "/sandboxes/" + ref);
        if (!reply)
            report_error(ctx, reply.error().message);
        else
            std::cout << ref << '\n';
    }
}

// `docker port`: "80/tcp -> 0.0.0.0:8080", one line per published port, optionally only those of
// one container port ("80" or "80/udp").
void run_port(Context& ctx, const SandboxArgs& a) {
    auto reply = ApiClient(ctx.run_dir).call("GET", "/sandboxes/" + a.name);
    if (!reply) return report_error(ctx, reply.error().message);
    std::string filter = a.refs.empty() ? "" : a.refs.front();
    if (!filter.empty() && filter.find('/') == std::string::npos) filter += "/tcp";
    bool found = false;
    for (const auto& [network, endpoint] : (*reply)["Networks"].items()) {
        for (const auto& port : endpoint.value("Ports", json::array())) {
            // "0.0.0.0:8080->80/tcp"
            std::string text = port.get<std::string>();
            auto arrow = text.find("->");
            std::string container = text.substr(arrow + 2);
            if (!filter.empty() && container != filter) continue;
            std::cout << container << " -> " << text.substr(0, arrow) << '\n';
            found = true;
        }
    }
    if (!found && !filter.empty()) {
        report_error(ctx, fmt::format("no public port '{}' published for {}", filter, a.name));
    }
}

void run_ls(Context& ctx, const SandboxArgs& a) {
    auto reply = ApiClient(ctx.run_dir).call("GET", "/sandboxes");
    if (!reply) return report_error(ctx, reply.error().message);
    Table table({"SANDBOX ID", "NAME", "NETWORKS", "NETNS"});
    for (const auto& s : *reply) {
        std::string id = s["Id"].get<std::string>().substr(0, 12);
        if (a.quiet) {
            std::cout << id << '\n';
            continue;
        }
        if (a.format == "json") {
            std::cout << s.dump() << '\n';
            continue;
        }
        std::string networks;
        for (const auto& [name, info] : s["Networks"].items()) {
            if (!networks.empty()) networks += ",";
            networks += fmt::format("{}({})", name, info["IPAddress"].get<std::string>());
        }
        table.add({id, s["Name"].get<std::string>(), networks.empty() ? "-" : networks,
                   s["NetnsPath"].get<std::string>()});
    }
    if (!a.quiet && a.format != "json") table.print(std::cout);
}

void run_inspect(Context& ctx, const SandboxArgs& a) {
    ApiClient client(ctx.run_dir);
    json out = json::array();
    for (const auto& ref : a.refs) {
        auto reply = client.call("GET", "/sandboxes/" + ref);
        if (!reply)
            report_error(ctx, reply.error().message);
        else
            out.push_back(*reply);
    }
    std::cout << out.dump(4) << '\n';
}

// Enters the sandbox's network namespace and replaces this process with the command, like
// `ip netns exec`. Only the network namespace changes: the command sees the host's filesystem.
void run_exec(Context& ctx, const SandboxArgs& a) {
    auto reply = ApiClient(ctx.run_dir).call("GET", "/sandboxes/" + a.name);
    if (!reply) return report_error(ctx, reply.error().message);
    std::string path = (*reply)["NetnsPath"].get<std::string>();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report_error(ctx, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    if (::setns(fd, CLONE_NEWNET) != 0) {
        return report_error(
            ctx, fmt::format("cannot enter sandbox {}: {}", a.name, std::strerror(errno)));
    }
    ::close(fd);
    std::vector<char*> argv;
    for (const auto& arg : a.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    report_error(ctx, fmt::format("exec {}: {}", a.command[0], std::strerror(errno)));
    ctx.exit_code = errno == ENOENT ? 127 : 126;
}

}  // namespace

void add_sandbox_commands(CLI::App& app, Context& ctx) {
    auto* sandbox = app.add_subcommand("sandbox", "Manage sandboxes (named network namespaces)");
    sandbox->require_subcommand(1);
    auto args = std::make_shared<SandboxArgs>();

    auto* create = sandbox->add_subcommand("create", "Create a sandbox with loopback up");
    create->add_option("name", args->name, "Sandbox name")->required();
    create->add_option("--network,--net", args->network,
                       "host (the host's namespace), none (loopback only), or a network to "
                       "connect it to");
    create->add_option("--ip", args->ip, "IPv4 address on --network");
    create->add_option("-p,--publish", args->publish, "Publish a port on --network (docker -p)");
    create->callback([&ctx, args] { run_create(ctx, *args); });

    auto* rm =
        sandbox->add_subcommand("rm", "Remove sandboxes (disconnecting them from their networks)");
    rm->add_option("sandbox", args->refs, "Sandbox name or ID")->required();
    rm->callback([&ctx, args] { run_rm(ctx, *args); });

    auto* ls = sandbox->add_subcommand("ls", "List sandboxes");
    ls->add_flag("-q,--quiet", args->quiet, "Only display sandbox IDs");
    ls->add_option("--format", args->format, "table or json")
        ->check(CLI::IsMember({"table", "json"}));
    ls->callback([&ctx, args] { run_ls(ctx, *args); });

    auto* inspect = sandbox->add_subcommand("inspect", "Show a sandbox and its endpoints as JSON");
    inspect->add_option("sandbox", args->refs, "Sandbox name or ID")->required();
    inspect->callback([&ctx, args] { run_inspect(ctx, *args); });

    auto port_args = std::make_shared<SandboxArgs>();
    auto* port = app.add_subcommand("port", "List a sandbox's published ports, like docker port");
    port->add_option("sandbox", port_args->name, "Sandbox name or ID")->required();
    port->add_option("port", port_args->refs, "Only this container port: PORT[/PROTO]")
        ->expected(0, 1);
    port->callback([&ctx, port_args] { run_port(ctx, *port_args); });

    auto* exec = sandbox->add_subcommand(
        "exec", "Run a command inside a sandbox: exec NAME -- CMD [ARG...]");
    exec->add_option("name", args->name, "Sandbox name or ID")->required();
    exec->add_option("command", args->command, "Command and arguments")->required();
    exec->callback([&ctx, args] { run_exec(ctx, *args); });
}

}  // namespace bpfnet::cli

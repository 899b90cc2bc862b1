// `bpfnet network create|ls|inspect|rm|prune|connect|disconnect`, flag for flag like docker's.
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "client/api_client.h"
#include "commands.h"
#include "core/options.h"
#include "table.h"

namespace bpfnet::cli {

namespace {

// ordered_json keeps docker's field order (Name, Id, Created, ...) in what users read.
using json = nlohmann::ordered_json;

// Options of each subcommand live as long as the app, so CLI11 can write into them.
struct CreateArgs {
    std::string name, driver = "bridge", subnet, gateway, ip_range;
    std::vector<std::string> aux, opts, labels;
    bool internal = false;
};
struct LsArgs {
    std::vector<std::string> filters;
    std::string format = "table";
    bool quiet = false, no_trunc = false;
};
struct RefsArgs {
    std::vector<std::string> refs;
    std::string format = "json";
};
struct ConnectArgs {
    std::string network, sandbox, ip;
    std::vector<std::string> aliases;
    std::vector<std::string> publish;
    std::vector<std::string> driver_opts;
    bool force = false;
};

Result<std::map<std::string, std::string>> key_values(const std::vector<std::string>& items,
                                                      const char* flag) {
    std::map<std::string, std::string> out;
    for (const auto& item : items) {
        auto kv = parse_key_value(item);
        if (!kv)
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid {} \"{}\": expected key=value", flag, item));
        out[kv->first] = kv->second;
    }
    return out;
}

void run_create(Context& ctx, const CreateArgs& a) {
    auto options = key_values(a.opts, "--opt");
    auto labels = key_values(a.labels, "--label");
    auto aux = key_values(a.aux, "--aux-address");
    for (const auto* r : {&options, &labels, &aux}) {
        if (!*r) return report_error(ctx, r->error().message);
    }
    json config = json::object();
    if (!a.subnet.empty()) config["Subnet"] = a.subnet;
    if (!a.gateway.empty()) config["Gateway"] = a.gateway;
    if (!a.ip_range.empty()) config["IPRange"] = a.ip_range;
    if (!aux->empty()) config["AuxiliaryAddresses"] = *aux;
    json body = {
        {"Name", a.name},         {"Driver", a.driver},
        {"Internal", a.internal}, {"Options", *options},
        {"Labels", *labels},      {"IPAM", {{"Driver", "default"}, {"Config", json::array()}}}};
    if (!config.empty()) body["IPAM"]["Config"].push_back(config);
    auto reply = ApiClient(ctx.run_dir).call("POST", "/networks/create", body);
    if (!reply) return report_error(ctx, reply.error().message);
    std::cout << (*reply)["Id"].get<std::string>() << '\n';
}

// docker's filters: driver=, name= (substring), id= (prefix), label=KEY[=VALUE], type=.
Result<bool> matches_filters(const json& network, const std::vector<std::string>& filters) {
    for (const auto& f : filters) {
        auto kv = parse_key_value(f);
        if (!kv)
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid filter \"{}\": expected key=value", f));
        const auto& [key, value] = *kv;
        if (key == "driver") {
            if (network["Driver"] != value) return false;
        } else if (key == "name") {
            if (network["Name"].get<std::string>().find(value) == std::string::npos) return false;
        } else if (key == "id") {
            if (network["Id"].get<std::string>().rfind(value, 0) != 0) return false;
        } else if (key == "type") {
            // docker's type=builtin (the predefined bridge, host, none) or type=custom.
            if (value != "builtin" && value != "custom")
                return fail(
                    ErrorKind::InvalidArgument,
                    fmt::format("invalid filter \"type={}\": expected builtin or custom", value));
            const bool builtin = network["BpfNet"].value("Predefined", false);
            if (builtin != (value == "builtin")) return false;
        } else if (key == "label") {
            auto lkv = value.find('=');
            std::string lkey = value.substr(0, lkv);
            const json& labels = network["Labels"];
            if (!labels.contains(lkey)) return false;
            if (lkv != std::string::npos && labels[lkey] != value.substr(lkv + 1)) return false;
        } else {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format(
                    "invalid filter \"{}\": supported filters are driver, name, id, label, type",
                    key));
        }
    }
    return true;
}

void run_ls(Context& ctx, const LsArgs& a) {
    auto reply = ApiClient(ctx.run_dir).call("GET", "/networks");
    if (!reply) return report_error(ctx, reply.error().message);
    Table table({"NETWORK ID", "NAME", "DRIVER", "SCOPE", "DATAPATH"});
    for (const auto& n : *reply) {
        auto keep = matches_filters(n, a.filters);
        if (!keep) return report_error(ctx, keep.error().message);
        if (!*keep) continue;
        std::string id = n["Id"].get<std::string>();
        if (!a.no_trunc) id = id.substr(0, 12);
        if (a.quiet) {
            std::cout << id << '\n';
        } else if (a.format == "json") {
            // One object per line, like `docker network ls --format json`.
            std::cout << json{{"ID", id},
                              {"Name", n["Name"]},
                              {"Driver", n["Driver"]},
                              {"Scope", n["Scope"]},
                              {"Internal", n["Internal"]},
                              {"CreatedAt", n["Created"]},
                              {"Datapath", n["BpfNet"]["Datapath"]},
                              {"Labels", n["Labels"]}}
                             .dump()
                      << '\n';
        } else {
            table.add({id, n["Name"].get<std::string>(), n["Driver"].get<std::string>(),
                       n["Scope"].get<std::string>(), n["BpfNet"]["Datapath"].get<std::string>()});
        }
    }
    if (!a.quiet && a.format != "json") table.print(std::cout);
}

void run_inspect(Context& ctx, const RefsArgs& a) {
    ApiClient client(ctx.run_dir);
    json out = json::array();
    for (const auto& ref : a.refs) {
        auto reply = client.call("GET", "/networks/" + ref);
        if (!reply) {
            report_error(ctx, reply.error().message);
            continue;
        }
        out.push_back(*reply);
    }
    std::cout << out.dump(4) << '\n';
}

void run_rm(Context& ctx, const RefsArgs& a) {
    ApiClient client(ctx.run_dir);
    for (const auto& ref : a.refs) {
        auto reply = client.call("DELETE", "/networks/" + ref);
        if (!reply)
            report_error(ctx, reply.error().message);
        else
            std::cout << ref << '\n';
    }
}

void run_prune(Context& ctx, bool force) {
    if (!force) {
        std::cout
            << "WARNING! This will remove all custom networks not used by at least one sandbox.\n"
               "Are you sure you want to continue? [y/N] "
            << std::flush;
        std::string answer;
        if (!std::getline(std::cin, answer) ||
            (answer != "y" && answer != "Y" && answer != "yes")) {
            std::cout << '\n';
            return;
        }
    }
    auto reply = ApiClient(ctx.run_dir).call("POST", "/networks/prune", json::object());
    if (!reply) return report_error(ctx, reply.error().message);
    const json& deleted = (*reply)["NetworksDeleted"];
    if (deleted.empty()) return;
    std::cout << "Deleted Networks:\n";
    for (const auto& name : deleted) std::cout << name.get<std::string>() << '\n';
}

void run_connect(Context& ctx, const ConnectArgs& a) {
    json endpoint_config = json::object();
    if (!a.ip.empty()) endpoint_config["IPAMConfig"] = {{"IPv4Address", a.ip}};
    if (!a.aliases.empty()) endpoint_config["Aliases"] = a.aliases;
    if (!a.publish.empty()) endpoint_config["Publish"] = a.publish;
    if (!a.driver_opts.empty()) {
        auto opts = key_values(a.driver_opts, "--driver-opt");
        if (!opts) return report_error(ctx, opts.error().message);
        endpoint_config["DriverOpts"] = *opts;
    }
    auto reply = ApiClient(ctx.run_dir)
                     .call("POST", "/networks/" + a.network + "/connect",
                           {{"Container", a.sandbox}, {"EndpointConfig", endpoint_config}});
    if (!reply) report_error(ctx, reply.error().message);
}

void run_disconnect(Context& ctx, const ConnectArgs& a) {
    auto reply = ApiClient(ctx.run_dir)
                     .call("POST", "/networks/" + a.network + "/disconnect",
                           {{"Container", a.sandbox}, {"Force", a.force}});
    if (!reply) report_error(ctx, reply.error().message);
}

}  // namespace

void add_network_commands(CLI::App& app, Context& ctx) {
    auto* network = app.add_subcommand("network", "Manage networks");
    network->require_subcommand(1);

    auto create_args = std::make_shared<CreateArgs>();
    auto* create = network->add_subcommand("create", "Create a network");
    create->add_option("-d,--driver", create_args->driver, "Driver to manage the network")
        ->capture_default_str();
    create->add_option("--subnet", create_args->subnet, "Subnet in CIDR format, e.g. 10.1.0.0/24");
    create->add_option("--gateway", create_args->gateway, "IPv4 gateway of the subnet");
    create->add_option("--ip-range", create_args->ip_range,
                       "Allocate container addresses from this sub-range");
    create->add_option("--aux-address", create_args->aux, "Reserved address: name=IP (repeatable)");
    create->add_flag("--internal", create_args->internal,
                     "Restrict external access to the network");
    create->add_option("-o,--opt", create_args->opts, "Driver option key=value (repeatable)");
    create->add_option("--label", create_args->labels, "Label key=value (repeatable)");
    create->add_option("name", create_args->name, "Network name")->required();
    create->callback([&ctx, create_args] { run_create(ctx, *create_args); });

    auto ls_args = std::make_shared<LsArgs>();
    auto* ls = network->add_subcommand("ls", "List networks");
    ls->alias("list");
    ls->add_option("-f,--filter", ls_args->filters,
                   "Filter: driver=, name=, id=, label=, type=builtin|custom (repeatable)");
    ls->add_option("--format", ls_args->format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    ls->add_flag("-q,--quiet", ls_args->quiet, "Only display network IDs");
    ls->add_flag("--no-trunc", ls_args->no_trunc, "Do not truncate IDs");
    ls->callback([&ctx, ls_args] { run_ls(ctx, *ls_args); });

    auto inspect_args = std::make_shared<RefsArgs>();
    auto* inspect =
        network->add_subcommand("inspect", "Display detailed information on one or more networks");
    inspect->add_option("network", inspect_args->refs, "Network name or ID")->required();
    inspect->add_option("--format", inspect_args->format, "json (the only format)")
        ->check(CLI::IsMember({"json"}));
    inspect->callback([&ctx, inspect_args] { run_inspect(ctx, *inspect_args); });

    auto rm_args = std::make_shared<RefsArgs>();
    auto* rm = network->add_subcommand("rm", "Remove one or more networks");
    rm->alias("remove");
    rm->add_option("network", rm_args->refs, "Network name or ID")->required();
    rm->callback([&ctx, rm_args] { run_rm(ctx, *rm_args); });

    auto prune_force = std::make_shared<bool>(false);
    auto* prune = network->add_subcommand("prune", "Remove all unused networks");
    prune->add_flag("-f,--force", *prune_force, "Do not prompt for confirmation");
    prune->callback([&ctx, prune_force] { run_prune(ctx, *prune_force); });

    auto connect_args = std::make_shared<ConnectArgs>();
    auto* connect = network->add_subcommand("connect", "Connect a sandbox to a network");
    connect->add_option("--ip", connect_args->ip,
                        "IPv4 address (needs a network created with --subnet)");
    connect->add_option("--alias", connect_args->aliases, "Network-scoped alias (repeatable)");
    connect->add_option("--driver-opt", connect_args->driver_opts,
                        "Endpoint driver option key=value, e.g. "
                        "com.docker.network.endpoint.ifname=NAME (repeatable)");
    connect->add_option("-p,--publish", connect_args->publish,
                        "Publish a port: [ip:][hostPort[-end]:]port[-end][/tcp|udp|sctp] "
                        "(repeatable)");
    connect->add_option("network", connect_args->network, "Network name or ID")->required();
    connect->add_option("sandbox", connect_args->sandbox, "Sandbox name or ID")->required();
    connect->callback([&ctx, connect_args] { run_connect(ctx, *connect_args); });

    auto disconnect_args = std::make_shared<ConnectArgs>();
    auto* disconnect = network->add_subcommand("disconnect", "Disconnect a sandbox from a network");
    disconnect->add_flag("-f,--force", disconnect_args->force, "Force the sandbox to disconnect");
    disconnect->add_option("network", disconnect_args->network, "Network name or ID")->required();
    disconnect->add_option("sandbox", disconnect_args->sandbox, "Sandbox name or ID")->required();
    disconnect->callback([&ctx, disconnect_args] { run_disconnect(ctx, *disconnect_args); });
}

}  // namespace bpfnet::cli

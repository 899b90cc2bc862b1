// `bpfnet prog|map|endpoint|ct|nat|stats`: the datapath as the kernel holds it, read from the
// pinned maps and links (bpffs) like bpftool, decoded into words; agent names are added when the
// agent answers. Every command takes --format json.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <net/if.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "inspect_common.h"
#include "table.h"

namespace bpfnet::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

std::string str(const json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}
std::string or_dash(const std::string& s) {
    return s.empty() ? "-" : s;
}

void add_format_option(CLI::App* cmd, std::string& format) {
    cmd->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));
}

// The endpoint entries of the datapath: ifindex -> {ip, mac, network bridge}.
std::map<uint32_t, json> endpoints_by_ifindex(const inspect::PinnedDatapath& dp) {
    std::map<uint32_t, json> out;
    auto entries = dp.dump("bpfnet_ep_by_if", inspect::ifname_of);
    if (!entries) return out;
    for (const auto& e : *entries) out[e["key"]["ifindex"].get<uint32_t>()] = e["value"];
    return out;
}

// ---- prog list ------------------------------------------------------------------------------

struct ProgArgs {
    std::string format = "text";
    double sample = 0;
};

json prog_json(const inspect::ProgramAttachment& p, const std::string& network) {
    return json{{"interface", p.interface},
                {"ifindex", p.ifindex},
                {"hook", p.hook},
                {"mechanism", p.mechanism},
                {"role", p.role},
                {"network", network},
                {"pin", p.pin},
                {"link_id", p.link_id},
                {"prog_id", p.prog_id},
                {"name", p.prog_name},
                {"tag", p.tag},
                {"run_count", p.run_count},
                {"run_time_ns", p.run_time_ns},
                {"avg_ns", p.run_count ? p.run_time_ns / p.run_count : 0},
                {"instructions", p.instructions},
                {"verified_instructions", p.verified_instructions}};
}

void run_prog_list(Context& ctx, const ProgArgs& a) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    std::unique_ptr<int, void (*)(int*)> stats(nullptr, [](int* fd) {
        ::close(*fd);
        delete fd;
    });
    std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> before;
    if (a.sample > 0) {
        // The kernel counts run time only while someone holds this fd (or the sysctl is on).
        int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (fd < 0)
            return report_error(ctx, fmt::format("enabling BPF run-time statistics: {} (needs "
                                                 "CAP_SYS_ADMIN)",
                                                 std::strerror(errno)));
        stats.reset(new int(fd));
        auto first = dp->programs();
        if (failed(ctx, first)) return;
        for (const auto& p : *first) before[{p.ifindex, p.prog_id}] = {p.run_count, p.run_time_ns};
        std::this_thread::sleep_for(std::chrono::duration<double>(a.sample));
    }
    auto programs = dp->programs();
    if (failed(ctx, programs)) return;
    const auto endpoints = endpoints_by_ifindex(*dp);
    const AgentNames names = agent_names(ctx);
    json out = json::array();
    Table table({"INTERFACE", "HOOK", "VIA", "ROLE", "NETWORK", "PROG ID", "NAME", "TAG", "RUNS",
                 "AVG NS", "INSNS"});
    for (auto p : *programs) {
        if (a.sample > 0) {
            auto [runs, ns] = before[{p.ifindex, p.prog_id}];
            p.run_count -= std::min(runs, p.run_count);
            p.run_time_ns -= std::min(ns, p.run_time_ns);
        }
        std::string network;
        if (auto ep = endpoints.find(p.ifindex); ep != endpoints.end()) {
            const std::string bridge = ep->second.value("bridge", "");
            network = names.network(bridge);
            if (network.empty()) network = bridge;
        } else if (p.role == "uplink") {
            network = "published ports";
        } else if (p.role == "overlay") {
            network = "overlays";
        } else if (p.role == "host sockets") {
            network = "published ports (host)";
        }
        out.push_back(prog_json(p, network));
        table.add({or_dash(p.interface), p.hook, p.mechanism, p.role, or_dash(network),
                   std::to_string(p.prog_id), p.prog_name, p.tag, std::to_string(p.run_count),
                   p.run_count ? std::to_string(p.run_time_ns / p.run_count) : "-",
                   std::to_string(p.instructions)});
    }
    if (a.format == "json") {
        std::cout << out.dump(4) << '\n';
        return;
    }
    table.print(std::cout);
    if (a.sample <= 0)
        std::cout << "(RUNS and AVG NS count only while BPF statistics are on: --sample SECONDS "
                     "turns them on for that long)\n";
}

// ---- map list / dump ------------------------------------------------------------------------

void run_map_list(Context& ctx, const std::string& format) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    auto maps = dp->maps();
    if (failed(ctx, maps)) return;
    json out = json::array();
    Table table({"NAME", "TYPE", "ENTRIES", "MAX", "KEY", "VALUE", "HOLDS"});
    for (const auto& m : *maps) {
        out.push_back(json{{"name", m.name},
                           {"type", m.type},
                           {"id", m.id},
                           {"entries", m.entries},
                           {"max_entries", m.max_entries},
                           {"key_size", m.key_size},
                           {"value_size", m.value_size},
                           {"description", m.what}});
        const bool ring = m.type == "ringbuf";
        table.add({m.name, m.type, ring ? "-" : std::to_string(m.entries),
                   std::to_string(m.max_entries), std::to_string(m.key_size),
                   std::to_string(m.value_size), m.what});
    }
    if (format == "json") {
        std::cout << out.dump(4) << '\n';
        return;
    }
    table.print(std::cout);
}

void run_map_dump(Context& ctx, const std::string& name, const std::string& format) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    auto entries = dp->dump(name, inspect::ifname_of);
    if (failed(ctx, entries)) return;
    if (format == "json") {
        std::cout << entries->dump(4) << '\n';
        return;
    }
    for (const auto& e : *entries)
        std::cout << inspect::fields_text(e["key"]) << "  ->  " << inspect::fields_text(e["value"])
                  << '\n';
    std::cout << fmt::format("{} entries\n", entries->size());
}

// ---- endpoint list --------------------------------------------------------------------------

json endpoint_rows(const inspect::PinnedDatapath& dp, const AgentNames& names,
                   const std::string& network_filter) {
    std::map<uint32_t, json> counters;
    if (auto stats = dp.dump("bpfnet_ep_stats", inspect::ifname_of))
        for (const auto& e : *stats) counters[e["key"]["ifindex"].get<uint32_t>()] = e["value"];
    json rows = json::array();
    for (const auto& [ifindex, ep] : endpoints_by_ifindex(dp)) {
        const std::string bridge = ep.value("bridge", "");
        std::string network = names.network(bridge);
        if (!network_filter.empty() && network_filter != network && network_filter != bridge)
            continue;
        json c = counters.count(ifindex) ? counters[ifindex] : json::object();
        rows.push_back(json{{"interface", inspect::ifname_of(ifindex)},
                            {"ifindex", ifindex},
                            {"ip", ep["ip"]},
                            {"mac", ep["mac"]},
                            {"network", network.empty() ? bridge : network},
                            {"bridge", bridge},
                            {"sandbox", names.sandbox(bridge, ep["ip"].get<std::string>())},
                            {"datapath", "bpf"},
                            {"from_packets", c.value("from_packets", 0)},
                            {"from_bytes", c.value("from_bytes", 0)},
                            {"to_packets", c.value("to_packets", 0)},
                            {"to_bytes", c.value("to_bytes", 0)}});
    }
    // Endpoints on the kernel fallback are in no BPF map: the agent knows them, and the host end
    // of their veth counts their traffic (what it receives, the container sent).
    for (const AgentEndpoint& e : names.endpoints) {
        if (!network_filter.empty() && network_filter != e.network) continue;
        if (e.datapath == "bpf") continue;
        auto stat = [&](const char* counter) -> uint64_t {
            std::ifstream in("/sys/class/net/" + e.host_interface + "/statistics/" + counter);
            uint64_t v = 0;
            in >> v;
            return v;
        };
        rows.push_back(json{{"interface", e.host_interface},
                            {"ifindex", if_nametoindex(e.host_interface.c_str())},
                            {"ip", e.ip},
                            {"mac", e.mac},
                            {"network", e.network},
                            {"bridge", ""},
                            {"sandbox", e.sandbox},
                            {"datapath", e.datapath},
                            {"from_packets", stat("rx_packets")},
                            {"from_bytes", stat("rx_bytes")},
                            {"to_packets", stat("tx_packets")},
                            {"to_bytes", stat("tx_bytes")}});
    }
    return rows;
}

void print_endpoints(const json& rows) {
    Table table({"INTERFACE", "IP", "MAC", "NETWORK", "SANDBOX", "DATAPATH", "SENT PKTS",
                 "SENT BYTES", "RECEIVED PKTS", "RECEIVED BYTES"});
    for (const auto& r : rows)
        table.add({or_dash(str(r["interface"])), str(r["ip"]), str(r["mac"]), str(r["network"]),
                   or_dash(str(r["sandbox"])), str(r["datapath"]), str(r["from_packets"]),
                   str(r["from_bytes"]), str(r["to_packets"]), str(r["to_bytes"])});
    table.print(std::cout);
}

void run_endpoint_list(Context& ctx, const std::string& network, const std::string& format) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    json rows = endpoint_rows(*dp, agent_names(ctx), network);
    if (format == "json") {
        std::cout << rows.dump(4) << '\n';
        return;
    }
    print_endpoints(rows);
}

// ---- ct list / flush, nat list --------------------------------------------------------------

struct CtArgs {
    std::string src, dst, proto, kind, format = "text";
};

void run_ct_list(Context& ctx, const CtArgs& a) {
    if (!a.proto.empty() && !inspect::protocol_number(a.proto))
        return report_error(ctx,
                            fmt::format("invalid --proto \"{}\": tcp, udp, sctp or icmp", a.proto));
    auto dp = open_datapath(ctx);
    if (!dp) return;
    auto entries = dp->dump("bpfnet_ct", inspect::ifname_of);
    if (failed(ctx, entries)) return;
    json rows = json::array();
    Table table({"KIND", "PROTO", "DIR", "SOURCE", "DESTINATION", "NAT TO", "EXPIRES", "PACKETS",
                 "BYTES", "FLAGS"});
    for (const auto& e : *entries) {
        const json& k = e["key"];
        const json& v = e["value"];
        if (!a.src.empty() && k["src"] != a.src) continue;
        if (!a.dst.empty() && k["dst"] != a.dst) continue;
        if (!a.proto.empty() && k["proto"] != a.proto) continue;
        // Egress flows were started by an endpoint (source NAT or routed), the others reached a
        // published port from outside.
        const auto& flags = v["flags"];
        json row = {{"kind", std::find(flags.begin(), flags.end(), "egress") != flags.end()
                                 ? "egress"
                                 : "published"}};
        row.update(k);
        row.update(v);
        if (!a.kind.empty() && row["kind"] != a.kind) continue;
        rows.push_back(row);
        table.add({str(row["kind"]), str(k["proto"]), str(k["dir"]),
                   fmt::format("{}:{}", str(k["src"]), str(k["sport"])),
                   fmt::format("{}:{}", str(k["dst"]), str(k["dport"])),
                   fmt::format("{}:{}", str(v["nat_ip"]), str(v["nat_port"])),
                   fmt::format("{}s", str(v["expires_in_s"])), str(v["packets"]), str(v["bytes"]),
                   inspect::fields_text(json{{"f", v["flags"]}}).substr(2)});
    }
    if (a.format == "json") {
        std::cout << rows.dump(4) << '\n';
        return;
    }
    table.print(std::cout);
}

void run_ct_flush(Context& ctx) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    auto removed = dp->clear("bpfnet_ct");
    if (failed(ctx, removed)) return;
    std::cout << fmt::format("Flushed {} conntrack entries\n", *removed);
}

json counter_rows(const inspect::PinnedDatapath& dp, const std::string& map, const char* field) {
    json rows = json::array();
    auto entries = dp.dump(map, inspect::ifname_of);
    if (!entries) return rows;
    for (const auto& e : *entries) {
        json row = json{{field, e["key"][field]}};
        row.update(e["value"]);
        if (row[field] == "none") continue;  // the unused slot 0 of the drop reasons
        rows.push_back(row);
    }
    return rows;
}

void run_nat_list(Context& ctx, const std::string& format) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    auto ports = dp->dump("bpfnet_pub_port", inspect::ifname_of);
    if (failed(ctx, ports)) return;
    const AgentNames names = agent_names(ctx);
    json rows = json::array();
    Table table({"PROTO", "HOST IP", "HOST PORT", "TO", "NETWORK", "SANDBOX"});
    for (const auto& e : *ports) {
        const json& k = e["key"];
        const json& v = e["value"];
        const std::string bridge = v.value("bridge", "");
        const std::string network = names.network(bridge);
        json row = json{{"proto", k["proto"]},
                        {"host_ip", k["host_ip"]},
                        {"host_port", k["host_port"]},
                        {"ip", v["ip"]},
                        {"port", v["port"]},
                        {"network", network.empty() ? bridge : network},
                        {"sandbox", names.sandbox(bridge, v["ip"].get<std::string>())}};
        table.add({str(row["proto"]), str(row["host_ip"]), str(row["host_port"]),
                   fmt::format("{}:{}", str(row["ip"]), str(row["port"])), str(row["network"]),
                   or_dash(str(row["sandbox"]))});
        rows.push_back(std::move(row));
    }
    json counters = counter_rows(*dp, "bpfnet_nat_cnt", "counter");
    if (format == "json") {
        std::cout << json{{"ports", rows}, {"counters", counters}}.dump(4) << '\n';
        return;
    }
    table.print(std::cout);
    std::cout << '\n';
    Table totals({"NAT COUNTER", "PACKETS", "BYTES"});
    for (const auto& c : counters)
        totals.add({str(c["counter"]), str(c["packets"]), str(c["bytes"])});
    totals.print(std::cout);
}

// ---- stats ----------------------------------------------------------------------------------

struct StatsArgs {
    std::string format = "text";
    bool watch = false;
    double interval = 1.0;
    int count = 0;  // refreshes before --watch ends (0: until Ctrl-C)
};

void print_stats_once(Context& ctx, const inspect::PinnedDatapath& dp, const StatsArgs& a) {
    json stats = {{"endpoints", endpoint_rows(dp, agent_names(ctx), "")},
                  {"drops", counter_rows(dp, "bpfnet_drops", "reason")},
                  {"nat", counter_rows(dp, "bpfnet_nat_cnt", "counter")}};
    if (a.format == "json") {
        std::cout << stats.dump(a.watch ? -1 : 4) << std::endl;  // one object per refresh
        return;
    }
    print_endpoints(stats["endpoints"]);
    std::cout << '\n';
    Table drops({"DROP REASON", "PACKETS", "BYTES"});
    for (const auto& d : stats["drops"])
        drops.add({str(d["reason"]), str(d["packets"]), str(d["bytes"])});
    drops.print(std::cout);
    std::cout << '\n';
    Table nat({"NAT COUNTER", "PACKETS", "BYTES"});
    for (const auto& c : stats["nat"])
        nat.add({str(c["counter"]), str(c["packets"]), str(c["bytes"])});
    nat.print(std::cout);
    std::cout.flush();
}

void run_stats(Context& ctx, const StatsArgs& a) {
    auto dp = open_datapath(ctx);
    if (!dp) return;
    if (!a.watch) return print_stats_once(ctx, *dp, a);
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    for (int n = 0; !g_interrupted && (a.count == 0 || n < a.count); ++n) {
        if (n > 0) std::this_thread::sleep_for(std::chrono::duration<double>(a.interval));
        if (a.format == "text") {
            const std::time_t now = std::time(nullptr);
            char when[64];
            std::strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", std::localtime(&now));
            // Like watch(1): clear, a header line, the table.
            std::cout << "\033[H\033[2J"
                      << fmt::format("Every {:.1f}s: bpfnet stats    {}\n\n", a.interval, when);
        }
        print_stats_once(ctx, *dp, a);
    }
}

}  // namespace

void add_inspect_commands(CLI::App& app, Context& ctx) {
    auto* prog = app.add_subcommand("prog", "Show bpfnet's BPF programs and where they run");
    prog->require_subcommand(1);
    auto prog_args = std::make_shared<ProgArgs>();
    auto* prog_list = prog->add_subcommand("list", "List attached programs with their statistics");
    add_format_option(prog_list, prog_args->format);
    prog_list->add_option("--sample", prog_args->sample,
                          "Turn BPF run-time statistics on for SECONDS and show that window");
    prog_list->callback([&ctx, prog_args] { run_prog_list(ctx, *prog_args); });

    auto* map = app.add_subcommand("map", "Show bpfnet's BPF maps, decoded");
    map->require_subcommand(1);
    auto map_format = std::make_shared<std::string>("text");
    auto* map_list = map->add_subcommand("list", "List maps with type and fill level");
    add_format_option(map_list, *map_format);
    map_list->callback([&ctx, map_format] { run_map_list(ctx, *map_format); });
    auto map_name = std::make_shared<std::string>();
    auto map_json = std::make_shared<bool>(false);
    auto* map_dump = map->add_subcommand("dump", "Print every entry of a map, decoded");
    map_dump->add_option("NAME", *map_name, "Map name (see `bpfnet map list`)")->required();
    map_dump->add_flag("--json", *map_json, "JSON output (same as --format json)");
    add_format_option(map_dump, *map_format);
    map_dump->callback([&ctx, map_name, map_json, map_format] {
        run_map_dump(ctx, *map_name, *map_json ? "json" : *map_format);
    });

    auto* endpoint = app.add_subcommand("endpoint", "Show endpoints as the datapath sees them");
    endpoint->require_subcommand(1);
    auto ep_network = std::make_shared<std::string>();
    auto ep_format = std::make_shared<std::string>("text");
    auto* ep_list = endpoint->add_subcommand("list", "List endpoints with their counters");
    ep_list->add_option("--network", *ep_network, "Only this network (name or bridge device)");
    add_format_option(ep_list, *ep_format);
    ep_list->callback(
        [&ctx, ep_network, ep_format] { run_endpoint_list(ctx, *ep_network, *ep_format); });

    auto* ct = app.add_subcommand(
        "ct", "Show or flush the connection tracking of published ports and egress flows");
    ct->require_subcommand(1);
    auto ct_args = std::make_shared<CtArgs>();
    auto* ct_list = ct->add_subcommand("list", "List conntrack entries");
    ct_list->add_option("--src", ct_args->src, "Only entries from this source address");
    ct_list->add_option("--dst", ct_args->dst, "Only entries to this destination address");
    ct_list->add_option("--proto", ct_args->proto, "Only this protocol (tcp, udp, sctp, icmp)");
    ct_list
        ->add_option("--kind", ct_args->kind,
                     "Only flows to published ports (published) or started by containers "
                     "(egress)")
        ->check(CLI::IsMember({"published", "egress"}));
    add_format_option(ct_list, ct_args->format);
    ct_list->callback([&ctx, ct_args] { run_ct_list(ctx, *ct_args); });
    auto* ct_flush = ct->add_subcommand("flush", "Delete every conntrack entry");
    ct_flush->callback([&ctx] { run_ct_flush(ctx); });

    auto* nat = app.add_subcommand("nat", "Show the published-port NAT of the datapath");
    nat->require_subcommand(1);
    auto nat_format = std::make_shared<std::string>("text");
    auto* nat_list = nat->add_subcommand("list", "List published ports and NAT counters");
    add_format_option(nat_list, *nat_format);
    nat_list->callback([&ctx, nat_format] { run_nat_list(ctx, *nat_format); });

    auto stats_args = std::make_shared<StatsArgs>();
    auto* stats =
        app.add_subcommand("stats", "Packet and byte counters per endpoint and drop reason");
    add_format_option(stats, stats_args->format);
    stats->add_flag("--watch", stats_args->watch, "Refresh until Ctrl-C, like watch(1)");
    stats->add_option("--interval", stats_args->interval, "Seconds between refreshes")
        ->check(CLI::PositiveNumber);
    stats->add_option("--count", stats_args->count, "Stop --watch after this many refreshes");
    stats->callback([&ctx, stats_args] { run_stats(ctx, *stats_args); });
}

}  // namespace bpfnet::cli

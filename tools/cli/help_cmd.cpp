// `bpfnet help COMMAND...`: a manual page for a command, like `man`: NAME, SYNOPSIS, DESCRIPTION,
// OPTIONS (from the command's own definition, so they never drift), OUTPUT (the JSON fields of
// --format json) and EXAMPLES where written below.
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"

namespace bpfnet::cli {

namespace {

struct ManPage {
    const char* description;
    const char* output;  // the fields of --format json
    const char* examples;
};

const std::map<std::string, ManPage>& pages() {
    static const std::map<std::string, ManPage> p = {
        {"prog list",
         {"Lists every bpfnet BPF program attached on this host: the interface and hook it runs "
          "at (tc ingress through tcx or clsact, XDP in native or generic mode, cgroup socket "
          "hooks), the role it plays (endpoint, uplink, overlay, host sockets) and the network it "
          "serves, with the program's id, tag, translated instruction count, the instructions the "
          "verifier processed, and run statistics. "
          "The kernel counts runs only while BPF statistics are enabled: --sample SECONDS enables "
          "them for that long and shows what ran in that window. Reads the links pinned under "
          "<bpffs>/bpfnet/*-links (or the clsact filters bpfnet installs), so it works while "
          "bpfnetd is stopped.",
          "interface, ifindex, hook, mechanism, role, network, pin, link_id, prog_id, name, tag, "
          "run_count, run_time_ns, avg_ns, instructions, verified_instructions",
          "bpfnet prog list\nbpfnet prog list --sample 5 --format json"}},
        {"map list",
         {"Lists bpfnet's pinned BPF maps with their type, fill level (entries of max), key and "
          "value sizes, and what each holds.",
          "name, type, id, entries, max_entries, key_size, value_size, description",
          "bpfnet map list"}},
        {"map dump",
         {"Prints every entry of one map decoded into words: addresses, MACs, ports, protocols, "
          "flags and drop reasons by name (include/bpfnet/abi.h is the layout). Per-CPU counters "
          "are summed over CPUs. The ring buffer bpfnet_events is read with `bpfnet monitor`.",
          "an array of {key, value}; the fields of each map's key and value are the names of the "
          "text output",
          "bpfnet map dump bpfnet_ep_by_ip\nbpfnet map dump bpfnet_ct --json"}},
        {"endpoint list",
         {"Lists the endpoints the BPF datapath serves (one per container interface): host-side "
          "interface, address, MAC, network, sandbox (when the agent answers), datapath and the "
          "packet and byte counters of the endpoint program (sent: seen leaving the container; "
          "received: delivered by another endpoint through bpf_redirect_peer). While the agent "
          "answers, endpoints on the kernel fallback are listed too, with the counters of their "
          "host-side veth; with the agent stopped only the datapath's own endpoints are known.",
          "interface, ifindex, ip, mac, network, bridge, sandbox, datapath, from_packets, "
          "from_bytes, to_packets, to_bytes",
          "bpfnet endpoint list --network web"}},
        {"ct list",
         {"Lists the connection tracking entries of the flows BPF translates, two per flow. "
          "Flows to published ports (kind `published`): `in` keyed as the client reached the "
          "host's port, `reply` keyed as the container answers. Egress flows a container started "
          "towards the outside (kind `egress`): `reply` keyed as the container sends, with the "
          "uplink address and port it is source-NATed to (its own address when the network does "
          "not masquerade), `in` keyed as the answers arrive on the uplink. Each entry shows the "
          "NAT it applies, the time left before it expires, counters and flags (syn, replied, "
          "fin-in, fin-out, rst, xdp, egress, neigh: sent through the kernel's neighbour "
          "resolution to `nexthop`).",
          "kind, src, sport, dst, dport, proto, dir, expires_in_s, packets, bytes, nat_ip, "
          "nat_port, flags, ifindex, interface, network, bridge, smac, dmac, nexthop",
          "bpfnet ct list --kind egress --proto tcp"}},
        {"ct flush",
         {"Deletes every conntrack entry. Running TCP flows through published ports, and "
          "containers' running TCP connections to the outside, lose their translation until their "
          "next connection; new connections are not affected.",
          "", "bpfnet ct flush"}},
        {"nat list",
         {"Lists the published ports the datapath translates (host address and port to container "
          "address and port) and the NAT counters: new flows, translated packets and replies, "
          "ICMP errors translated, and what was left to the kernel's NAT and why; for egress: "
          "flows source-NATed (snat-new, snat) or routed untranslated (egress-new, "
          "egress-routed), answers taken back (egress-reply), no free port (snat-exhausted) and "
          "egress left to the host's stack (egress-stack); for overlays: frames encapsulated "
          "(vx-encap) and decapsulated (vx-decap, of which in XDP: vx-decap-xdp) in BPF, and those "
          "left to the VXLAN device "
          "(vx-encap-device, vx-decap-device); fragments containers sent on known flows, "
          "translated in BPF (frag-out); packets to a published port that answer a connection the "
          "host's own conntrack holds (the host's, or one it masqueraded), left to it "
          "(pass-host-flow).",
          "ports: [proto, host_ip, host_port, ip, port, network, sandbox]; counters: [counter, "
          "packets, bytes]",
          "bpfnet nat list"}},
        {"stats",
         {"Packet and byte counters per endpoint, per drop reason and per NAT counter. --watch "
          "redraws them every --interval seconds until Ctrl-C (with --format json: one object per "
          "line and refresh).",
          "endpoints: [as endpoint list]; drops: [reason, packets, bytes]; nat: [counter, packets, "
          "bytes]",
          "bpfnet stats --watch --interval 2"}},
        {"monitor",
         {"Prints datapath events as they happen, one line each: time, endpoint (the device the "
          "program ran on), direction (from-endpoint: sent by a container; from-outside: arriving "
          "on an uplink or the overlay device), "
          "protocol and addresses, verdict, and for drops the reason in words. Drops are always "
          "reported; traces (every packet an endpoint sends, with the program's verdict: "
          "redirected, to-stack) are switched on only while a monitor asks for them (--type trace "
          "or all), since they cost a ring buffer write per packet. Drops of bpfnet's nftables "
          "firewall (other-bridge, unpublished) come from NFLOG group 2470 and name \"nftables\" "
          "as "
          "endpoint, direction \"forwarded\", and the network's bridge and the input and output "
          "devices (the extra fields bridge, in, out); where no BPF datapath is loaded, only those "
          "are shown. Only "
          "events from the monitor's start on are shown. The ring buffer has one reader position "
          "and an NFLOG group one socket: run one monitor at a time.",
          "time, type, endpoint, ifindex, direction, proto, src, sport, dst, dport, smac, dmac, "
          "len, verdict, reason, reason_text",
          "bpfnet monitor --type drop\nbpfnet monitor --endpoint 10.1.0.2 --format json"}},
    };
    return p;
}

std::string wrap(const std::string& text, size_t width, const std::string& indent) {
    std::istringstream words(text);
    std::string word, line, out;
    while (words >> word) {
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            out += indent + line + '\n';
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) out += indent + line + '\n';
    return out;
}

void run_help(Context& ctx, CLI::App& app, const std::vector<std::string>& words) {
    CLI::App* cmd = &app;
    std::string path;
    for (const auto& w : words) {
        CLI::App* sub = nullptr;
        try {
            sub = cmd->get_subcommand(w);
        } catch (const CLI::OptionNotFound&) {
        }
        if (!sub)
            return report_error(ctx, fmt::format("bpfnet help: no command \"{}{}\"",
                                                 path.empty() ? "" : path + " ", w));
        cmd = sub;
        path += (path.empty() ? "" : " ") + w;
    }
    if (cmd == &app) {
        std::cout << app.help();
        return;
    }
    std::cout << "NAME\n    bpfnet " << path << " - " << cmd->get_description() << "\n\n";
    std::cout << "SYNOPSIS\n    bpfnet " << path;
    auto skip = [](const CLI::Option* o) {
        return o->get_name() == "--help" || o->get_name() == "--help-all";
    };
    for (const CLI::Option* o : cmd->get_options()) {
        if (skip(o)) continue;
        const std::string name = o->get_name(false, true);
        std::cout << (o->get_required() ? " " : " [")
                  << (o->get_positional() ? o->get_name() : name)
                  << (o->get_type_size() != 0 && !o->get_positional() ? " " + o->get_type_name()
                                                                      : "")
                  << (o->get_required() ? "" : "]");
    }
    auto subs = cmd->get_subcommands([](CLI::App*) { return true; });
    if (!subs.empty()) std::cout << " COMMAND";
    std::cout << "\n\n";
    const auto page = pages().find(path);
    std::cout << "DESCRIPTION\n"
              << wrap(page != pages().end() ? page->second.description : cmd->get_description(), 92,
                      "    ");
    if (!subs.empty()) {
        std::cout << "\nCOMMANDS\n";
        for (const auto* s : subs)
            std::cout << fmt::format("    {:<12} {}\n", s->get_name(), s->get_description());
    }
    bool header = false;
    for (const CLI::Option* o : cmd->get_options()) {
        if (skip(o)) continue;
        if (!header) std::cout << "\nOPTIONS\n";
        header = true;
        std::cout << "    " << o->get_name(false, true) << '\n'
                  << wrap(o->get_description() + (o->get_default_str().empty()
                                                      ? ""
                                                      : " (default: " + o->get_default_str() + ")"),
                          88, "        ");
    }
    if (!header) std::cout << "\nOPTIONS\n    none but the global ones\n";
    std::cout << "\nGLOBAL OPTIONS\n    --run-dir DIR, --bpffs-root DIR (see `bpfnet --help`)\n";
    if (page != pages().end() && *page->second.output) {
        std::cout << "\nOUTPUT (--format json)\n" << wrap(page->second.output, 92, "    ");
    }
    if (page != pages().end() && *page->second.examples) {
        std::cout << "\nEXAMPLES\n";
        std::istringstream lines(page->second.examples);
        for (std::string line; std::getline(lines, line);) std::cout << "    " << line << '\n';
    }
}

}  // namespace

void add_help_command(CLI::App& app, Context& ctx) {
    auto words = std::make_shared<std::vector<std::string>>();
    auto* help =
        app.add_subcommand("help", "Show the manual page of a command: bpfnet help ct list");
    help->add_option("COMMAND", *words, "The command, e.g. `monitor` or `map dump`");
    help->callback([&ctx, &app, words] { run_help(ctx, app, *words); });
}

}  // namespace bpfnet::cli

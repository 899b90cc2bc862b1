// bpfnetd: the bpfnet agent. Runs in the foreground (systemd's job is to supervise it); SIGTERM or
// SIGINT stop the API and exit, leaving every network, sandbox and datapath object in place so
// containers keep their connectivity while the agent is down or being upgraded.
#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <bpfnet/version.h>

#include "agent/capabilities.h"
#include "agent/daemon.h"
#include "client/socket_path.h"
#include "core/ports.h"
#include "kernel/netns.h"

namespace {

// Logs what the drop kept (info) and why (debug); false if it failed.
bool log_capability_drop(const bpfnet::Result<bpfnet::CapabilityDrop>& drop) {
    if (!drop) {
        spdlog::error("{}", drop.error().message);
        return false;
    }
    const bpfnet::CapabilityPlan& plan = drop->plan;
    const auto names = bpfnet::describe_capabilities;
    spdlog::info(
        "capabilities: keeping {}; every other one is dropped from the effective, permitted, "
        "inheritable and ambient sets{}; no_new_privs set",
        names(plan.keep), drop->bounding_narrowed ? " and the bounding set" : "");
    for (const auto& needed : bpfnet::agent_capabilities())
        if (plan.keep & (uint64_t{1} << needed.number))
            spdlog::debug("capabilities: {}: {}", needed.name, needed.reason);
    if (plan.not_held != 0)
        spdlog::info("capabilities: not held, so running without {} (features needing them fail)",
                     names(plan.not_held));
    // Only worth a warning when the agent holds capabilities at all: an unprivileged agent has no
    // CAP_SETPCAP and nothing to protect in its bounding set.
    if (!drop->bounding_narrowed && plan.keep != 0)
        spdlog::warn("capabilities: the bounding set keeps {} (removing them needs CAP_SETPCAP)",
                     names(plan.bounding_extra));
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bpfnetd: the bpfnet container network agent", "bpfnetd"};
    bpfnet::DaemonConfig config;
    auto& sc = config.service;
    sc.state_dir = "/var/lib/bpfnet";
    sc.run_dir = bpfnet::kDefaultRunDir;
    sc.bpffs_root = "/sys/fs/bpf";
    sc.netns_dir = bpfnet::kernel::kDefaultNetnsDir;
    std::string log_level = "info";
    app.add_option("--state-dir", sc.state_dir, "Where the state store lives")
        ->capture_default_str();
    app.add_option("--run-dir", sc.run_dir, "Where the API socket is created")
        ->envname("BPFNET_RUN_DIR")
        ->capture_default_str();
    app.add_option("--bpffs-root", sc.bpffs_root,
                   "bpffs mount under which maps and links are pinned")
        ->capture_default_str();
    app.add_option("--store", sc.store_kind, "State store")
        ->check(CLI::IsMember({"sqlite", "etcd"}))
        ->capture_default_str();
    app.add_option("--netns-dir", sc.netns_dir, "Directory of named network namespaces (sandboxes)")
        ->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.add_option("--plugin-socket", config.plugin_socket,
                   "Serve Docker's NetworkDriver+IpamDriver plugin protocol on this socket; its "
                   "file name is the driver name (`docker network create -d bpfnet`). Empty: off")
        ->envname("BPFNET_PLUGIN_SOCKET")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    app.add_option("--socket-group", config.socket_group,
                   "Group owning the API sockets (mode 0660); its members may use bpfnetd "
                   "besides root. Default: root only")
        ->envname("BPFNET_SOCKET_GROUP");
    app.add_option("--metrics-listen", config.metrics_listen,
                   "Serve Prometheus metrics at /metrics on ADDRESS:PORT or unix:PATH (off unless "
                   "given)")
        ->envname("BPFNET_METRICS_LISTEN");
    app.add_option("--docker-host", config.docker_host,
                   "Docker engine API socket, asked for the names of networks Docker creates")
        ->envname("BPFNET_DOCKER_HOST")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    app.add_option("--default-bridge", sc.default_bridge,
                   "Linux bridge of the predefined \"bridge\" network (\"none\": no default "
                   "bridge network, like dockerd --bridge=none)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    app.add_option("--default-bridge-subnet", sc.default_bridge_subnet,
                   "Subnet of the predefined \"bridge\" network (default: from the default pools)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--etcd-endpoints", config.etcd_endpoints,
                   "etcd client URLs of the cluster store (with --store etcd)")
        ->delimiter(',');
    app.add_option("--vtep-ip", config.vtep_ip,
                   "This host's address on the underlay: the VXLAN tunnel endpoint (with --store "
                   "etcd)");
    app.add_option("--vxlan-port", config.vxlan_port, "UDP port of VXLAN between hosts")
        ->capture_default_str();
    std::vector<std::string> uplinks{"auto"};
    app.add_option("--uplink", uplinks,
                   "Devices whose ingress runs the uplink program, which takes connections from "
                   "outside to published ports straight to the endpoint (comma-separated or "
                   "repeated); \"auto\": the default route's device; \"none\": only the "
                   "kernel NAT")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--uplink-xdp", config.bpf.uplink_xdp,
                   "XDP on uplinks next to the TC program: auto (where the driver runs XDP "
                   "natively, veth excepted), always (wherever it runs natively), never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    app.add_option("--ct-max", config.bpf.ct_max_entries,
                   "Conntrack entries for published-port flows from outside (two per flow; the "
                   "least recently used flow is evicted when full)")
        ->check(CLI::Range(2u, 1u << 26))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    std::string snat_ports =
        fmt::format("{}-{}", bpfnet::kDefaultSnatPorts.first, bpfnet::kDefaultSnatPorts.last);
    app.add_option("--snat-ports", snat_ports,
                   "Ports (and ICMP echo identifiers) containers' egress is source-NATed to in "
                   "BPF where a container's own port cannot be kept, FIRST-LAST; keep it clear of "
                   "net.ipv4.ip_local_port_range")
        ->check([](const std::string& value) {
            auto range = bpfnet::parse_snat_port_range(value);
            return range ? std::string() : range.error().message;
        })
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->capture_default_str();
    std::vector<std::string> probe_disabled;
    app.add_option("--probe-disable", probe_disabled,
                   "Treat a datapath probe check as failed (repeatable), to exercise the fallback")
        ->check(CLI::IsMember(bpfnet::probe_check_names()));
    bool keep_capabilities = false;
    app.add_flag("--keep-capabilities", keep_capabilities,
                 fmt::format("Debugging: keep every capability bpfnetd was started with and leave "
                             "no_new_privs unset (by default it keeps only {} and drops the rest "
                             "from every set, the bounding set included)",
                             bpfnet::describe_capabilities(bpfnet::agent_capability_mask())));
    app.set_version_flag("--version", std::string("bpfnetd ") + BPFNET_VERSION);
    CLI11_PARSE(app, argc, argv);

    config.probe_disabled.insert(probe_disabled.begin(), probe_disabled.end());
    config.bpf.snat_ports = *bpfnet::parse_snat_port_range(snat_ports);
    config.bpf.uplinks.clear();
    for (const auto& u : uplinks)
        if (u != "none" && !u.empty()) config.bpf.uplinks.push_back(u);
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    // Before anything is served, and while this is the only thread: capabilities are per thread,
    // and every thread started later inherits the reduced sets.
    if (keep_capabilities) {
        auto held = bpfnet::read_process_capabilities();
        spdlog::warn("--keep-capabilities: keeping every capability this process holds ({})",
                     held ? bpfnet::describe_capabilities(held->effective) : held.error().message);
    } else if (!log_capability_drop(bpfnet::drop_unneeded_capabilities())) {
        return 1;
    }

    // Block the stop signals before any thread starts so only sigwait() below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto daemon = bpfnet::Daemon::start(config);
    if (!daemon) {
        spdlog::error("{}", daemon.error().message);
        return 1;
    }
    spdlog::info("bpfnetd {} ready", BPFNET_VERSION);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("received {}, stopping (networks stay up)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    daemon->reset();
    return 0;
}

#include "agent/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "client/socket_path.h"
#include "core/ids.h"
#include "datapath/datapath_graph.h"
#include "datapath/probe.h"
#include "store/store.h"

namespace bpfnet {

namespace {

Result<Fd> lock_state_dir(const std::string& state_dir) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec)
        return fail(ErrorKind::Internal,
                    fmt::format("cannot create state dir {}: {}", state_dir, ec.message()));
    auto path = (std::filesystem::path(state_dir) / "lock").string();
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0)
        return fail(ErrorKind::Internal, fmt::format("open {}: {}", path, std::strerror(errno)));
    // The kernel drops the lock when the process dies however it dies, so a SIGKILLed agent never
    // blocks its successor.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        return fail(ErrorKind::Conflict,
                    fmt::format("another bpfnetd is already running with state dir {}", state_dir));
    }
    return fd;
}

// A short random id naming this agent's kernel objects; created once and kept in the store.
Result<std::string> instance_id(Store& store) {
    BPFNET_ASSIGN_OR_RETURN(auto existing, store.get_meta("instance"));
    if (existing) return *existing;
    std::string id = generate_id().substr(0, 8);
    BPFNET_TRY(store.put_meta("instance", id));
    return id;
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config) {
    const ServiceConfig& sc = config.service;
    // The local state is always in SQLite; --store etcd adds the cluster store, where what
    // overlay networks share across hosts lives.
    std::unique_ptr<EtcdClient> etcd;
    Ipv4 vtep;
    if (sc.store_kind == "etcd") {
        if (config.etcd_endpoints.empty() || config.vtep_ip.empty())
            return fail(ErrorKind::InvalidArgument,
                        "--store etcd needs --etcd-endpoints URL[,URL] and --vtep-ip ADDRESS (this "
                        "host's address on the underlay)");
        BPFNET_ASSIGN_OR_RETURN(vtep, Ipv4::parse(config.vtep_ip));
        BPFNET_ASSIGN_OR_RETURN(etcd, EtcdClient::connect(config.etcd_endpoints));
    } else if (sc.store_kind != "sqlite") {
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("unknown store \"{}\": sqlite or etcd", sc.store_kind));
    }
    // Checked before anything is touched: a typo in the group must not leave a half-started agent.
    BPFNET_ASSIGN_OR_RETURN(ApiAccess access, ApiAccess::for_group(config.socket_group));
    std::unique_ptr<Daemon> daemon(new Daemon());
    daemon->access_ = access;
    BPFNET_ASSIGN_OR_RETURN(daemon->state_lock_, lock_state_dir(sc.state_dir));

    auto db_path = (std::filesystem::path(sc.state_dir) / "bpfnet.db").string();
    BPFNET_ASSIGN_OR_RETURN(auto store, open_sqlite_store(db_path));
    BPFNET_ASSIGN_OR_RETURN(std::string instance, instance_id(*store));
    spdlog::info("bpfnetd instance {}: state {}, run dir {}, bpffs {}", instance, sc.state_dir,
                 sc.run_dir, sc.bpffs_root);

    ProbeResult probe = probe_datapath(sc.bpffs_root, config.probe_disabled);
    for (const auto& reason : probe.reasons) spdlog::warn("datapath probe: {}", reason);

    // The kernel datapath serves networks directly when BPF cannot be used, and is the foundation
    // the BPF datapath builds on (bridge, veths, firewall) when it can.
    auto datapaths = DatapathGraph::build(
        instance, sc.bpffs_root, probe.tcx_link_api, config.bpf,
        probe.bpf_usable() ? std::string{} : fmt::format("{}", fmt::join(probe.reasons, "; ")));
    if (datapaths->has_bpf()) {
        spdlog::info(
            "datapath: BPF usable (kernel {}), bridge networks default to the BPF datapath",
            probe.kernel_release);
    } else {
        spdlog::warn("datapath: BPF unavailable, every network uses the kernel datapath: {}",
                     datapaths->bpf_unavailable());
    }
    // Overlays run in BPF wherever bridge networks do.
    if (etcd) BPFNET_TRY(datapaths->enable_overlay(vtep, config.vxlan_port));
    daemon->service_ = std::make_unique<NetworkService>(sc, instance, std::move(store),
                                                        std::move(datapaths), probe);
    if (etcd) {
        daemon->cluster_ = std::make_unique<OverlayRegistry>(std::move(etcd), instance, vtep);
        daemon->service_->attach_cluster(daemon->cluster_.get());
    }
    // Started before the reconcile, so no change between its survey and the watch is missed.
    {
        NetworkService* service = daemon->service_.get();
        auto watch = kernel::HostWatch::start([service] { service->on_host_change(); });
        if (watch)
            daemon->host_watch_ = std::move(*watch);
        else
            spdlog::warn(
                "not following the host's interfaces ({}): uplinks and other bridges "
                "are those found at start",
                watch.error().message);
    }
    BPFNET_TRY(daemon->service_->reconcile());
    BPFNET_TRY(daemon->service_->ensure_predefined_networks());
    if (daemon->cluster_) {
        NetworkService* service = daemon->service_.get();
        BPFNET_TRY(daemon->cluster_->start([service] { service->on_cluster_change(); }));
        BPFNET_TRY(service->republish_overlay_endpoints());
    }

    daemon->api_ = std::make_unique<NativeApi>(*daemon->service_);
    NativeApi* api = daemon->api_.get();
    BPFNET_ASSIGN_OR_RETURN(
        daemon->server_,
        UnixHttpServer::listen(
            native_socket_path(sc.run_dir), config.socket_mode,
            daemon->access_.guard(timed([api](const HttpRequest& r) { return api->handle(r); },
                                        "native", daemon->latency_))));
    BPFNET_TRY(daemon->own_socket(daemon->server_->path()));
    daemon->server_->start();
    spdlog::info("native API listening on {}", daemon->server_->path());
    BPFNET_TRY(daemon->serve_docker_plugin(config));
    if (!config.metrics_listen.empty()) {
        NetworkService* service = daemon->service_.get();
        const RequestLatency* latency = &daemon->latency_;
        BPFNET_ASSIGN_OR_RETURN(
            daemon->metrics_server_,
            MetricsServer::listen(config.metrics_listen, config.socket_mode, [service, latency] {
                return metrics_exposition(*service, *latency);
            }));
        if (config.metrics_listen.rfind("unix:", 0) == 0)
            BPFNET_TRY(daemon->own_socket(config.metrics_listen.substr(5)));
        spdlog::info("Prometheus metrics at {}/metrics", config.metrics_listen);
    }
    return daemon;
}

Status Daemon::serve_docker_plugin(const DaemonConfig& config) {
    if (config.plugin_socket.empty()) return {};
    names_ = std::make_unique<DockerNameResolver>(*service_, config.docker_host);
    // Networks Docker created while this agent could not ask for their names (it crashed or the
    // engine was down) still carry the placeholder: ask again.
    BPFNET_ASSIGN_OR_RETURN(auto networks, service_->list_networks());
    for (const auto& n : networks)
        if (n.owner == Owner::Docker && n.name == placeholder_network_name(n.id))
            names_->resolve(n.id);

    std::error_code ec;
    auto dir = std::filesystem::path(config.plugin_socket).parent_path();
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        return fail(ErrorKind::Internal, fmt::format("cannot create the plugin directory {}: {}",
                                                     dir.string(), ec.message()));
    }
    DockerNameResolver* names = names_.get();
    plugin_api_ = std::make_unique<DockerPluginApi>(
        *service_, [names](const std::string& id) { names->resolve(id); });
    DockerPluginApi* api = plugin_api_.get();
    BPFNET_ASSIGN_OR_RETURN(
        plugin_server_,
        UnixHttpServer::listen(
            config.plugin_socket, config.socket_mode,
            access_.guard(timed([api](const HttpRequest& r) { return api->handle(r); }, "docker",
                                latency_))));
    BPFNET_TRY(own_socket(plugin_server_->path()));
    plugin_server_->start();
    spdlog::info("Docker plugin API listening on {} (driver name \"{}\")", plugin_server_->path(),
                 std::filesystem::path(config.plugin_socket).stem().string());
    return {};
}

Status Daemon::own_socket(const std::string& path) const {
    if (::chown(path.c_str(), 0, access_.gid()) != 0)
        return fail(
            ErrorKind::Internal,
            fmt::format("chown root:{} {}: {}", access_.group().empty() ? "root" : access_.group(),
                        path, std::strerror(errno)));
    return {};
}

std::string Daemon::api_socket() const {
    return server_ ? server_->path() : std::string{};
}

Daemon::~Daemon() {
    metrics_server_.reset();
    if (plugin_server_) plugin_server_->stop();
    if (server_) server_->stop();
}

}  // namespace bpfnet

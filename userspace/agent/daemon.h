// Wires the agent together: state lock, store, probe, datapath, service, reconcile, API server.
#pragma once

#include <memory>
#include <string>

#include "agent/api_access.h"
#include "agent/docker_names.h"
#include "agent/docker_plugin.h"
#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/metrics_server.h"
#include "agent/native_api.h"
#include "agent/service.h"
#include "cluster/overlay_registry.h"
#include "core/fd.h"
#include "datapath/bpf_datapath.h"
#include "datapath/kernel_datapath.h"
#include "datapath/probe.h"
#include "kernel/host_watch.h"

namespace bpfnet {

struct DaemonConfig {
    ServiceConfig service;
    unsigned socket_mode = 0660;
    // Group owning the API sockets, whose members may use them besides root ("": root only).
    std::string socket_group;
    ProbeOverrides probe_disabled;  // probe checks forced to fail (tests, operators)
    BpfDatapathOptions bpf;         // uplinks, conntrack size
    // --store etcd: the cluster store for overlay networks, and this host's tunnel endpoint.
    std::vector<std::string> etcd_endpoints;
    std::string vtep_ip;
    uint16_t vxlan_port = 4789;
    // Docker's plugin protocol is served here (empty: not at all). The file name without ".sock" is
    // the driver name Docker users give to `docker network create -d`.
    std::string plugin_socket = "/run/docker/plugins/bpfnet.sock";
    // The Docker engine's API, asked only for the names of networks Docker creates through bpfnet.
    std::string docker_host = "unix:///var/run/docker.sock";
    // Prometheus metrics: "ADDRESS:PORT" or "unix:PATH" (empty: off).
    std::string metrics_listen;
};

class Daemon {
  public:
    // Takes the state directory's lock (one agent per state dir), opens the store, probes the
    // datapath, reconciles and starts serving. Returns once the API socket accepts connections.
    static Result<std::unique_ptr<Daemon>> start(const DaemonConfig& config);
    ~Daemon();

    std::string api_socket() const;

  private:
    Daemon() = default;
    Status serve_docker_plugin(const DaemonConfig& config);
    // The socket file at `path` owned by root:<socket group>.
    Status own_socket(const std::string& path) const;
    ApiAccess access_;
    Fd state_lock_{-1};  // flock on <state dir>/lock, held for the agent's life
    std::unique_ptr<NetworkService> service_;
    RequestLatency latency_;  // outlives every server that records into it
    // Its watch thread calls the service: declared after it, so it stops first.
    std::unique_ptr<OverlayRegistry> cluster_;
    std::unique_ptr<DockerNameResolver> names_;  // uses the service: declared after it
    std::unique_ptr<NativeApi> api_;
    std::unique_ptr<UnixHttpServer> server_;
    std::unique_ptr<DockerPluginApi> plugin_api_;
    std::unique_ptr<UnixHttpServer> plugin_server_;
    // Calls the service: declared after it, so it stops first.
    std::unique_ptr<kernel::HostWatch> host_watch_;
    // Reads the service and latency_: declared last, so it stops first.
    std::unique_ptr<MetricsServer> metrics_server_;
};

}  // namespace bpfnet

// Wires the agent together: state lock, store, probe, datapath, service, reconcile, API server.
#pragma once

#include <memory>
#include <string>

#include "agent/http.h"
#include "agent/native_api.h"
#include "agent/service.h"
#include "datapath/kernel_datapath.h"
#include "datapath/probe.h"

namespace bpfnet {

struct DaemonConfig {
    ServiceConfig service;
    unsigned socket_mode = 0660;
    ProbeOverrides probe_disabled;  // probe checks forced to fail (tests, operators)
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
    int lock_fd_ = -1;
    std::unique_ptr<KernelDatapath> kernel_;  // outlives the service's BPF datapath, which wraps it
    std::unique_ptr<NetworkService> service_;
    std::unique_ptr<NativeApi> api_;
    std::unique_ptr<UnixHttpServer> server_;
};

// Path of the native API socket under a run directory (the CLI computes it the same way).
std::string native_socket_path(const std::string& run_dir);

}  // namespace bpfnet

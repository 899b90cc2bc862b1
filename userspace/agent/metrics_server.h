// Serves GET /metrics (Prometheus text format) on a TCP address ("127.0.0.1:9495") or a unix
// socket ("unix:/run/bpfnet/metrics.sock"): bpfnetd --metrics-listen. Off unless asked for.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/http_server.h"
#include "core/result.h"

namespace bpfnet {

class MetricsServer {
  public:
    static Result<std::unique_ptr<MetricsServer>> listen(const std::string& where, unsigned mode,
                                                         std::function<std::string()> render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;
    const std::string& where() const { return where_; }

  private:
    struct Tcp;
    MetricsServer() = default;
    std::string where_;
    std::unique_ptr<UnixHttpServer> unix_;
    std::unique_ptr<Tcp> tcp_;
};

// The response to one scrape: 200 text/plain for GET /metrics, 404 elsewhere, 405 for non-GET.
HttpResponse metrics_response(const std::string& method, const std::string& target,
                              const std::function<std::string()>& render);

}  // namespace bpfnet

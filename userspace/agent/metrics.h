// Prometheus metrics of the agent (opt-in: bpfnetd --metrics-listen): the datapath's counters read
// from the pinned maps (per endpoint, per drop reason, NAT, map fill levels), the CNM state (per
// network), and the latency of every API request, in Prometheus' text exposition format.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "agent/http_server.h"
#include "agent/service.h"

namespace bpfnet {

// Request durations by API and route, as Prometheus histograms.
class RequestLatency {
  public:
    static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
    void observe(const std::string& api, const std::string& route, double seconds);
    // The histogram in text format (HELP/TYPE lines included).
    std::string exposition() const;

  private:
    struct Histogram {
        std::array<uint64_t, kBuckets.size()> le{};  // cumulative at output time
        uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, Histogram> by_route_;
};

// The route label of a request: "/v1/networks/abc/connect" -> "/v1/networks/{ref}/connect" is
// too fine for Docker's calls; the native API's first path segment and the plugin's method name
// keep the label set small and bounded.
std::string route_of(const std::string& target);

// Wraps an API handler so every request's duration lands in `latency`.
HttpHandler timed(HttpHandler handler, std::string api, RequestLatency& latency);

// Escapes a label value (backslash, double quote, newline).
std::string prometheus_label(const std::string& value);

// All metrics, now.
std::string metrics_exposition(NetworkService& service, const RequestLatency& latency);

}  // namespace bpfnet

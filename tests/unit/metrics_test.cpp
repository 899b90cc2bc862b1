// The agent's Prometheus output: label escaping, bounded route labels, histogram buckets.
#include <gtest/gtest.h>

#include "agent/metrics.h"
#include "agent/metrics_server.h"

namespace bpfnet {
namespace {

TEST(Metrics, LabelValuesAreEscaped) {
    EXPECT_EQ(prometheus_label(R"(a"b\c)"), R"(a\"b\\c)");
    EXPECT_EQ(prometheus_label("x\ny"), "x\\ny");
}

TEST(Metrics, RoutesAreBounded) {
    EXPECT_EQ(route_of("/v1/networks/abc/connect"), "/v1/networks");
    EXPECT_EQ(route_of("/v1/networks?driver=bridge"), "/v1/networks");
    EXPECT_EQ(route_of("/NetworkDriver.Join"), "/NetworkDriver.Join");
}

TEST(Metrics, LatencyHistogramIsCumulative) {
    RequestLatency latency;
    latency.observe("native", "/v1/networks", 0.002);
    latency.observe("native", "/v1/networks", 0.2);
    latency.observe("native", "/v1/networks", 30);
    const std::string text = latency.exposition();
    EXPECT_NE(text.find("# TYPE bpfnet_api_request_duration_seconds histogram"), std::string::npos);
    auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
    EXPECT_TRUE(has(
        R"(bpfnet_api_request_duration_seconds_bucket{api="native",route="/v1/networks",le="0.001"} 0)"));
    EXPECT_TRUE(has(
        R"(bpfnet_api_request_duration_seconds_bucket{api="native",route="/v1/networks",le="0.0025"} 1)"));
    EXPECT_TRUE(has(
        R"(bpfnet_api_request_duration_seconds_bucket{api="native",route="/v1/networks",le="0.25"} 2)"));
    EXPECT_TRUE(has(
        R"(bpfnet_api_request_duration_seconds_bucket{api="native",route="/v1/networks",le="5"} 2)"));
    EXPECT_TRUE(has(
        R"(bpfnet_api_request_duration_seconds_bucket{api="native",route="/v1/networks",le="+Inf"} 3)"));
    EXPECT_TRUE(
        has(R"(bpfnet_api_request_duration_seconds_count{api="native",route="/v1/networks"} 3)"));
}

TEST(Metrics, OnlyGetMetricsIsServed) {
    auto render = [] { return std::string("x 1\n"); };
    EXPECT_EQ(metrics_response("GET", "/metrics", render).status, 200);
    EXPECT_EQ(metrics_response("GET", "/metrics", render).body, "x 1\n");
    EXPECT_EQ(metrics_response("GET", "/", render).status, 404);
    EXPECT_EQ(metrics_response("POST", "/metrics", render).status, 405);
}

}  // namespace
}  // namespace bpfnet

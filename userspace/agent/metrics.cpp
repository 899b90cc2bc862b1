#include "agent/metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include "inspect/pinned.h"

namespace bpfnet {

namespace {

using inspect::json;

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// `name{k="v",...} value`
std::string sample(const char* name,
                   std::initializer_list<std::pair<const char*, std::string>> labels,
                   double value) {
    std::string l;
    for (const auto& [k, v] : labels) {
        if (!l.empty()) l += ',';
        l += fmt::format("{}=\"{}\"", k, prometheus_label(v));
    }
    return fmt::format("{}{}{}{} {}\n", name, l.empty() ? "" : "{", l, l.empty() ? "" : "}", value);
}

uint64_t u64(const json& v, const char* field) {
    return v.contains(field) ? v[field].get<uint64_t>() : 0;
}

}  // namespace

std::string prometheus_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string route_of(const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    if (path.rfind("/v1/", 0) == 0) {
        const size_t end = path.find('/', 4);
        return path.substr(0, end);  // "/v1/networks"
    }
    return path;  // the plugin protocol: "/NetworkDriver.Join", "/Plugin.Activate"
}

void RequestLatency::observe(const std::string& api, const std::string& route, double seconds) {
    std::lock_guard lock(mutex_);
    Histogram& h = by_route_[{api, route}];
    for (size_t i = 0; i < kBuckets.size(); ++i)
        if (seconds <= kBuckets[i]) ++h.le[i];
    ++h.count;
    h.sum += seconds;
}

std::string RequestLatency::exposition() const {
    std::string out;
    family(out, "bpfnet_api_request_duration_seconds", "histogram",
           "Time to serve one API request, by API (native, docker) and route.");
    std::lock_guard lock(mutex_);
    for (const auto& [key, h] : by_route_) {
        const auto& [api, route] = key;
        for (size_t i = 0; i < kBuckets.size(); ++i)
            out += sample("bpfnet_api_request_duration_seconds_bucket",
                          {{"api", api}, {"route", route}, {"le", fmt::format("{}", kBuckets[i])}},
                          static_cast<double>(h.le[i]));
        out +=
            sample("bpfnet_api_request_duration_seconds_bucket",
                   {{"api", api}, {"route", route}, {"le", "+Inf"}}, static_cast<double>(h.count));
        out += sample("bpfnet_api_request_duration_seconds_sum", {{"api", api}, {"route", route}},
                      h.sum);
        out += sample("bpfnet_api_request_duration_seconds_count", {{"api", api}, {"route", route}},
                      static_cast<double>(h.count));
    }
    return out;
}

HttpHandler timed(HttpHandler handler, std::string api, RequestLatency& latency) {
    return [handler = std::move(handler), api = std::move(api), &latency](const HttpRequest& r) {
        const auto start = std::chrono::steady_clock::now();
        HttpResponse response = handler(r);
        latency.observe(
            api, route_of(r.target),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        return response;
    };
}

std::string metrics_exposition(NetworkService& service, const RequestLatency& latency) {
    std::string out;
    auto snap = service.snapshot();
    // Names the datapath does not know: bridge -> network, host veth -> endpoint.
    std::map<std::string, const Network*> network_by_bridge;
    std::map<std::string, std::pair<const Endpoint*, std::string>> endpoint_by_if;  // + sandbox
    if (snap) {
        family(out, "bpfnet_network_endpoints", "gauge",
               "Endpoints on each network on this host, with its driver and datapath.");
        for (const auto& n : snap->networks) {
            if (!n.bridge_name.empty()) network_by_bridge[n.bridge_name] = &n;
            const auto count =
                std::count_if(snap->endpoints.begin(), snap->endpoints.end(),
                              [&](const Endpoint& e) { return e.network_id == n.id; });
            out += sample("bpfnet_network_endpoints",
                          {{"network", n.name},
                           {"driver", n.driver},
                           {"datapath", service.datapath_choice(n).name}},
                          static_cast<double>(count));
        }
        for (const auto& e : snap->endpoints) {
            std::string sandbox;
            for (const auto& s : snap->sandboxes)
                if (s.id == e.sandbox_id) sandbox = s.name;
            if (!e.host_ifname.empty()) endpoint_by_if[e.host_ifname] = {&e, sandbox};
        }
    }
    auto dp = inspect::PinnedDatapath::open(service.config().bpffs_root);
    family(out, "bpfnet_datapath_loaded", "gauge",
           "1 when the BPF datapath's maps are pinned on this host.");
    out += sample("bpfnet_datapath_loaded", {}, dp ? 1 : 0);
    if (dp) {
        const auto resolve = inspect::ifname_of;
        if (auto stats = dp->dump("bpfnet_ep_stats", resolve)) {
            family(out, "bpfnet_endpoint_packets_total", "counter",
                   "Packets per endpoint: sent by it, or received from other endpoints in BPF.");
            std::string bytes;
            family(bytes, "bpfnet_endpoint_bytes_total", "counter",
                   "Bytes per endpoint, as bpfnet_endpoint_packets_total.");
            for (const auto& e : *stats) {
                const std::string ifname = e["key"]["interface"].get<std::string>();
                auto it = endpoint_by_if.find(ifname);
                std::string network, sandbox, endpoint;
                if (it != endpoint_by_if.end()) {
                    endpoint = it->second.first->id.substr(0, 12);
                    sandbox = it->second.second;
                    for (const auto& [bridge, n] : network_by_bridge)
                        if (n->id == it->second.first->network_id) network = n->name;
                }
                for (auto [dir, field] : {std::pair{"sent", "from"}, std::pair{"received", "to"}}) {
                    auto labels = {std::pair<const char*, std::string>{"network", network},
                                   {"endpoint", endpoint},
                                   {"sandbox", sandbox},
                                   {"interface", ifname},
                                   {"direction", dir}};
                    const json& v = e["value"];
                    out += sample(
                        "bpfnet_endpoint_packets_total", labels,
                        static_cast<double>(u64(v, fmt::format("{}_packets", field).c_str())));
                    bytes +=
                        sample("bpfnet_endpoint_bytes_total", labels,
                               static_cast<double>(u64(v, fmt::format("{}_bytes", field).c_str())));
                }
            }
            out += bytes;
        }
        if (auto drops = dp->dump("bpfnet_drops", resolve)) {
            family(out, "bpfnet_drops_total", "counter",
                   "Packets the datapath dropped, by reason.");
            for (const auto& d : *drops) {
                const std::string reason = d["key"]["reason"].get<std::string>();
                if (reason == "none") continue;
                out += sample("bpfnet_drops_total", {{"reason", reason}},
                              static_cast<double>(u64(d["value"], "packets")));
            }
        }
        if (auto nat = dp->dump("bpfnet_nat_cnt", resolve)) {
            family(out, "bpfnet_nat_packets_total", "counter",
                   "Published-port NAT events in BPF, by counter.");
            for (const auto& c : *nat)
                out += sample("bpfnet_nat_packets_total",
                              {{"counter", c["key"]["counter"].get<std::string>()}},
                              static_cast<double>(u64(c["value"], "packets")));
        }
        if (auto maps = dp->maps()) {
            family(out, "bpfnet_map_entries", "gauge", "Entries in each BPF map.");
            std::string max;
            family(max, "bpfnet_map_max_entries", "gauge", "Capacity of each BPF map.");
            for (const auto& m : *maps) {
                if (m.type == "ringbuf") continue;
                out +=
                    sample("bpfnet_map_entries", {{"map", m.name}}, static_cast<double>(m.entries));
                max += sample("bpfnet_map_max_entries", {{"map", m.name}},
                              static_cast<double>(m.max_entries));
            }
            out += max;
        }
    }
    out += latency.exposition();
    return out;
}

}  // namespace bpfnet

#include "cluster/etcd_client.h"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/json_fields.h"

namespace bpfnet {

using json = nlohmann::json;

namespace {

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using HeadersPtr = std::unique_ptr<curl_slist, CurlDeleter>;

void init_curl_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t append_body(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// etcd's gateway writes int64 as strings, and omits zero values.
int64_t as_int(const json& j, const char* key) {
    if (!j.contains(key)) return 0;
    const json& v = j[key];
    if (v.is_string()) return std::stoll(v.get<std::string>());
    if (v.is_number_integer()) return v.get<int64_t>();
    return 0;
}

std::string decoded(const json& j, const char* key) {
    if (!j.contains(key)) return "";
    return base64_decode(j[key].get<std::string>()).value_or("");
}

EtcdKeyValue parse_kv(const json& kv) {
    EtcdKeyValue out;
    out.key = decoded(kv, "key");
    out.value = decoded(kv, "value");
    out.create_revision = as_int(kv, "create_revision");
    out.mod_revision = as_int(kv, "mod_revision");
    out.lease = as_int(kv, "lease");
    return out;
}

Result<json> parse_reply(const std::string& text, const std::string& what) {
    auto parsed = parse_json(text);
    if (!parsed || !parsed->is_object())
        return fail(ErrorKind::Internal, fmt::format("etcd {}: unreadable reply: {}", what, text));
    json reply = std::move(*parsed);
    if (reply.contains("error")) {
        const std::string message = reply.value("error", reply.value("message", text));
        // gRPC NotFound (5): e.g. "etcdserver: requested lease not found".
        const ErrorKind kind =
            as_int(reply, "code") == 5 ? ErrorKind::NotFound : ErrorKind::Internal;
        return fail(kind, fmt::format("etcd {}: {}", what, message));
    }
    return reply;
}

json put_request(const std::string& key, const std::string& value, int64_t lease) {
    json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) put["lease"] = std::to_string(lease);
    return put;
}

}  // namespace

std::string etcd_prefix_end(const std::string& prefix) {
    std::string end = prefix;
    for (size_t i = end.size(); i-- > 0;) {
        if (static_cast<unsigned char>(end[i]) < 0xff) {
            end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
            end.resize(i + 1);
            return end;
        }
    }
    return std::string(1, '\0');  // every key
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, int timeout_ms)
    : endpoints_(std::move(endpoints)), timeout_ms_(timeout_ms) {}
EtcdClient::~EtcdClient() = default;

Result<std::unique_ptr<EtcdClient>> EtcdClient::connect(std::vector<std::string> endpoints,
                                                        int timeout_ms) {
    if (endpoints.empty()) return fail(ErrorKind::InvalidArgument, "no etcd endpoints given");
    init_curl_once();
    std::unique_ptr<EtcdClient> client(new EtcdClient(std::move(endpoints), timeout_ms));
    BPFNET_TRY(client->get("bpfnet-connect-check"));
    return client;
}

Result<std::string> EtcdClient::call(const std::string& path, const std::string& body) {
    std::vector<std::string> failures;
    for (const auto& endpoint : endpoints_) {
        CurlPtr curl(curl_easy_init());
        if (!curl) return fail(ErrorKind::Internal, "curl_easy_init failed");
        HeadersPtr headers(curl_slist_append(nullptr, "Content-Type: application/json"));
        std::string reply;
        const std::string url = endpoint + path;
        curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
        curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
        curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
        const CURLcode rc = curl_easy_perform(curl.get());
        if (rc != CURLE_OK) {
            failures.push_back(fmt::format("{}: {}", endpoint, curl_easy_strerror(rc)));
            continue;
        }
        return reply;  // etcd answered, even if with an error: no other endpoint would differ
    }
    return fail(ErrorKind::Internal,
                fmt::format("etcd unreachable ({})", fmt::join(failures, "; ")));
}

Result<EtcdClient::Range> EtcdClient::get_prefix(const std::string& prefix) {
    json request = {{"key", base64_encode(prefix)},
                    {"range_end", base64_encode(etcd_prefix_end(prefix))}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/range", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "range " + prefix));
    Range range;
    range.revision = as_int(reply.value("header", json::object()), "revision");
    for (const auto& kv : reply.value("kvs", json::array())) range.kvs.push_back(parse_kv(kv));
    return range;
}

Result<std::optional<EtcdKeyValue>> EtcdClient::get(const std::string& key) {
    json request = {{"key", base64_encode(key)}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/range", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "get " + key));
    const json kvs = reply.value("kvs", json::array());
    if (kvs.empty()) return std::optional<EtcdKeyValue>{};
    return std::optional<EtcdKeyValue>{parse_kv(kvs[0])};
}

Result<int64_t> EtcdClient::put(const std::string& key, const std::string& value, int64_t lease) {
    BPFNET_ASSIGN_OR_RETURN(std::string text,
                            call("/v3/kv/put", put_request(key, value, lease).dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "put " + key));
    return as_int(reply.value("header", json::object()), "revision");
}

Result<bool> EtcdClient::create(const std::string& key, const std::string& value, int64_t lease) {
    json request = {
        {"compare", json::array({{{"key", base64_encode(key)},
                                  {"result", "EQUAL"},
                                  {"target", "CREATE"},
                                  {"create_revision", "0"}}})},
        {"success", json::array({{{"request_put", put_request(key, value, lease)}}})},
    };
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/txn", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "create " + key));
    return reply.value("succeeded", false);
}

Result<bool> EtcdClient::delete_if_value(const std::string& key, const std::string& expected) {
    json request = {
        {"compare", json::array({{{"key", base64_encode(key)},
                                  {"result", "EQUAL"},
                                  {"target", "VALUE"},
                                  {"value", base64_encode(expected)}}})},
        {"success", json::array({{{"request_delete_range", {{"key", base64_encode(key)}}}}})},
    };
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/txn", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "delete " + key));
    return reply.value("succeeded", false);
}

Status EtcdClient::remove(const std::string& key) {
    json request = {{"key", base64_encode(key)}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/deleterange", request.dump()));
    BPFNET_TRY(parse_reply(text, "delete " + key));
    return {};
}

Status EtcdClient::remove_prefix(const std::string& prefix) {
    json request = {{"key", base64_encode(prefix)},
                    {"range_end", base64_encode(etcd_prefix_end(prefix))}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/deleterange", request.dump()));
    BPFNET_TRY(parse_reply(text, "delete " + prefix));
    return {};
}

Status EtcdClient::compact(int64_t revision) {
    json request = {{"revision", std::to_string(revision)}, {"physical", true}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/kv/compaction", request.dump()));
    BPFNET_TRY(parse_reply(text, "compact"));
    return {};
}

Result<int64_t> EtcdClient::grant_lease(int64_t ttl_seconds) {
    json request = {{"TTL", std::to_string(ttl_seconds)}, {"ID", "0"}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/lease/grant", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "lease grant"));
    const int64_t id = as_int(reply, "ID");
    if (id == 0) return fail(ErrorKind::Internal, "etcd lease grant: no lease ID: " + text);
    return id;
}

Status EtcdClient::keep_alive(int64_t lease) {
    json request = {{"ID", std::to_string(lease)}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/lease/keepalive", request.dump()));
    BPFNET_ASSIGN_OR_RETURN(json reply, parse_reply(text, "lease keepalive"));
    // An expired lease answers with no TTL (0).
    if (as_int(reply.value("result", json::object()), "TTL") <= 0)
        return fail(ErrorKind::NotFound, fmt::format("etcd lease {:x} has expired", lease));
    return {};
}

Status EtcdClient::revoke(int64_t lease) {
    json request = {{"ID", std::to_string(lease)}};
    BPFNET_ASSIGN_OR_RETURN(std::string text, call("/v3/lease/revoke", request.dump()));
    BPFNET_TRY(parse_reply(text, "lease revoke"));
    return {};
}

namespace {

// State of one streaming watch, shared with curl's callbacks.
struct WatchStream {
    const std::function<bool(const std::vector<EtcdEvent>&)>* on_events;
    const std::atomic<bool>* stop;
    std::string pending;         // bytes of a message not yet complete
    bool created = false;        // the server confirmed the watch
    bool compacted = false;      // the start revision is gone
    bool consumer_done = false;  // on_events asked to stop
    std::string error;
};

// One JSON message per line: {"result": {...}}.
bool handle_message(WatchStream& w, const std::string& line) {
    auto parsed = parse_json(line);
    if (!parsed || !parsed->is_object()) {
        w.error = "unreadable watch message: " + line;
        return false;
    }
    json message = std::move(*parsed);
    if (message.contains("error")) {
        w.error = message["error"].dump();
        return false;
    }
    const json result = message.value("result", json::object());
    if (result.value("created", false)) w.created = true;
    if (as_int(result, "compact_revision") != 0) {
        w.compacted = true;
        return false;
    }
    if (result.value("canceled", false)) {
        w.error = "watch canceled by etcd: " + result.value("cancel_reason", std::string{});
        return false;
    }
    std::vector<EtcdEvent> events;
    for (const auto& e : result.value("events", json::array())) {
        EtcdEvent event;
        event.deleted = e.value("type", "PUT") == "DELETE";
        event.kv = parse_kv(e.value("kv", json::object()));
        events.push_back(std::move(event));
    }
    if (!events.empty() && !(*w.on_events)(events)) {
        w.consumer_done = true;
        return false;
    }
    return true;
}

size_t on_watch_bytes(char* data, size_t size, size_t n, void* opaque) {
    auto& w = *static_cast<WatchStream*>(opaque);
    w.pending.append(data, size * n);
    size_t start = 0;
    for (size_t nl; (nl = w.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string line = w.pending.substr(start, nl - start);
        if (!line.empty() && !handle_message(w, line)) return 0;  // abort the transfer
    }
    w.pending.erase(0, start);
    // The gateway may not end the last message with a newline until the next one: try it whole.
    if (!w.pending.empty() && w.pending.back() == '}') {
        if (parse_json(w.pending).ok()) {
            const std::string line = std::move(w.pending);
            w.pending.clear();
            if (!handle_message(w, line)) return 0;
        }
    }
    return size * n;
}

int on_watch_progress(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<WatchStream*>(opaque)->stop->load() ? 1 : 0;
}

}  // namespace

Status EtcdClient::watch_prefix(const std::string& prefix, int64_t from_revision,
                                const std::function<bool(const std::vector<EtcdEvent>&)>& on_events,
                                const std::atomic<bool>& stop) {
    json request = {{"create_request",
                     {{"key", base64_encode(prefix)},
                      {"range_end", base64_encode(etcd_prefix_end(prefix))},
                      {"start_revision", std::to_string(from_revision)}}}};
    const std::string body = request.dump();
    std::vector<std::string> failures;
    for (const auto& endpoint : endpoints_) {
        WatchStream w{&on_events, &stop, {}, false, false, false, {}};
        CurlPtr curl(curl_easy_init());
        if (!curl) return fail(ErrorKind::Internal, "curl_easy_init failed");
        HeadersPtr headers(curl_slist_append(nullptr, "Content-Type: application/json"));
        const std::string url = endpoint + "/v3/watch";
        curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_watch_bytes);
        curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, on_watch_progress);
        curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &w);
        curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms_));
        // A dead peer must not hang the watch forever: TCP keepalive probes notice it.
        curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPIDLE, 5L);
        curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPINTVL, 2L);
        curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
        const CURLcode rc = curl_easy_perform(curl.get());
        if (w.compacted)
            return fail(
                ErrorKind::Conflict,
                fmt::format("etcd watch of {} from revision {}: compacted", prefix, from_revision));
        if (w.consumer_done || stop.load()) return {};
        if (!w.error.empty()) return fail(ErrorKind::Internal, "etcd watch: " + w.error);
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT) {
            failures.push_back(fmt::format("{}: {}", endpoint, curl_easy_strerror(rc)));
            continue;
        }
        return fail(ErrorKind::Internal, fmt::format("etcd watch of {} ended: {}", prefix,
                                                     rc == CURLE_OK ? "the server closed the stream"
                                                                    : curl_easy_strerror(rc)));
    }
    return fail(ErrorKind::Internal,
                fmt::format("etcd watch: no endpoint answered ({})", fmt::join(failures, "; ")));
}

}  // namespace bpfnet

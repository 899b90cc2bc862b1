// A client for etcd's v3 API through its JSON gateway (POST /v3/kv/range etc.), over libcurl: keys
// and values are base64 in the JSON, 64-bit numbers are strings. What the cluster store needs and
// no more: get/put/delete, create-if-absent transactions (claims), leases with keep-alive, and
// prefix watches from a revision that report compaction, so a caller can resync and resume without
// losing an update.
//
// Every call tries the endpoints in order until one answers; a call that reaches none fails
// (ErrorKind::Internal) naming the endpoints and curl's reason.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace bpfnet {

struct EtcdKeyValue {
    std::string key;
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t lease = 0;
};

struct EtcdEvent {
    bool deleted = false;  // DELETE (else PUT)
    EtcdKeyValue kv;       // for DELETE only the key and mod_revision are set
};

class EtcdClient {
  public:
    // `endpoints`: "http://10.0.0.1:2379", ...; checks that one answers.
    static Result<std::unique_ptr<EtcdClient>> connect(std::vector<std::string> endpoints,
                                                       int timeout_ms = 3000);
    ~EtcdClient();

    // Everything under `prefix` and the store's revision at that moment.
    struct Range {
        std::vector<EtcdKeyValue> kvs;
        int64_t revision = 0;
    };
    Result<Range> get_prefix(const std::string& prefix);
    Result<std::optional<EtcdKeyValue>> get(const std::string& key);
    // Returns the revision of the write.
    Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
    // Writes only if the key does not exist: true if written, false if someone holds it.
    Result<bool> create(const std::string& key, const std::string& value, int64_t lease = 0);
    // Deletes only if the value is still `expected` (nobody took it over meanwhile).
    Result<bool> delete_if_value(const std::string& key, const std::string& expected);
    Status remove(const std::string& key);
    Status remove_prefix(const std::string& prefix);

    // Discards history before `revision` (watches from older revisions then fail with Conflict).
    Status compact(int64_t revision);

    Result<int64_t> grant_lease(int64_t ttl_seconds);
    // One refresh; NotFound when the lease has expired.
    Status keep_alive(int64_t lease);
    Status revoke(int64_t lease);

    // Streams changes under `prefix` from `from_revision` (inclusive) to `on_events` until `stop`
    // is set, `on_events` returns false, or the stream fails. Fails with Conflict if the revision
    // was compacted away: re-read with get_prefix and watch again from its revision + 1.
    Status watch_prefix(const std::string& prefix, int64_t from_revision,
                        const std::function<bool(const std::vector<EtcdEvent>&)>& on_events,
                        const std::atomic<bool>& stop);

    const std::vector<std::string>& endpoints() const { return endpoints_; }

  private:
    EtcdClient(std::vector<std::string> endpoints, int timeout_ms);
    // POSTs `body` to `path` on the first endpoint that answers; returns the parsed reply.
    Result<std::string> call(const std::string& path, const std::string& body);

    std::vector<std::string> endpoints_;
    int timeout_ms_;
};

// The end of the key range holding every key that starts with `prefix` (etcd's range_end).
std::string etcd_prefix_end(const std::string& prefix);

}  // namespace bpfnet

// An HTTP request and response as bpfnet's unix-socket HTTP (Boost.Beast) hands them over: what
// the agent's server gives its handlers and what the client returns, so both halves agree on one
// shape.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace bpfnet {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query as sent, e.g. "/v1/networks?driver=bridge"
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    uid_t peer_uid = static_cast<uid_t>(-1);  // SO_PEERCRED of the client
    gid_t peer_gid = static_cast<gid_t>(-1);
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

// The largest header block either side reads (a request's on the server, a response's on the
// client).
inline constexpr std::uint32_t kHttpMaxHeaderBytes = 64 * 1024;

}  // namespace bpfnet

// HTTP/1.1 over unix stream sockets (Boost.Beast): the server both APIs listen with, and the client
// the CLI talks to the agent with.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"

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

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Listens on a unix socket. Each connection is served on its own thread (keep-alive honoured); the
// handler must be thread-safe. A handler exception becomes a 500 with a JSON message, never a
// crash.
class UnixHttpServer {
  public:
    // Removes a stale socket file at `path`, binds, chmods it to `mode`.
    static Result<std::unique_ptr<UnixHttpServer>> listen(const std::string& path, unsigned mode,
                                                          HttpHandler handler);
    ~UnixHttpServer();

    // Serves in a background thread until stop() or destruction.
    void start();
    void stop();
    const std::string& path() const { return path_; }

  private:
    struct Impl;
    UnixHttpServer(std::string path, std::unique_ptr<Impl> impl);
    std::string path_;
    std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection. Connection failures and timeouts are ErrorKind::Internal
// errors whose message says the socket could not be reached.
Result<HttpResponse> http_request(const std::string& socket_path, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace bpfnet

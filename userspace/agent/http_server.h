// The server half of bpfnet's HTTP/1.1 over unix stream sockets (Boost.Beast): what both APIs
// (native and Docker plugin) and the unix metrics endpoint listen with. The messages are shared
// with the client (client/http_message.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "client/http_message.h"
#include "core/result.h"

namespace bpfnet {

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

}  // namespace bpfnet

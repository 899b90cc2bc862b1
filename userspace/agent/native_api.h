// bpfnet's own API for the CLI: docker-engine-shaped JSON over HTTP on <run-dir>/bpfnetd.sock.
//
//   GET    /v1/version                       GET    /v1/status
//   GET    /v1/networks                      POST   /v1/networks/create
//   GET    /v1/networks/{ref}                DELETE /v1/networks/{ref}
//   POST   /v1/networks/prune
//   POST   /v1/networks/{ref}/connect        POST   /v1/networks/{ref}/disconnect
//   GET    /v1/sandboxes                     POST   /v1/sandboxes/create
//   GET    /v1/sandboxes/{ref}               DELETE /v1/sandboxes/{ref}
//
// Errors are {"message": "..."} with 400 (bad input), 404 (unknown), 409 (conflict/exhausted),
// 501 (unsupported) or 500, like the docker engine API.
#pragma once

#include <nlohmann/json.hpp>

#include "agent/service.h"
#include "client/http_message.h"

namespace bpfnet {

class NativeApi {
  public:
    explicit NativeApi(NetworkService& service) : service_(service) {}
    HttpResponse handle(const HttpRequest& request);

    // `docker network inspect`-shaped JSON for one network.
    static nlohmann::ordered_json inspect_network(const NetworkService& service,
                                                  const Network& network,
                                                  const NetworkService::Snapshot& snap);

  private:
    NetworkService& service_;
};

int http_status_for(ErrorKind kind);

}  // namespace bpfnet

// The client half of bpfnet's HTTP/1.1 over unix stream sockets (Boost.Beast): one request per
// connection, as the CLI talks to the agent and the agent asks Docker's engine for names.
#pragma once

#include <chrono>
#include <string>

#include "client/http_message.h"
#include "core/result.h"

namespace bpfnet {

// One request on a fresh connection. Connection failures and timeouts are ErrorKind::Internal
// errors whose message says the socket could not be reached.
Result<HttpResponse> http_request(const std::string& socket_path, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace bpfnet

// Docker's remote plugin protocol (NetworkDriver + IpamDriver), served on
// /run/docker/plugins/<name>.sock so a stock dockerd uses bpfnet with `docker network create -d
// bpfnet`. Each call is a POST of a JSON body to /<Interface>.<Method> (see "Docker plugin" in
// docs/architecture.md). Replies:
//   - success: 200 with the method's JSON;
//   - a well-formed request that fails: 200 with {"Err": "<message Docker shows the user>"}
//     ({"Error": ...} for IpamDriver calls, which is the key Docker's IPAM client reads);
//   - a body that is not JSON of the expected shape: 400 with {"Err": ...};
//   - an unknown method: 404 (Docker treats methods it gets 404 for as unsupported).
#pragma once

#include <functional>
#include <string>

#include "agent/service.h"
#include "client/http_message.h"

namespace bpfnet {

// Address spaces bpfnet's IpamDriver reports; Docker passes them back in RequestPool.
inline constexpr const char* kLocalAddressSpace = "bpfnet-local";
inline constexpr const char* kGlobalAddressSpace = "bpfnet-global";
inline constexpr const char* kPluginContentType = "application/vnd.docker.plugins.v1+json";

class DockerPluginApi {
  public:
    // `on_network_created` runs after a successful CreateNetwork (the agent uses it to learn the
    // name Docker gave the network).
    explicit DockerPluginApi(NetworkService& service,
                             std::function<void(const std::string&)> on_network_created = {})
        : service_(service), on_network_created_(std::move(on_network_created)) {}

    HttpResponse handle(const HttpRequest& request);

  private:
    NetworkService& service_;
    std::function<void(const std::string&)> on_network_created_;
};

// Name a Docker-created network has in bpfnet until the engine tells its real name.
std::string placeholder_network_name(const std::string& network_id);

}  // namespace bpfnet

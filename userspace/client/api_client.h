// A client of the agent's native API (the CLI's view of the agent): one call per API request,
// errors already turned into one-line messages the way docker's CLI phrases them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace bpfnet {

class ApiClient {
  public:
    explicit ApiClient(std::string run_dir);
    // Returns the decoded JSON body (null for an empty body) or an error whose message is ready to
    // print: "Error response from daemon: ..." or "Cannot connect to bpfnetd at ...".
    Result<nlohmann::ordered_json> call(const std::string& method, const std::string& path,
                                        const nlohmann::ordered_json& body = nullptr) const;
    const std::string& socket_path() const { return socket_; }

  private:
    std::string socket_;
};

}  // namespace bpfnet

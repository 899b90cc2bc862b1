#include "client/api_client.h"

#include <fmt/format.h>

#include "client/http_client.h"
#include "client/socket_path.h"

namespace bpfnet {

ApiClient::ApiClient(std::string run_dir) : socket_(native_socket_path(run_dir)) {}

Result<nlohmann::ordered_json> ApiClient::call(const std::string& method, const std::string& path,
                                               const nlohmann::ordered_json& body) const {
    auto response = http_request(socket_, method, "/v1" + path, body.is_null() ? "" : body.dump());
    if (!response) {
        return fail(ErrorKind::Internal,
                    fmt::format("Cannot connect to bpfnetd at {}. Is the agent running? ({})",
                                socket_, response.error().message));
    }
    nlohmann::ordered_json decoded = nullptr;
    if (!response->body.empty()) {
        decoded = nlohmann::ordered_json::parse(response->body, nullptr, false);
        if (decoded.is_discarded()) {
            return fail(
                ErrorKind::Internal,
                fmt::format("bpfnetd sent an undecodable reply (HTTP {})", response->status));
        }
    }
    if (response->status >= 400) {
        std::string message =
            decoded.is_object() && decoded.contains("message") && decoded["message"].is_string()
                ? decoded["message"].get<std::string>()
                : fmt::format("HTTP {}", response->status);
        return fail(ErrorKind::Internal, "Error response from daemon: " + message);
    }
    return decoded;
}

}  // namespace bpfnet

#include "agent/docker_names.h"

#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "client/http_client.h"
#include "core/json_fields.h"

namespace bpfnet {

namespace {

constexpr auto kRetryInterval = std::chrono::milliseconds(250);
constexpr std::string_view kUnixScheme = "unix://";

}  // namespace

DockerNameResolver::DockerNameResolver(NetworkService& service, std::string docker_host,
                                       std::chrono::seconds give_up_after)
    : service_(service), give_up_after_(give_up_after) {
    socket_path_ = docker_host.rfind(kUnixScheme, 0) == 0 ? docker_host.substr(kUnixScheme.size())
                                                          : docker_host;
    worker_ = std::thread([this] { run(); });
}

DockerNameResolver::~DockerNameResolver() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
}

void DockerNameResolver::resolve(const std::string& network_id) {
    {
        std::lock_guard lock(mutex_);
        pending_[network_id] = std::chrono::steady_clock::now() + give_up_after_;
    }
    wake_.notify_all();
}

void DockerNameResolver::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (pending_.empty()) {
            wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
            continue;
        }
        std::vector<std::string> ids;
        for (const auto& [id, deadline] : pending_) ids.push_back(id);
        lock.unlock();
        std::vector<std::string> settled;
        for (const auto& id : ids)
            if (try_resolve(id)) settled.push_back(id);
        lock.lock();
        auto now = std::chrono::steady_clock::now();
        for (const auto& id : settled) pending_.erase(id);
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second > now) {
                ++it;
                continue;
            }
            spdlog::warn(
                "docker: could not learn the name of network {} from {}; it keeps the "
                "name {}",
                it->first.substr(0, 12), socket_path_, "docker-" + it->first.substr(0, 12));
            it = pending_.erase(it);
        }
        wake_.wait_for(lock, kRetryInterval, [&] { return stopping_; });
    }
}

bool DockerNameResolver::try_resolve(const std::string& network_id) {
    auto response =
        http_request(socket_path_, "GET", "/networks/" + network_id, "", std::chrono::seconds(2));
    if (!response || response->status != 200) return false;  // not created yet, or no engine
    auto parsed = parse_json(response->body);
    if (!parsed) return false;
    nlohmann::json& doc = *parsed;
    if (!doc.is_object() || !doc.contains("Name") || !doc["Name"].is_string()) return false;
    std::map<std::string, std::string> labels;
    if (doc.contains("Labels") && doc["Labels"].is_object()) {
        for (const auto& [key, value] : doc["Labels"].items())
            if (value.is_string()) labels[key] = value.get<std::string>();
    }
    std::string name = doc["Name"].get<std::string>();
    if (auto st = service_.adopt_docker_identity(network_id, name, labels); !st) {
        spdlog::warn("docker: network {} is called {} in Docker but keeps its bpfnet name: {}",
                     network_id.substr(0, 12), name, st.error().message);
        return true;
    }
    spdlog::info("docker: network {} is {}", network_id.substr(0, 12), name);
    return true;
}

}  // namespace bpfnet

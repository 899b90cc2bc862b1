// Learns the names Docker gives the networks it creates through bpfnet. The plugin protocol sends
// only the network ID, but users know their networks by name, so after CreateNetwork the agent
// asks the Docker engine (GET /networks/<id> on its API socket) and records the name and labels.
// Docker answers 404 until its own create has finished, so each lookup is retried for a while.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "agent/service.h"

namespace bpfnet {

class DockerNameResolver {
  public:
    // `docker_host` is the engine's address, "unix:///var/run/docker.sock" style.
    DockerNameResolver(NetworkService& service, std::string docker_host,
                       std::chrono::seconds give_up_after = std::chrono::seconds(60));
    ~DockerNameResolver();
    DockerNameResolver(const DockerNameResolver&) = delete;
    DockerNameResolver& operator=(const DockerNameResolver&) = delete;

    // Queues a lookup; returns at once.
    void resolve(const std::string& network_id);

  private:
    void run();
    // One attempt; true when the network is settled (named, or Docker says it has no such name).
    bool try_resolve(const std::string& network_id);

    NetworkService& service_;
    std::string socket_path_;
    std::chrono::seconds give_up_after_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::string, std::chrono::steady_clock::time_point> pending_;  // id -> give-up time
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace bpfnet

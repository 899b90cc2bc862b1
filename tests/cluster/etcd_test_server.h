// A private etcd for tests: Debian's etcd-server on loopback ports of its own (chosen free by the
// kernel), with a data directory in /tmp, stopped and removed on destruction.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "cluster/etcd_client.h"

namespace bpfnet::testing {

class EtcdTestServer {
  public:
    EtcdTestServer() {
        char tmpl[] = "/tmp/bnetcd.XXXXXX";
        if (!mkdtemp(tmpl)) {
            error_ = "mkdtemp failed";
            return;
        }
        dir_ = tmpl;
        // The free ports are only free when asked: another test may take one before etcd binds
        // it (etcd then exits at start). Such a start is retried on other ports.
        for (int attempt = 0; attempt < 5; ++attempt) {
            error_.clear();
            if (start_once()) return;
            if (pid_ > 0) return;  // running but not answering: retrying would not help
        }
    }

  private:
    // True once etcd answers; on failure error_ says why and pid_ is -1 if etcd exited.
    bool start_once() {
        const int client_port = free_port(), peer_port = free_port();
        url_ = "http://127.0.0.1:" + std::to_string(client_port);
        const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
        const std::string data = dir_ + "/data";
        std::error_code ec;
        std::filesystem::remove_all(data, ec);
        pid_ = fork();
        if (pid_ == 0) {
            const std::string log = dir_ + "/etcd.log";
            freopen(log.c_str(), "w", stdout);
            freopen(log.c_str(), "a", stderr);
            execlp("etcd", "etcd", "--name", "t", "--data-dir", data.c_str(),
                   "--listen-client-urls", url_.c_str(), "--advertise-client-urls", url_.c_str(),
                   "--listen-peer-urls", peer.c_str(), "--initial-advertise-peer-urls",
                   peer.c_str(), "--initial-cluster", ("t=" + peer).c_str(), nullptr);
            _exit(127);
        }
        for (int i = 0; i < 100; ++i) {
            if (auto c = EtcdClient::connect({url_}, 300); c) return true;
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                error_ =
                    "etcd exited at start (see " + dir_ + "/etcd.log; is etcd-server installed?)";
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        error_ = "etcd did not answer within 10 s";
        return false;
    }

  public:
    ~EtcdTestServer() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    EtcdTestServer(const EtcdTestServer&) = delete;
    EtcdTestServer& operator=(const EtcdTestServer&) = delete;

    bool running() const { return pid_ > 0 && error_.empty(); }
    const std::string& error() const { return error_; }
    const std::string& url() const { return url_; }
    bool compact(int64_t revision) {
        auto c = EtcdClient::connect({url_});
        if (!c) {
            error_ = c.error().message;
            return false;
        }
        auto st = (*c)->compact(revision);
        if (!st) error_ = st.error().message;
        return st.ok();
    }

  private:
    static int free_port() {
        const int s = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
        close(s);
        return ntohs(a.sin_port);
    }

    std::string dir_, url_, error_;
    pid_t pid_ = -1;
};

// A test suite whose tests share one private etcd (started before the first, stopped after the
// last); each test checks it is up.
class EtcdSuite : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new EtcdTestServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(server_->running()) << server_->error(); }
    static inline EtcdTestServer* server_ = nullptr;
};

}  // namespace bpfnet::testing

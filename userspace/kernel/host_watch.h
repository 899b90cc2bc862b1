// Watches the host's links, IPv4 addresses and IPv4 routes (rtnetlink multicast) so the agent
// follows interfaces that come and go: an uplink that appears after the agent started ("auto"),
// another runtime's bridge and its subnet, an address added to a NIC. A burst of changes (a bridge,
// its address and its route) is reported once, after the host has been quiet for `settle`.
// Changes to bpfnet's own links (alias "bpfnet:...", one veth per endpoint) are not reported: they
// are the agent's doing and would otherwise cost a survey of the host per connect.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "core/fd.h"
#include "core/result.h"

struct nl_sock;

namespace bpfnet::kernel {

class HostWatch {
  public:
    static Result<std::unique_ptr<HostWatch>> start(
        std::function<void()> on_change,
        std::chrono::milliseconds settle = std::chrono::milliseconds(200));
    ~HostWatch();  // stops the thread; on_change is not called after it returns

    HostWatch(const HostWatch&) = delete;
    HostWatch& operator=(const HostWatch&) = delete;

  private:
    HostWatch() = default;
    void run();
    // Reads every pending message; true when one of them is a change worth reporting.
    bool drain();

    struct SockDeleter {
        void operator()(nl_sock* s) const;
    };
    std::unique_ptr<nl_sock, SockDeleter> sock_;
    Fd stop_{-1};  // eventfd: written by the destructor
    std::function<void()> on_change_;
    std::chrono::milliseconds settle_{200};
    bool relevant_ = false;  // set by the message callback during drain()
    std::thread thread_;
};

}  // namespace bpfnet::kernel

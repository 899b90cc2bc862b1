// Network namespaces: named ones under a directory (/run/netns, as `ip netns` makes them) and the
// temporary thread switch needed to act inside one.
#pragma once

#include <functional>
#include <string>

#include "core/fd.h"
#include "core/result.h"

namespace bpfnet::kernel {

inline constexpr const char* kDefaultNetnsDir = "/run/netns";

// An open namespace fd, closed on destruction.
class NetnsFd {
  public:
    static Result<NetnsFd> open(const std::string& path);
    int get() const { return fd_.get(); }

  private:
    explicit NetnsFd(int fd) : fd_(fd) {}
    Fd fd_;
};

// Creates <dir>/<name> as a persistent network namespace (bind mount, compatible with `ip netns`),
// with loopback up. Fails with Conflict if it already exists. Returns the path.
Result<std::string> create_named_netns(const std::string& name,
                                       const std::string& dir = kDefaultNetnsDir);
// Binds the agent's own (the host's) network namespace at <dir>/<name>: a sandbox that is the
// host's namespace under a name, for `--network host`. Removing it never touches the host.
Result<std::string> bind_host_netns(const std::string& name,
                                    const std::string& dir = kDefaultNetnsDir);
// Unmounts and removes a named namespace; absent is success.
Status delete_named_netns(const std::string& path);
// True when `path` is a mounted network namespace.
bool netns_exists(const std::string& path);

// Runs `body` on the calling thread inside the namespace at `path`, then switches back (also when
// body fails). Used to open sockets that must live in a sandbox.
Status run_in_netns(const std::string& path, const std::function<Status()>& body);

}  // namespace bpfnet::kernel

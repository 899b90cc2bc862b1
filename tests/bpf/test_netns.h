// Shell commands and named network namespaces for the BPF tests that need real devices and routes
// (veths, bpf_fib_lookup): the test builds its namespace with `ip`, and moves its thread in for
// the test runs, which see the devices of the caller's namespace.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bpfnet::testing {

// Runs a shell command; returns its exit status (-1 if it could not run).
inline int sh(const std::string& cmd) {
    const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

// Runs a shell command and returns its standard output.
inline std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!p) return out;
    std::array<char, 256> buf{};
    while (fgets(buf.data(), buf.size(), p)) out += buf.data();
    pclose(p);
    return out;
}

// Moves the calling thread into a named netns (ip netns add) and back on destruction.
class InNetns {
  public:
    explicit InNetns(const std::string& name) {
        original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        const int target = open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        ok_ = original_ >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0;
        if (target >= 0) close(target);
    }
    ~InNetns() {
        if (original_ >= 0) {
            if (setns(original_, CLONE_NEWNET) != 0) std::abort();  // never run on in a test netns
            close(original_);
        }
    }
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;
    bool ok() const { return ok_; }

  private:
    int original_ = -1;
    bool ok_ = false;
};

}  // namespace bpfnet::testing

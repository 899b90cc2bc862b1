// The socket NAT for published ports (bpf/sock.bpf.c): cgroup v2 sock_addr programs that give a
// host socket connecting or sending to a published port the endpoint's address directly, so the
// host reaches its own published ports without a proxy process or per-packet NAT. Its links are
// pinned under <pin_dir>/cgroup-links/ and re-adopted with bpf_link_update on start, like the
// endpoint program's. It shares the published-port maps (bpfnet_pub_port, bpfnet_local_ip) with
// the uplink program by pin; the BPF datapath fills them. Where it cannot be loaded the kernel NAT
// (nftables output DNAT) still serves the host, so it is an optional layer.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "datapath/datapath.h"

namespace bpfnet {

class SocketNat {
  public:
    // Loads the programs with maps pinned under `pin_dir` and attaches them to the cgroup v2
    // hierarchy's root (found in /proc/self/mounts).
    static Result<std::unique_ptr<SocketNat>> open(const std::string& pin_dir);
    ~SocketNat();

    const std::string& cgroup_root() const;

    // Sockets of the sandbox with this network namespace cookie may be rewritten towards endpoints
    // of `network` (datapath ID): hairpin without NAT for a sandbox on the endpoint's network.
    Status allow_sandbox(uint64_t netns_cookie, uint32_t network);
    void forget_sandbox(uint64_t netns_cookie, uint32_t network);
    // Drops the entries of networks that no longer exist.
    void forget_networks_except(const std::set<uint32_t>& networks);

  private:
    struct State;
    explicit SocketNat(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

// SO_NETNS_COOKIE of the calling thread's network namespace (unique per namespace and boot).
Result<uint64_t> current_netns_cookie();

// The first cgroup2 mount point in a /proc/self/mounts text, or "" if there is none.
std::string cgroup2_mount_point(const std::string& mounts);

}  // namespace bpfnet

// bpfnet's traffic under Docker's FORWARD policy.
//
// Docker (28 and later always, 20.10 whenever it turns forwarding on itself) sets the iptables
// FORWARD policy to DROP and accepts only its own bridges' traffic there. What bpfnet leaves to the
// kernel's forwarding path (egress through a network's bridge on either datapath; on the kernel
// datapath also bridged frames, which br_netfilter shows to FORWARD, and DNATed published ports)
// would die in that chain, and no accept in bpfnet's own nftables table can save it: a drop in any
// table is final. So the accept must be in iptables itself:
//   - bpfnet's nft forward chain runs first (priority filter - 1) and holds bpfnet's whole policy;
//     after its drops it sets kForwardAcceptMark on what it lets through (see nft_ruleset.cpp);
//   - one rule per agent in DOCKER-USER, the chain Docker documents for its users' rules (Docker
//     creates it if missing, jumps to it first from FORWARD, never flushes it), accepts marked
//     packets.
// The policy stays in one place, nft; iptables holds one static rule, which survives Docker's
// restarts. The `iptables` binary is used as Docker uses it, so the rule lands in whichever backend
// (nf_tables or legacy) the host's Docker sees.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/result.h"

namespace bpfnet {

// One bit of the packet mark, left set on packets bpfnet's firewall accepted for forwarding.
inline constexpr uint32_t kForwardAcceptMark = 0x00400000;
inline constexpr const char* kDockerUserChain = "DOCKER-USER";

// The iptables match + target of this agent's accept rule, after "-C|-I|-D DOCKER-USER" (pure;
// unit-tested). The comment names the agent so each agent only ever removes its own.
std::vector<std::string> docker_user_rule(const std::string& instance);

// Keeps (or removes) this agent's accept rule in the host's iptables DOCKER-USER chain.
class DockerUserChain {
  public:
    explicit DockerUserChain(std::string instance) : instance_(std::move(instance)) {}

    // Creates DOCKER-USER and FORWARD's jump to it if missing (as Docker does at its start, so the
    // rule works on hosts where something else set the DROP policy), then the rule if missing.
    // Without an iptables binary there is no iptables FORWARD chain to pass: nothing to do.
    Status ensure();
    // Removes this agent's rule; also the chain and the jump when nothing else uses them and Docker
    // has no chains here (an empty chain is bpfnet's leftover then, not Docker's).
    Status remove();
    // What ensure() found and did, for `bpfnet status`. A copy: the status request reads it while
    // an operation's policy sync may be rewriting it.
    std::string state() const {
        std::lock_guard lock(state_mutex_);
        return state_;
    }

  private:
    // One pass of ensure(): what it needs, made from a fresh listing.
    Status ensure_once();
    std::string instance_;
    void set_state(std::string text) {
        std::lock_guard lock(state_mutex_);
        state_ = std::move(text);
    }

    mutable std::mutex state_mutex_;
    std::string state_ = "not checked yet";
    bool checked_ = false;  // state_ describes a completed ensure()
};

}  // namespace bpfnet

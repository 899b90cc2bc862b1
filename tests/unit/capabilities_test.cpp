// The agent's capability list and the pure parts of dropping the rest: names, /proc/<pid>/status
// parsing and what a drop keeps from the sets a process holds. The drop itself needs root and is
// checked end to end by tests/e2e/e2e_sec_capabilities.sh.
#include <linux/capability.h>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "agent/capabilities.h"

namespace bpfnet {
namespace {

constexpr uint64_t bit(unsigned capability) {
    return uint64_t{1} << capability;
}

// A real /proc/<pid>/status of a root shell (abridged) after its agent dropped capabilities.
constexpr const char* kAgentStatus =
    "Name:\tbpfnetd\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Uid:\t0\t0\t0\t0\n"
    "Threads:\t1\n"
    "SigQ:\t0/63541\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000000c000201401\n"
    "CapEff:\t000000c000201401\n"
    "CapBnd:\t000000c000201401\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t0\n";

TEST(Capabilities, TheAgentsListIsOrderedUniqueAndExplained) {
    auto needed = agent_capabilities();
    ASSERT_FALSE(needed.empty());
    std::set<unsigned> seen;
    unsigned previous = 0;
    for (const auto& c : needed) {
        EXPECT_TRUE(seen.insert(c.number).second) << c.name << " listed twice";
        EXPECT_GE(c.number, previous) << c.name << " out of capability-number order";
        previous = c.number;
        EXPECT_EQ(capability_name(c.number), c.name);
        EXPECT_GT(std::string(c.reason).size(), 10u) << c.name << " has no reason";
    }
    EXPECT_EQ(agent_capability_mask(), bit(CAP_CHOWN) | bit(CAP_NET_BIND_SERVICE) |
                                           bit(CAP_NET_ADMIN) | bit(CAP_SYS_ADMIN) |
                                           bit(CAP_PERFMON) | bit(CAP_BPF));
    // Never: switching ids, loading modules, tracing other processes, overriding file permissions.
    for (unsigned never : {CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_MODULE, CAP_SYS_PTRACE,
                           CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SYS_RESOURCE, CAP_NET_RAW})
        EXPECT_EQ(agent_capability_mask() & bit(never), 0u) << capability_name(never);
}

TEST(Capabilities, NamesFollowTheKernelsSpelling) {
    EXPECT_EQ(capability_name(CAP_NET_ADMIN), "CAP_NET_ADMIN");
    EXPECT_EQ(capability_name(CAP_SYS_PTRACE), "CAP_SYS_PTRACE");  // from libcap-ng
    EXPECT_EQ(capability_name(CAP_DAC_OVERRIDE), "CAP_DAC_OVERRIDE");
    EXPECT_EQ(capability_name(63), "CAP_63");  // no kernel has it
    EXPECT_EQ(capability_names(0), std::vector<std::string>{});
    EXPECT_EQ(capability_names(bit(CAP_BPF) | bit(CAP_CHOWN) | bit(CAP_SYS_ADMIN)),
              (std::vector<std::string>{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_BPF"}));
    EXPECT_EQ(describe_capabilities(bit(CAP_CHOWN) | bit(CAP_BPF)), "CAP_CHOWN, CAP_BPF");
    EXPECT_EQ(describe_capabilities(0), "none");
}

TEST(Capabilities, ParsesProcStatus) {
    auto caps = parse_process_capabilities(kAgentStatus);
    ASSERT_TRUE(caps.ok()) << caps.error().message;
    EXPECT_EQ(caps->inheritable, 0u);
    EXPECT_EQ(caps->permitted, 0xc000201401u);
    EXPECT_EQ(caps->effective, agent_capability_mask());
    EXPECT_EQ(caps->bounding, agent_capability_mask());
    EXPECT_EQ(caps->ambient, 0u);
    EXPECT_TRUE(caps->no_new_privs);
    EXPECT_EQ(caps->threads, 1u);
}

TEST(Capabilities, RefusesAnIncompleteOrGarbledStatus) {
    std::string status = kAgentStatus;
    std::string without_ambient = status;
    without_ambient.erase(without_ambient.find("CapAmb:"),
                          std::string("CapAmb:\t0000000000000000\n").size());
    auto missing = parse_process_capabilities(without_ambient);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("CapAmb"), std::string::npos);

    std::string garbled = status;
    garbled.replace(garbled.find("000000c000201401"), 16, "00000zc000201401");
    auto bad = parse_process_capabilities(garbled);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("CapPrm"), std::string::npos);
    // A field name that merely starts like another one is not it.
    auto prefix = parse_process_capabilities("CapEffective:\t1\n");
    EXPECT_FALSE(prefix.ok());
}

TEST(Capabilities, PlanFromFullRoot) {
    ProcessCapabilities root;
    root.permitted = root.effective = root.bounding = (bit(CAP_CHECKPOINT_RESTORE) << 1) - 1;
    CapabilityPlan plan = plan_capability_drop(root);
    EXPECT_EQ(plan.keep, agent_capability_mask());
    EXPECT_EQ(plan.not_held, 0u);
    EXPECT_EQ(plan.bounding_extra, root.bounding & ~agent_capability_mask());
    EXPECT_NE(plan.bounding_extra & bit(CAP_SYS_MODULE), 0u);
}

TEST(Capabilities, PlanKeepsOnlyWhatIsHeld) {
    // Bounded by a supervisor to fewer capabilities than the agent wants (no CAP_BPF: an old kernel
    // or a narrow unit): the rest cannot be gained, and the bounding set has nothing extra.
    ProcessCapabilities bounded;
    bounded.permitted = bounded.effective = bounded.bounding =
        bit(CAP_NET_ADMIN) | bit(CAP_SYS_ADMIN) | bit(CAP_CHOWN);
    CapabilityPlan plan = plan_capability_drop(bounded);
    EXPECT_EQ(plan.keep, bounded.permitted);
    EXPECT_EQ(plan.not_held, bit(CAP_NET_BIND_SERVICE) | bit(CAP_PERFMON) | bit(CAP_BPF));
    EXPECT_EQ(plan.bounding_extra, 0u);

    // An ordinary user: nothing held, nothing kept, the full bounding set is all extra.
    ProcessCapabilities user;
    user.bounding = (bit(CAP_CHECKPOINT_RESTORE) << 1) - 1;
    plan = plan_capability_drop(user);
    EXPECT_EQ(plan.keep, 0u);
    EXPECT_EQ(plan.not_held, agent_capability_mask());
    EXPECT_EQ(plan.bounding_extra, user.bounding & ~agent_capability_mask());
}

}  // namespace
}  // namespace bpfnet

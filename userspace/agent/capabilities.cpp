#include "agent/capabilities.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace bpfnet {

namespace {

// What the agent does with each. Found by running the end-to-end tests (bridge, published ports,
// overlay, BPF forwarding and inspection, API access, Docker) with everything else dropped, and
// each of these proven by the failure without it. CAP_SYS_ADMIN would stand in for CAP_BPF and
// CAP_PERFMON in the kernel's checks; they are kept anyway because they are what those checks ask.
constexpr std::array kNeededCapabilities{
    NeededCapability{CAP_CHOWN, "CAP_CHOWN",
                     "give the API, plugin and metrics sockets to root:<--socket-group>"},
    NeededCapability{CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE",
                     "the published-port conflict probe binds host ports below 1024"},
    NeededCapability{CAP_NET_ADMIN, "CAP_NET_ADMIN",
                     "links, addresses, routes, tc/tcx and cgroup attach, nftables, net sysctls"},
    NeededCapability{CAP_SYS_ADMIN, "CAP_SYS_ADMIN",
                     "mount bpffs and namespace files, unshare/setns network namespaces"},
    NeededCapability{CAP_PERFMON, "CAP_PERFMON",
                     "the verifier allows the endpoint program's pointer arithmetic only with it"},
    NeededCapability{CAP_BPF, "CAP_BPF", "bpf(): create maps, load and pin the programs"},
};

uint64_t bit(unsigned capability) {
    return capability < 64 ? uint64_t{1} << capability : 0;
}

// The hexadecimal value after "Field:" on its own line of a /proc/<pid>/status text.
Result<uint64_t> status_field(std::string_view text, std::string_view field, int base) {
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(at, end - at);
        at = end + 1;
        if (line.size() <= field.size() || line.substr(0, field.size()) != field ||
            line[field.size()] != ':')
            continue;
        std::string_view value = line.substr(field.size() + 1);
        while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
            value.remove_prefix(1);
        while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
            value.remove_suffix(1);
        uint64_t parsed = 0;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed, base);
        if (value.empty() || ec != std::errc{} || ptr != value.data() + value.size())
            return fail(ErrorKind::Internal,
                        fmt::format("unreadable {} in a process status: \"{}\"", field, value));
        return parsed;
    }
    return fail(ErrorKind::Internal, fmt::format("no {} in a process status", field));
}

}  // namespace

std::span<const NeededCapability> agent_capabilities() {
    return kNeededCapabilities;
}

uint64_t agent_capability_mask() {
    uint64_t mask = 0;
    for (const auto& c : kNeededCapabilities) mask |= bit(c.number);
    return mask;
}

std::string capability_name(unsigned capability) {
    for (const auto& c : kNeededCapabilities)
        if (c.number == capability) return c.name;
    // libcap-ng knows the names the running kernel has ("sys_ptrace"); it returns null beyond them.
    const char* lower = capng_capability_to_name(capability);
    if (lower == nullptr || std::strcmp(lower, "unknown") == 0)
        return fmt::format("CAP_{}", capability);
    std::string name = "CAP_";
    for (const char* p = lower; *p != '\0'; ++p)
        name += static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
    return name;
}

std::vector<std::string> capability_names(uint64_t mask) {
    std::vector<std::string> names;
    for (unsigned capability = 0; capability < 64; ++capability)
        if (mask & bit(capability)) names.push_back(capability_name(capability));
    return names;
}

std::string describe_capabilities(uint64_t mask) {
    auto names = capability_names(mask);
    return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

Result<ProcessCapabilities> parse_process_capabilities(std::string_view status_text) {
    ProcessCapabilities caps;
    BPFNET_ASSIGN_OR_RETURN(caps.inheritable, status_field(status_text, "CapInh", 16));
    BPFNET_ASSIGN_OR_RETURN(caps.permitted, status_field(status_text, "CapPrm", 16));
    BPFNET_ASSIGN_OR_RETURN(caps.effective, status_field(status_text, "CapEff", 16));
    BPFNET_ASSIGN_OR_RETURN(caps.bounding, status_field(status_text, "CapBnd", 16));
    BPFNET_ASSIGN_OR_RETURN(caps.ambient, status_field(status_text, "CapAmb", 16));
    BPFNET_ASSIGN_OR_RETURN(uint64_t no_new_privs, status_field(status_text, "NoNewPrivs", 10));
    caps.no_new_privs = no_new_privs != 0;
    BPFNET_ASSIGN_OR_RETURN(uint64_t threads, status_field(status_text, "Threads", 10));
    caps.threads = static_cast<unsigned>(threads);
    return caps;
}

Result<ProcessCapabilities> read_process_capabilities() {
    std::ifstream file("/proc/self/status");
    if (!file) return fail(ErrorKind::Internal, "cannot read /proc/self/status");
    std::ostringstream text;
    text << file.rdbuf();
    return parse_process_capabilities(text.str());
}

CapabilityPlan plan_capability_drop(const ProcessCapabilities& current) {
    const uint64_t needed = agent_capability_mask();
    return CapabilityPlan{.keep = needed & current.permitted,
                          .not_held = needed & ~current.permitted,
                          .bounding_extra = current.bounding & ~needed};
}

Result<CapabilityDrop> drop_unneeded_capabilities() {
    BPFNET_ASSIGN_OR_RETURN(ProcessCapabilities before, read_process_capabilities());
    if (before.threads != 1)
        return fail(ErrorKind::Internal,
                    fmt::format("capabilities are per thread and {} threads already run: they must "
                                "be dropped before the first thread starts",
                                before.threads));
    // Neither a setuid binary nor a file with capabilities can give anything back after this.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(ErrorKind::Internal,
                    fmt::format("prctl(PR_SET_NO_NEW_PRIVS): {}", std::strerror(errno)));

    CapabilityDrop drop{.plan = plan_capability_drop(before)};
    const CapabilityPlan& plan = drop.plan;
    // Removing from the bounding set takes CAP_SETPCAP; a supervisor that already bounded the agent
    // (systemd's CapabilityBoundingSet) may not have left it.
    const bool narrow_bounding = plan.bounding_extra != 0;
    if (narrow_bounding && !(before.effective & bit(CAP_SETPCAP))) drop.bounding_narrowed = false;

    // Inheritable and ambient stay empty: nothing the agent might run inherits a capability. The
    // bounding set keeps every needed capability it has, held or not, as planned.
    capng_clear(CAPNG_SELECT_ALL);
    const uint64_t bounding = before.bounding & ~plan.bounding_extra;
    for (unsigned capability = 0; capability < 64; ++capability) {
        int sets = 0;
        if (plan.keep & bit(capability)) sets |= CAPNG_EFFECTIVE | CAPNG_PERMITTED;
        if (bounding & bit(capability)) sets |= CAPNG_BOUNDING_SET;
        if (sets == 0) continue;
        if (capng_update(CAPNG_ADD, static_cast<capng_type_t>(sets), capability) != 0)
            return fail(ErrorKind::Internal,
                        fmt::format("libcap-ng cannot represent {}", capability_name(capability)));
    }
    int select = CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT;
    if (narrow_bounding && drop.bounding_narrowed) select |= CAPNG_SELECT_BOUNDS;
    if (int rc = capng_apply(static_cast<capng_select_t>(select)); rc != 0)
        return fail(ErrorKind::Internal,
                    fmt::format("dropping capabilities failed (capng_apply: {}, errno: {})", rc,
                                std::strerror(errno)));

    // Trust the kernel's account, not the library's.
    BPFNET_ASSIGN_OR_RETURN(ProcessCapabilities after, read_process_capabilities());
    const uint64_t expected_bounding = drop.bounding_narrowed ? bounding : before.bounding;
    if (after.effective != plan.keep || after.permitted != plan.keep || after.inheritable != 0 ||
        after.ambient != 0 || after.bounding != expected_bounding || !after.no_new_privs)
        return fail(ErrorKind::Internal,
                    fmt::format("capabilities after the drop are not the planned ones: effective "
                                "{}, permitted {}, inheritable {}, ambient {}, bounding {}",
                                describe_capabilities(after.effective),
                                describe_capabilities(after.permitted),
                                describe_capabilities(after.inheritable),
                                describe_capabilities(after.ambient),
                                describe_capabilities(after.bounding)));
    return drop;
}

}  // namespace bpfnet

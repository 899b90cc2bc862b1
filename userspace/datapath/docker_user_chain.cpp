#include "datapath/docker_user_chain.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/fd.h"
#include "kernel/subprocess.h"

namespace bpfnet {
namespace {

// -w: wait for the xtables lock (legacy backend) instead of failing while Docker holds it.
Result<kernel::ProgramResult> iptables(std::vector<std::string> args) {
    std::vector<std::string> argv{"iptables", "-w", "-t", "filter"};
    argv.insert(argv.end(), args.begin(), args.end());
    return kernel::run_program(argv);
}

std::vector<std::string> with(std::vector<std::string> head, const std::vector<std::string>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

Failure failed(const std::vector<std::string>& args, std::string out) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return fail(ErrorKind::Internal, fmt::format("iptables {}: {}", fmt::join(args, " "), out));
}

// Runs a command that must succeed.
Status must(std::vector<std::string> args) {
    BPFNET_ASSIGN_OR_RETURN(auto r, iptables(args));
    if (r.exit_code != 0) return failed(args, r.output);
    return {};
}

// Whether a -C (check) or -L/-S query succeeded: the rule or chain exists.
Result<bool> holds(std::vector<std::string> args) {
    BPFNET_ASSIGN_OR_RETURN(auto r, iptables(std::move(args)));
    return r.exit_code == 0;
}

// Several agents (and Docker) edit these chains: between a check and the change another may have
// made the same change. `change` failing is fine when `check` then shows the wanted state
// (`present`: the rule or chain exists), so every edit is idempotent under that race.
Status settle(std::vector<std::string> change, std::vector<std::string> check, bool present) {
    BPFNET_ASSIGN_OR_RETURN(auto r, iptables(change));
    if (r.exit_code == 0) return {};
    BPFNET_ASSIGN_OR_RETURN(bool holds_now, holds(std::move(check)));
    if (holds_now == present) return {};
    return failed(change, r.output);
}

// "iptables v1.8.9 (nf_tables)" or "(legacy)": which kernel tables Docker's rules and ours live in.
std::string iptables_backend() {
    auto version = kernel::run_program({"iptables", "-V"});
    if (!version || version->exit_code != 0) return "iptables version unknown";
    std::string text = version->output;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

// Every bpfnet agent on the host (one per state dir) shares DOCKER-USER, and one removing the last
// rule deletes the chain: without this lock another's -N/-I can land between that agent's -D and
// -X, and its edits fail on a chain that is gone. The lock is host-wide (not in the agent's own run
// dir) and held only for one ensure()/remove(); the kernel drops it if the agent dies holding it.
// Docker does not take it, but Docker never deletes the chain, so the retry in ensure() covers it.
class HostIptablesLock {
  public:
    HostIptablesLock() : fd_(::open(kPath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_.get() < 0) {
            spdlog::debug("open {}: {}; DOCKER-USER edits go unserialised", kPath,
                          std::strerror(errno));
            return;
        }
        while (::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
        }
    }

  private:
    static constexpr const char* kPath = "/run/lock/bpfnet-docker-user.lock";
    Fd fd_;  // closing it releases the lock
};

}  // namespace

std::vector<std::string> docker_user_rule(const std::string& instance) {
    return {"-m",        "mark",
            "--mark",    fmt::format("{:#x}/{:#x}", kForwardAcceptMark, kForwardAcceptMark),
            "-m",        "comment",
            "--comment", "bpfnet " + instance + ": accepted by the bpfnet firewall",
            "-j",        "ACCEPT"};
}

// Two runs of iptables when all is in place (the chain's listing, which also shows the rule, and
// the check of FORWARD's jump): this runs on every policy sync, so its cost is kept to what
// re-checking needs; the state line is redone only when something had to be made.
Status DockerUserChain::ensure() {
    // Other bpfnet agents are held off by the lock; what can still change the chains under us is
    // something outside bpfnet (Docker starting, an admin's script) deleting or re-making them.
    // An edit then fails on a chain that is gone, and everything is done again from the listing;
    // a failure that is not that race is returned at once.
    HostIptablesLock lock;
    constexpr int kRounds = 5;
    for (int round = 1;; ++round) {
        Status st = ensure_once();
        if (st || round == kRounds) return st;
        // The chain may already be back (a third agent starting made it again), so iptables'
        // own "no such chain" answer counts as much as the chain missing now.
        const std::string& message = st.error().message;
        const bool chain_was_gone = message.find("does not exist") != std::string::npos ||
                                    message.find("No chain/target/match") != std::string::npos;
        auto chain = holds({"-S", kDockerUserChain});
        if (!chain_was_gone && (!chain || *chain)) return st;
        spdlog::debug("{} went away while being set up ({}); again", kDockerUserChain,
                      st.error().message);
    }
}

Status DockerUserChain::ensure_once() {
    const auto rule = docker_user_rule(instance_);
    auto listing = iptables({"-S", kDockerUserChain});
    if (!listing && listing.error().kind == ErrorKind::NotFound) {
        set_state("no iptables binary: nftables only, no iptables FORWARD chain to pass");
        return {};
    }
    BPFNET_TRY(listing);
    const bool made_chain = listing->exit_code != 0;
    if (made_chain) BPFNET_TRY(settle({"-N", kDockerUserChain}, {"-S", kDockerUserChain}, true));
    const bool present =
        !made_chain && listing->output.find("\"bpfnet " + instance_ + ":") != std::string::npos &&
        listing->output.find(fmt::format("{:#x}/{:#x}", kForwardAcceptMark, kForwardAcceptMark)) !=
            std::string::npos;
    BPFNET_ASSIGN_OR_RETURN(bool jump, holds({"-C", "FORWARD", "-j", kDockerUserChain}));
    if (!jump) BPFNET_TRY(must({"-I", "FORWARD", "-j", kDockerUserChain}));
    if (!present) BPFNET_TRY(must(with({"-I", kDockerUserChain}, rule)));
    if (present && jump && checked_) return {};
    checked_ = true;
    BPFNET_ASSIGN_OR_RETURN(bool docker, holds({"-S", "DOCKER"}));
    set_state(fmt::format(
        "{}; Docker's chains {}; {} chain {}: accepts packets marked {:#x} by the bpfnet firewall",
        iptables_backend(), docker ? "present" : "absent", kDockerUserChain,
        made_chain ? "(created by bpfnet, as Docker would)" : (docker ? "(Docker's)" : "(present)"),
        kForwardAcceptMark));
    return {};
}

Status DockerUserChain::remove() {
    HostIptablesLock lock;
    const auto rule = docker_user_rule(instance_);
    auto chain = holds({"-S", kDockerUserChain});
    if (!chain && chain.error().kind == ErrorKind::NotFound) return {};
    BPFNET_TRY(chain);
    if (!*chain) return {};
    // -D removes one copy; a crash between -C and -I of two agents' runs could have left two.
    for (;;) {
        BPFNET_ASSIGN_OR_RETURN(bool present, holds(with({"-C", kDockerUserChain}, rule)));
        if (!present) break;
        BPFNET_TRY(settle(with({"-D", kDockerUserChain}, rule),
                          with({"-C", kDockerUserChain}, rule), false));
    }
    BPFNET_ASSIGN_OR_RETURN(bool docker, holds({"-S", "DOCKER"}));
    if (docker) return {};
    BPFNET_ASSIGN_OR_RETURN(auto listing, iptables({"-S", kDockerUserChain}));
    // An empty chain lists as its own "-N DOCKER-USER" line only.
    if (listing.output.find("\n-A ") != std::string::npos || listing.output.rfind("-A ", 0) == 0)
        return {};
    BPFNET_ASSIGN_OR_RETURN(bool jump, holds({"-C", "FORWARD", "-j", kDockerUserChain}));
    if (jump)
        BPFNET_TRY(settle({"-D", "FORWARD", "-j", kDockerUserChain},
                          {"-C", "FORWARD", "-j", kDockerUserChain}, false));
    // Another agent may have added its rule meanwhile: -X then fails on a non-empty chain, and the
    // jump must come back for that rule to count.
    BPFNET_ASSIGN_OR_RETURN(auto deleted, iptables({"-X", kDockerUserChain}));
    if (deleted.exit_code != 0) BPFNET_TRY(must({"-I", "FORWARD", "-j", kDockerUserChain}));
    return {};
}

}  // namespace bpfnet

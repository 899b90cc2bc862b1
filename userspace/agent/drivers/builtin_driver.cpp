#include "agent/drivers/builtin_driver.h"

#include <string_view>

#include <fmt/format.h>

namespace bpfnet {

namespace {

Failure host_network_is_fixed() {
    return fail(ErrorKind::Conflict,
                "container cannot be disconnected from host network or connected to host network");
}

}  // namespace

bool BuiltinDriver::host() const {
    return std::string_view(kind_) == driver::kHost;
}

const char* BuiltinDriver::network_name() const {
    return host() ? "host" : "none";
}

Status BuiltinDriver::check_request(const CreateNetworkRequest& /*request*/,
                                    const BridgeOptions& /*options*/) const {
    return fail(ErrorKind::Conflict,
                fmt::format("only one instance of \"{}\" network is allowed", kind_));
}

Result<NetworkPlan> BuiltinDriver::plan(const CreateNetworkRequest& request,
                                        const Snapshot& /*snap*/, Network& /*network*/) {
    BPFNET_TRY(check_request(request, BridgeOptions{}));
    return NetworkPlan{};
}

DatapathChoice BuiltinDriver::datapath_choice(const Network& /*network*/) const {
    if (host()) return {"host", "the host's own network namespace"};
    return {"none", "loopback only"};
}

Datapath& BuiltinDriver::datapath(const Network& /*network*/) {
    return datapaths_.none();
}

Status BuiltinDriver::check_connect(const Network& /*network*/, const Sandbox& /*sandbox*/,
                                    const std::vector<Endpoint>& in_sandbox,
                                    const ConnectRequest& /*request*/) {
    if (host()) return host_network_is_fixed();  // fixed_membership() already says so
    if (!in_sandbox.empty()) return *excludes_other_networks();
    return {};
}

std::optional<Failure> BuiltinDriver::excludes_other_networks() const {
    if (host())
        return fail(ErrorKind::Conflict,
                    "container sharing network namespace with another container or host cannot "
                    "be connected to any other network");
    return fail(ErrorKind::Conflict,
                "container cannot be connected to multiple networks with one of the networks in "
                "private (none) mode");
}

std::optional<Failure> BuiltinDriver::fixed_membership() const {
    if (host()) return host_network_is_fixed();
    return std::nullopt;
}

}  // namespace bpfnet

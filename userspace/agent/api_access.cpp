#include "agent/api_access.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace bpfnet {

Result<ApiAccess> ApiAccess::for_group(const std::string& group) {
    ApiAccess access;
    if (group.empty()) return access;
    std::vector<char> buffer(16384);
    struct group g {};
    struct group* found = nullptr;
    if (getgrnam_r(group.c_str(), &g, buffer.data(), buffer.size(), &found) != 0 || !found)
        return fail(ErrorKind::NotFound,
                    fmt::format("--socket-group {}: no such group (create it with `groupadd {}`, "
                                "or leave the option out for root only)",
                                group, group));
    access.group_ = group;
    access.gid_ = found->gr_gid;
    return access;
}

bool ApiAccess::allows(uid_t uid, gid_t gid) const {
    if (uid == 0) return true;
    if (group_.empty() || uid == static_cast<uid_t>(-1)) return false;
    if (gid == gid_) return true;
    std::vector<char> buffer(16384);
    passwd pw{};
    passwd* user = nullptr;
    if (getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &user) != 0 || !user) return false;
    int count = 64;
    std::vector<gid_t> groups(static_cast<size_t>(count));
    if (getgrouplist(user->pw_name, user->pw_gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<size_t>(count));
        if (getgrouplist(user->pw_name, user->pw_gid, groups.data(), &count) < 0) return false;
    }
    groups.resize(static_cast<size_t>(count));
    for (gid_t g : groups)
        if (g == gid_) return true;
    return false;
}

HttpHandler ApiAccess::guard(HttpHandler handler) const {
    return [handler = std::move(handler), access = *this](const HttpRequest& r) {
        if (access.allows(r.peer_uid, r.peer_gid)) return handler(r);
        spdlog::warn("api: refused a request from uid {} gid {} ({} {})", r.peer_uid, r.peer_gid,
                     r.method, r.target);
        const std::string who = access.group_.empty() ? std::string("root")
                                                      : "root or members of group " + access.group_;
        return HttpResponse{403, "application/json",
                            nlohmann::json{{"message", fmt::format("permission denied: uid {} may "
                                                                   "not use bpfnetd (only {})",
                                                                   r.peer_uid, who)}}
                                .dump()};
    };
}

}  // namespace bpfnet

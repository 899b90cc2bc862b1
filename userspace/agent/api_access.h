// Who may use the agent's API sockets. The sockets are 0660 root:<group> (bpfnetd
// --socket-group), and every request is checked again against the caller's credentials
// (SO_PEERCRED): root, or a member of the group. A socket file made more permissive by mistake
// (or a descriptor passed to another process) still lets nobody else in.
#pragma once

#include <sys/types.h>

#include <string>

#include "agent/http_server.h"
#include "core/result.h"

namespace bpfnet {

class ApiAccess {
  public:
    // `group` empty: root only (the socket's group is root's).
    static Result<ApiAccess> for_group(const std::string& group);

    gid_t gid() const { return gid_; }
    const std::string& group() const { return group_; }
    // Root, the group as primary group, or the group among the user's supplementary groups.
    bool allows(uid_t uid, gid_t gid) const;
    // The handler, answering 403 to callers allows() refuses.
    HttpHandler guard(HttpHandler handler) const;

  private:
    std::string group_;
    gid_t gid_ = 0;
};

}  // namespace bpfnet

// Who may use the API sockets: root always, a group's members when a group is configured (by
// primary or supplementary group), nobody else; refused requests get a 403 that says why.
#include <grp.h>
#include <gtest/gtest.h>

#include "agent/api_access.h"

namespace bpfnet {
namespace {

constexpr uid_t kNobody = 65534;  // Debian's nobody, primary group nogroup
constexpr uid_t kUnknownUid = 4000001;

TEST(ApiAccess, RootOnlyByDefault) {
    auto access = ApiAccess::for_group("");
    ASSERT_TRUE(access.ok());
    EXPECT_EQ(access->gid(), 0u);
    EXPECT_TRUE(access->allows(0, 0));
    EXPECT_FALSE(access->allows(kNobody, 0));  // even with root's group as its gid
    EXPECT_FALSE(access->allows(static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
}

TEST(ApiAccess, MembersOfTheGroup) {
    const group* nogroup = getgrnam("nogroup");
    ASSERT_NE(nogroup, nullptr);
    auto access = ApiAccess::for_group("nogroup");
    ASSERT_TRUE(access.ok()) << access.error().message;
    EXPECT_EQ(access->gid(), nogroup->gr_gid);
    EXPECT_TRUE(access->allows(0, 0));
    EXPECT_TRUE(access->allows(kNobody, nogroup->gr_gid));  // primary group of the connection
    EXPECT_TRUE(access->allows(kNobody, 12345));            // nobody's own groups include it
    EXPECT_FALSE(access->allows(kUnknownUid, 12345));       // no such user, not the group's gid
    EXPECT_TRUE(access->allows(kUnknownUid, nogroup->gr_gid));
}

TEST(ApiAccess, AMissingGroupIsAClearError) {
    auto access = ApiAccess::for_group("no-such-group-bpfnet");
    ASSERT_FALSE(access.ok());
    EXPECT_EQ(access.error().kind, ErrorKind::NotFound);
    EXPECT_NE(access.error().message.find("no such group"), std::string::npos);
}

TEST(ApiAccess, RefusedRequestsGet403AndNeverReachTheHandler) {
    auto access = ApiAccess::for_group("");
    ASSERT_TRUE(access.ok());
    int calls = 0;
    HttpHandler guarded = access->guard([&](const HttpRequest&) {
        ++calls;
        return HttpResponse{200, "application/json", "{}"};
    });
    HttpRequest request;
    request.method = "GET";
    request.target = "/v1/networks";
    request.peer_uid = kNobody;
    request.peer_gid = 65534;
    const HttpResponse refused = guarded(request);
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("permission denied: uid 65534"), std::string::npos) << refused.body;
    EXPECT_EQ(calls, 0);
    request.peer_uid = 0;
    EXPECT_EQ(guarded(request).status, 200);
    EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace bpfnet

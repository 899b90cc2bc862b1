// Finding the cgroup v2 hierarchy the socket NAT attaches to.
#include <gtest/gtest.h>

#include "datapath/socket_nat.h"

namespace bpfnet {
namespace {

TEST(SocketNat, FindsTheCgroup2MountInAHybridLayout) {
    const std::string mounts =
        "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
        "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
        "cgroup2 /other cgroup2 rw 0 0\n";
    EXPECT_EQ(cgroup2_mount_point(mounts), "/sys/fs/cgroup/unified");
}

TEST(SocketNat, PureCgroupV1OrEmptyHasNone) {
    EXPECT_EQ(cgroup2_mount_point("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"), "");
    EXPECT_EQ(cgroup2_mount_point(""), "");
}

}  // namespace
}  // namespace bpfnet

// The prefix the firewall's drop rules log with, as `bpfnet monitor` reads it back.
#include <string>

#include <gtest/gtest.h>

#include "core/drop_log.h"

namespace bpfnet {
namespace {

TEST(DropLog, PrefixRoundTrips) {
    std::string reason, bridge;
    ASSERT_TRUE(parse_drop_log_prefix(drop_log_prefix("other-bridge", "bn-1"), reason, bridge));
    EXPECT_EQ(reason, "other-bridge");
    EXPECT_EQ(bridge, "bn-1");
    for (const char* other : {"", "bpfnet:", "bpfnet::bn-1 ", "IN=eth0 ", "kernel: bpfnet:x"})
        EXPECT_FALSE(parse_drop_log_prefix(other, reason, bridge)) << other;
}

}  // namespace
}  // namespace bpfnet

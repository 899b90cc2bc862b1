// A full BPF map (E2BIG from a hash map at max_entries, ENOSPC from some others) is an exhausted
// resource the user is told about, not an internal error; the service then rolls the connect back.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "maps/bpf_map.h"

namespace bpfnet {
namespace {

TEST(MapError, FullMapIsExhaustedAndSaysSo) {
    for (int err : {E2BIG, -E2BIG, ENOSPC, -ENOSPC}) {
        const Error e = map_error("bpfnet_ep_by_if update", err);
        EXPECT_EQ(e.kind, ErrorKind::Exhausted) << err;
        EXPECT_EQ(e.message, "bpfnet_ep_by_if update: the BPF map is full");
    }
}

TEST(MapError, OtherErrorsAreInternalWithTheErrno) {
    const Error e = map_error("bpfnet_net update", -EPERM);
    EXPECT_EQ(e.kind, ErrorKind::Internal);
    EXPECT_EQ(e.message, std::string("bpfnet_net update: ") + std::strerror(EPERM));
}

}  // namespace
}  // namespace bpfnet

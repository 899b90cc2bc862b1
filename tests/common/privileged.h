// Tests that need root (netns, netlink, BPF, nftables) call BPFNET_REQUIRE_PRIVILEGED() first.
// Without root they skip, unless BPFNET_REQUIRE_PRIVILEGED=1 (CI), where a skip would hide a broken
// test and is turned into a failure.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace bpfnet::testing {

inline bool privileged_required() {
    const char* v = std::getenv("BPFNET_REQUIRE_PRIVILEGED");
    return v && std::strcmp(v, "1") == 0;
}

}  // namespace bpfnet::testing

#define BPFNET_REQUIRE_PRIVILEGED()                                                         \
    do {                                                                                    \
        if (geteuid() != 0) {                                                               \
            if (::bpfnet::testing::privileged_required())                                   \
                FAIL() << "needs root, and BPFNET_REQUIRE_PRIVILEGED=1 forbids skipping";   \
            GTEST_SKIP() << "needs root (set BPFNET_REQUIRE_PRIVILEGED=1 to fail instead)"; \
        }                                                                                   \
    } while (0)

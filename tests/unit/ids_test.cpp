#include <gtest/gtest.h>

#include "core/ids.h"

namespace bpfnet {
namespace {

struct Named {
    std::string id;
    std::string name;
};

TEST(Ids, GeneratedIdsAre64LowercaseHexAndDistinct) {
    auto a = generate_id();
    auto b = generate_id();
    EXPECT_EQ(a.size(), 64u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, b);
}

TEST(Ids, ResolveByIdNameAndUniquePrefix) {
    std::vector<Named> objs{{"abc123" + std::string(58, '0'), "web"},
                            {"abd999" + std::string(58, '1'), "db"}};
    EXPECT_EQ(resolve_ref(objs, "web", "network")->name, "web");
    EXPECT_EQ(resolve_ref(objs, "abc", "network")->name, "web");
    EXPECT_EQ(resolve_ref(objs, objs[1].id, "network")->name, "db");
    auto ambiguous = resolve_ref(objs, "ab", "network");
    ASSERT_FALSE(ambiguous);
    EXPECT_EQ(ambiguous.error().kind, ErrorKind::Conflict);
    auto missing = resolve_ref(objs, "zzz", "network");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);
    EXPECT_EQ(missing.error().message, "network zzz not found");
}

TEST(Ids, NameBeatsIdPrefix) {
    // docker resolves an exact name before an ID prefix.
    std::vector<Named> objs{{"beef" + std::string(60, '0'), "x"},
                            {"cafe" + std::string(60, '0'), "beef"}};
    EXPECT_EQ(resolve_ref(objs, "beef", "network")->name, "beef");
}

}  // namespace
}  // namespace bpfnet

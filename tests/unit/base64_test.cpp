#include <gtest/gtest.h>

#include "core/base64.h"

namespace bpfnet {
namespace {

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), std::string(plain));
    }
}

TEST(Base64, RoundTripsEveryByte) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (size_t len = 0; len <= all.size(); len += 37)
        EXPECT_EQ(base64_decode(base64_encode(all.substr(0, len))), all.substr(0, len));
}

TEST(Base64, RejectsWhatIsNotBase64) {
    for (const char* bad : {"Zg=", "Z===", "Zm9v!", "Zg==Zg==", "=Zm9", "Zm=v"})
        EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

}  // namespace
}  // namespace bpfnet

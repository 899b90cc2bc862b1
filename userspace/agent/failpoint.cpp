#include "agent/failpoint.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

namespace bpfnet {
namespace {

#ifdef BPFNET_SANITIZER_FAILPOINTS
constexpr std::size_t kBlockBytes = 4096;

// A heap block whose only pointer is dropped: LeakSanitizer reports it (and this function) at exit.
[[gnu::noinline]] void leak_block() {
    void* block = std::malloc(kBlockBytes);
    if (block) std::memset(block, 0x5a, kBlockBytes);
    // The asm "uses" the pointer, so the compiler cannot drop the allocation as unused.
    asm volatile("" : : "r"(block) : "memory");
}

// One byte past the end of a heap block: AddressSanitizer reports a heap-buffer-overflow and ends
// the agent in the middle of its operation.
[[gnu::noinline]] void read_past_end() {
    auto* block = static_cast<volatile char*>(std::calloc(kBlockBytes, 1));
    if (!block) return;
    // Hidden from the compiler, which would otherwise warn about the deliberate overflow.
    std::size_t end = kBlockBytes;
    asm volatile("" : "+r"(end));
    char past_end = block[end];
    asm volatile("" : : "r"(past_end));
    std::free(const_cast<char*>(block));
}
#endif

bool listed(const std::string& points, std::string_view entry) {
    return points.find("," + std::string(entry) + ",") != std::string::npos;
}

}  // namespace

void failpoint(std::string_view name) {
    static const std::string points = [] {
        const char* env = std::getenv("BPFNET_FAILPOINTS");
        return env ? "," + std::string(env) + "," : std::string();
    }();
    if (points.empty()) return;
#ifdef BPFNET_SANITIZER_FAILPOINTS
    if (listed(points, std::string(name) + "=leak")) {
        spdlog::critical("failpoint {} reached: leaking {} bytes", name, kBlockBytes);
        leak_block();
    }
    if (listed(points, std::string(name) + "=oob")) {
        spdlog::critical("failpoint {} reached: reading past the end of a heap block", name);
        spdlog::default_logger()->flush();
        read_past_end();
    }
#endif
    if (!listed(points, name)) return;
    spdlog::critical("failpoint {} reached: killing the agent", name);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
}

}  // namespace bpfnet

#include "datapath/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

namespace bpfnet {
namespace {

// The kernel's ENOTSUPP (include/linux/errno.h) is not in user-space errno.h, but bpf() returns it
// for e.g. unsupported attach types; strerror() only says "Unknown error 524".
constexpr int kKernelEnotsupp = 524;

spdlog::level::level_enum to_spdlog_level(enum libbpf_print_level level) {
    switch (level) {
        case LIBBPF_WARN:
            return spdlog::level::warn;
        // libbpf's INFO is progress chatter (kernel BTF found, maps reused); useful only when
        // debugging, so it must not clutter the agent's default info level.
        case LIBBPF_INFO:
            return spdlog::level::debug;
        case LIBBPF_DEBUG:
            break;
    }
    return spdlog::level::trace;
}

thread_local int expected_kernel_errors = 0;

// libbpf prefixes its messages with "libbpf: ".
bool is_kernel_extack(const char* format) {
    return std::strstr(format, "Kernel error message") != nullptr;
}

int print_to_spdlog(enum libbpf_print_level level, const char* format, va_list args) {
    const auto spd_level = expected_kernel_errors > 0 && is_kernel_extack(format)
                               ? spdlog::level::debug
                               : to_spdlog_level(level);
    auto* logger = spdlog::default_logger_raw();
    // Formatting the verifier's DEBUG output is not free; skip what the logger would drop anyway.
    if (!logger->should_log(spd_level)) return 0;

    char small[512];
    va_list copy;
    va_copy(copy, args);
    const int needed = std::vsnprintf(small, sizeof(small), format, args);
    std::string message;
    if (needed < 0) {
        message = format;  // cannot format: at least show the template
    } else if (static_cast<size_t>(needed) < sizeof(small)) {
        message.assign(small, static_cast<size_t>(needed));
    } else {
        // Verifier logs routinely exceed any fixed buffer.
        std::vector<char> big(static_cast<size_t>(needed) + 1);
        std::vsnprintf(big.data(), big.size(), format, copy);
        message.assign(big.data(), static_cast<size_t>(needed));
    }
    va_end(copy);

    // libbpf terminates its messages with '\n'; spdlog adds its own.
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r'))
        message.pop_back();
    if (!message.empty()) logger->log(spd_level, "{}", message);
    return 0;
}

}  // namespace

ExpectedKernelErrors::ExpectedKernelErrors() {
    ++expected_kernel_errors;
}
ExpectedKernelErrors::~ExpectedKernelErrors() {
    --expected_kernel_errors;
}

void route_libbpf_log_to_spdlog() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(print_to_spdlog); });
}

std::string libbpf_error_text(int err) {
    err = err < 0 ? -err : err;
    if (err == kKernelEnotsupp) return "Operation not supported by the kernel (ENOTSUPP)";
    char buf[256];
    if (libbpf_strerror(err, buf, sizeof(buf)) != 0) return "error " + std::to_string(err);
    return buf;
}

Error libbpf_error(std::string_view what, int err) {
    err = err < 0 ? -err : err;
    std::string message = std::string(what) + ": " + libbpf_error_text(err);
    ErrorKind kind = ErrorKind::Internal;
    switch (err) {
        case EPERM:
            message += " (needs CAP_BPF/root)";
            kind = ErrorKind::Unsupported;
            break;
        case ENOSYS:
        case EOPNOTSUPP:
        case kKernelEnotsupp:
            kind = ErrorKind::Unsupported;
            break;
        default:
            break;
    }
    return make_error(kind, std::move(message));
}

}  // namespace bpfnet

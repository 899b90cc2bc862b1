// libbpf diagnostics in bpfnet's terms: libbpf's own log (including the verifier's) goes to spdlog
// instead of stderr, and libbpf error codes become Errors with text a user can act on.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace bpfnet {

// Installs a libbpf print callback that forwards every message to the default spdlog logger:
// libbpf WARN -> warn (load failures, with the verifier log), INFO -> debug, DEBUG -> trace.
// Idempotent and thread-safe; BpfSkeleton::open() calls it, so no libbpf output bypasses spdlog.
void route_libbpf_log_to_spdlog();

// While alive, libbpf's relay of the kernel's extended ack on this thread ("Kernel error message:
// ...") goes to debug instead of warn. For netlink calls whose failure is an expected answer (is
// there a clsact yet? is our filter there?), which the caller handles; a real failure still
// surfaces as the caller's Error.
class ExpectedKernelErrors {
  public:
    ExpectedKernelErrors();
    ~ExpectedKernelErrors();
    ExpectedKernelErrors(const ExpectedKernelErrors&) = delete;
    ExpectedKernelErrors& operator=(const ExpectedKernelErrors&) = delete;
};

// Text for a libbpf/kernel error code (either sign), including libbpf's private codes
// (LIBBPF_ERRNO__*) and the kernel-internal ENOTSUPP that bpf() leaks to user space.
std::string libbpf_error_text(int err);

// An Error for "`what` failed with err": Unsupported when the kernel or our privileges do not allow
// BPF (EPERM, ENOSYS, EOPNOTSUPP, ENOTSUPP), Internal otherwise. EPERM gets a hint about CAP_BPF.
Error libbpf_error(std::string_view what, int err);

}  // namespace bpfnet

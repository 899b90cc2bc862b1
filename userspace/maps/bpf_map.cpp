#include "maps/bpf_map.h"

#include <cstring>

#include <fmt/format.h>

namespace bpfnet {

Error map_error(std::string_view what, int err) {
    err = err < 0 ? -err : err;
    if (err == E2BIG || err == ENOSPC) {
        return Error{ErrorKind::Exhausted, fmt::format("{}: the BPF map is full", what)};
    }
    return Error{ErrorKind::Internal, fmt::format("{}: {}", what, std::strerror(err))};
}

}  // namespace bpfnet

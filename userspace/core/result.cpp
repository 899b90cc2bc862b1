#include "core/result.h"

namespace bpfnet {

const char* to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidArgument:
            return "invalid argument";
        case ErrorKind::NotFound:
            return "not found";
        case ErrorKind::Conflict:
            return "conflict";
        case ErrorKind::Exhausted:
            return "exhausted";
        case ErrorKind::Unsupported:
            return "unsupported";
        case ErrorKind::Internal:
            return "internal error";
    }
    return "error";
}

}  // namespace bpfnet

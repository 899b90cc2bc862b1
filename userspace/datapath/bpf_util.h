// Small helpers shared by the BPF datapath's loaders: map errors as Result errors,
// and a snapshot of a map's keys.
#pragma once

#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/fd.h"
#include "core/result.h"

namespace bpfnet {

inline Error map_error(const char* what, int err) {
    err = err < 0 ? -err : err;
    if (err == E2BIG || err == ENOSPC) {
        return Error{ErrorKind::Exhausted, fmt::format("{}: the BPF map is full", what)};
    }
    return Error{ErrorKind::Internal, fmt::format("{}: {}", what, std::strerror(err))};
}

// Collects every key of a map first, so deleting while walking cannot skip entries.
template <typename Key>
std::vector<Key> map_keys(int fd) {
    std::vector<Key> keys;
    Key key{};
    Key next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        keys.push_back(next);
        key = next;
        prev = &key;
    }
    return keys;
}

}  // namespace bpfnet

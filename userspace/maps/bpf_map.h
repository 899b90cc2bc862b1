// A BPF map as a typed handle: put/get/erase/keys over a map fd with the key and value types of
// include/bpfnet/abi.h, and map errors said the same way everywhere. It borrows the fd (the
// libbpf skeleton that loaded the map owns and closes it), so copies are cheap and never close.
// Per-CPU maps hold one Value per possible CPU: for those only keys() and erase() apply.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace bpfnet {

// A failed map operation as an Error: a full map (E2BIG from a hash map at max_entries, ENOSPC
// from some others) is an exhausted resource the user is told about, anything else internal.
Error map_error(std::string_view what, int err);

template <typename Key, typename Value>
class BpfMap {
  public:
    BpfMap() = default;
    // `name` is the map's name in the BPF object, used in error messages ("bpfnet_net update").
    BpfMap(int fd, const char* name) : fd_(fd), name_(name) {}

    int fd() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    const char* name() const { return name_; }

    Status put(const Key& key, const Value& value, uint64_t flags = BPF_ANY) {
        if (int err = bpf_map_update_elem(fd_, &key, &value, flags); err)
            return fail(map_error(std::string(name_) + " update", err));
        return {};
    }
    // BPF_NOEXIST: false, and nothing written, when the key is already there.
    Result<bool> insert(const Key& key, const Value& value) {
        const int err = bpf_map_update_elem(fd_, &key, &value, BPF_NOEXIST);
        if (err == -EEXIST) return false;
        if (err) return fail(map_error(std::string(name_) + " update", err));
        return true;
    }
    std::optional<Value> get(const Key& key) const {
        Value value{};
        if (bpf_map_lookup_elem(fd_, &key, &value) != 0) return std::nullopt;
        return value;
    }
    // True when the key was there and is gone now.
    bool erase(const Key& key) { return bpf_map_delete_elem(fd_, &key) == 0; }
    // Deletes the key; only a failure other than its absence is an error.
    Status remove(const Key& key) {
        if (int err = bpf_map_delete_elem(fd_, &key); err && err != -ENOENT)
            return fail(map_error(std::string(name_) + " delete", err));
        return {};
    }
    // Every key, collected first so that deleting while walking them cannot skip entries.
    std::vector<Key> keys() const {
        std::vector<Key> keys;
        Key key{};
        Key next{};
        const void* prev = nullptr;
        while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
            keys.push_back(next);
            key = next;
            prev = &key;
        }
        return keys;
    }

  private:
    int fd_ = -1;
    const char* name_ = "";
};

}  // namespace bpfnet

#include "core/ids.h"

#include <random>

namespace bpfnet {

std::string generate_id() {
    static thread_local std::random_device device;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id(64, '0');
    for (size_t i = 0; i < id.size(); i += 8) {
        uint32_t bits = device();
        for (size_t k = 0; k < 8; ++k, bits >>= 4) id[i + k] = kHex[bits & 0xf];
    }
    return id;
}

bool is_valid_id(std::string_view id) {
    if (id.size() != 64) return false;
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool is_valid_name(std::string_view name) {
    if (name.empty() || name.size() > 128) return false;
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name[0])) return false;
    for (char c : name)
        if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
    return true;
}

}  // namespace bpfnet

// Object identifiers: 64 lowercase hex characters like docker's, resolvable by full ID, exact name
// or any unique ID prefix (in that order, as docker does).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/result.h"

namespace bpfnet {

std::string generate_id();
bool is_valid_name(std::string_view name);  // [a-zA-Z0-9][a-zA-Z0-9_.-]*, like docker's
bool is_valid_id(std::string_view id);      // 64 lowercase hex digits, as Docker's IDs are

// Resolves `ref` among objects that have `.id` and `.name`. `kind` names the object in errors.
template <typename T>
Result<T> resolve_ref(const std::vector<T>& objects, std::string_view ref, std::string_view kind) {
    if (ref.empty())
        return fail(ErrorKind::InvalidArgument, fmt::format("{} name or ID is empty", kind));
    for (const auto& o : objects)
        if (o.id == ref) return o;
    for (const auto& o : objects)
        if (o.name == ref) return o;
    const T* match = nullptr;
    for (const auto& o : objects) {
        if (o.id.compare(0, ref.size(), ref) == 0) {
            if (match) {
                return fail(ErrorKind::Conflict,
                            fmt::format("{} ID prefix \"{}\" is ambiguous: matches {} and {}", kind,
                                        ref, match->id.substr(0, 12), o.id.substr(0, 12)));
            }
            match = &o;
        }
    }
    if (!match) return fail(ErrorKind::NotFound, fmt::format("{} {} not found", kind, ref));
    return *match;
}

}  // namespace bpfnet

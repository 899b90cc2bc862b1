#include "core/json_fields.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace bpfnet {

namespace {

using nlohmann::json;

Failure wrong_type(const std::string& path, const char* expected) {
    return fail(ErrorKind::InvalidArgument, fmt::format("field \"{}\" must be {}", path, expected));
}

// What a left-out object or array field reads as; static so views of it stay valid.
const json& empty_object() {
    static const json empty = json::object();
    return empty;
}
const json& empty_array() {
    static const json empty = json::array();
    return empty;
}

}  // namespace

Result<json> parse_json(std::string_view text) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        // parse_error for bad syntax, out_of_range for a number literal that overflows a
        // double (e.g. 1e999): both are the sender's mistake, never the agent's.
        return fail(ErrorKind::InvalidArgument, e.what());
    }
}

Result<JsonObject> JsonObject::root(const json& document, std::string_view what) {
    if (!document.is_object()) {
        return fail(ErrorKind::InvalidArgument, fmt::format("{} must be a JSON object", what));
    }
    return JsonObject(document, "");
}

std::string JsonObject::path_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

bool JsonObject::has(std::string_view key) const {
    auto it = value_->find(key);
    return it != value_->end() && !it->is_null();
}

Result<const json*> JsonObject::find(std::string_view key, Presence presence) const {
    auto it = value_->find(key);
    if (it != value_->end() && !it->is_null()) return &*it;
    if (presence == Presence::Required) {
        return fail(ErrorKind::InvalidArgument, fmt::format("missing field \"{}\"", path_of(key)));
    }
    return static_cast<const json*>(nullptr);
}

Result<std::string> JsonObject::string(std::string_view key, Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(const json* value, find(key, presence));
    if (value == nullptr) return std::string();
    if (!value->is_string()) return wrong_type(path_of(key), "a string");
    return value->get<std::string>();
}

Result<bool> JsonObject::boolean(std::string_view key, Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(const json* value, find(key, presence));
    if (value == nullptr) return false;
    if (!value->is_boolean()) return wrong_type(path_of(key), "a boolean");
    return value->get<bool>();
}

Result<int64_t> JsonObject::integer(std::string_view key, Presence presence, int64_t min,
                                    int64_t max) const {
    BPFNET_ASSIGN_OR_RETURN(const json* value, find(key, presence));
    if (value == nullptr) return int64_t{0};
    if (!value->is_number_integer()) return wrong_type(path_of(key), "an integer");
    // Unsigned values above int64's range are kept unsigned by nlohmann; compare them as such.
    const bool in_range =
        value->is_number_unsigned()
            ? max >= 0 && value->get<uint64_t>() <= static_cast<uint64_t>(max) &&
                  (min <= 0 || value->get<uint64_t>() >= static_cast<uint64_t>(min))
            : value->get<int64_t>() >= min && value->get<int64_t>() <= max;
    if (!in_range) {
        return fail(
            ErrorKind::InvalidArgument,
            fmt::format("field \"{}\" must be an integer from {} to {}", path_of(key), min, max));
    }
    return value->is_number_unsigned() ? static_cast<int64_t>(value->get<uint64_t>())
                                       : value->get<int64_t>();
}

Result<JsonObject> JsonObject::object(std::string_view key, Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(const json* value, find(key, presence));
    if (value == nullptr) return JsonObject(empty_object(), path_of(key));
    if (!value->is_object()) return wrong_type(path_of(key), "an object");
    return JsonObject(*value, path_of(key));
}

Result<JsonArray> JsonObject::array(std::string_view key, Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(const json* value, find(key, presence));
    if (value == nullptr) return JsonArray(empty_array(), path_of(key));
    if (!value->is_array()) return wrong_type(path_of(key), "an array");
    return JsonArray(*value, path_of(key));
}

Result<std::map<std::string, std::string>> JsonObject::string_map(std::string_view key,
                                                                  Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(JsonObject object, this->object(key, presence));
    std::map<std::string, std::string> out;
    for (const auto& [name, value] : object.raw().items()) {
        if (!value.is_string()) {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format("field \"{}\": value of \"{}\" must be a string", object.path(), name));
        }
        out[name] = value.get<std::string>();
    }
    return out;
}

Result<std::vector<std::string>> JsonObject::string_array(std::string_view key,
                                                          Presence presence) const {
    BPFNET_ASSIGN_OR_RETURN(JsonArray array, this->array(key, presence));
    std::vector<std::string> out;
    out.reserve(array.size());
    for (size_t i = 0; i < array.size(); ++i) {
        BPFNET_ASSIGN_OR_RETURN(std::string text, array.string(i));
        out.push_back(std::move(text));
    }
    return out;
}

Failure JsonObject::invalid(std::string_view key, std::string_view reason) const {
    return fail(ErrorKind::InvalidArgument, fmt::format("field \"{}\": {}", path_of(key), reason));
}

size_t JsonArray::size() const {
    return value_->size();
}

std::string JsonArray::path_of(size_t index) const {
    return fmt::format("{}[{}]", path_, index);
}

Result<JsonObject> JsonArray::object(size_t index) const {
    const json& value = (*value_)[index];
    if (!value.is_object()) return wrong_type(path_of(index), "an object");
    return JsonObject(value, path_of(index));
}

Result<std::string> JsonArray::string(size_t index) const {
    const json& value = (*value_)[index];
    if (!value.is_string()) return wrong_type(path_of(index), "a string");
    return value.get<std::string>();
}

}  // namespace bpfnet

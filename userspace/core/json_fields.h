// The one way bpfnet decodes JSON that comes from outside the program: request bodies of the
// native and Docker plugin APIs, records read back from the state stores. Typed getters return
// Result instead of throwing, and a missing field or a wrong type is an InvalidArgument naming
// the field by its path in the document (`field "IPAM.Config[0].Subnet" must be a string`), so
// whoever wrote the document learns which value to fix, however deep it sits.
//
// Absent and null are the same thing for a field: JSON clients commonly send null for "not set".
// The views refer to the document they were made from, which must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/result.h"

namespace bpfnet {

// Parses JSON text. nlohmann reports a syntax error only by throwing, and its message says where
// the text broke; this is the one place bpfnet catches it, and the message is the error's.
Result<nlohmann::json> parse_json(std::string_view text);

// Whether a field may be left out (or null).
enum class Presence { Optional, Required };

class JsonArray;

// One JSON object of a document, with its path from the document's root.
class JsonObject {
  public:
    // The document itself, which must be an object; `what` names it in the error ("request body
    // must be a JSON object").
    static Result<JsonObject> root(const nlohmann::json& document,
                                   std::string_view what = "document");

    const std::string& path() const { return path_; }
    // The path of one of this object's fields: "IPAM.Config[0]" and "Subnet" make
    // "IPAM.Config[0].Subnet".
    std::string path_of(std::string_view key) const;
    const nlohmann::json& raw() const { return *value_; }

    // Whether the field is present and not null.
    bool has(std::string_view key) const;

    // Each getter fails when the field has another type, or is left out but Required. A left-out
    // Optional field reads as "", false, 0, or an empty object, array or map.
    Result<std::string> string(std::string_view key, Presence presence = Presence::Optional) const;
    Result<bool> boolean(std::string_view key, Presence presence = Presence::Optional) const;
    // An integer in [min, max]; anything else (a fraction, a number out of range) fails.
    Result<int64_t> integer(std::string_view key, Presence presence = Presence::Optional,
                            int64_t min = std::numeric_limits<int64_t>::min(),
                            int64_t max = std::numeric_limits<int64_t>::max()) const;
    Result<JsonObject> object(std::string_view key, Presence presence = Presence::Optional) const;
    Result<JsonArray> array(std::string_view key, Presence presence = Presence::Optional) const;
    // An object whose values are all strings, such as `-o key=value` options.
    Result<std::map<std::string, std::string>> string_map(
        std::string_view key, Presence presence = Presence::Optional) const;
    // An array whose elements are all strings.
    Result<std::vector<std::string>> string_array(std::string_view key,
                                                  Presence presence = Presence::Optional) const;

    // For a field of the right type whose value is wrong: `field "<path>": <reason>`.
    Failure invalid(std::string_view key, std::string_view reason) const;

  private:
    friend class JsonArray;
    JsonObject(const nlohmann::json& value, std::string path)
        : value_(&value), path_(std::move(path)) {}
    // The field's value; nullptr when it is left out and may be.
    Result<const nlohmann::json*> find(std::string_view key, Presence presence) const;

    const nlohmann::json* value_;
    std::string path_;
};

// One JSON array of a document, with its path. Its elements have no "absent": a null element is
// of the wrong type.
class JsonArray {
  public:
    size_t size() const;
    bool empty() const { return size() == 0; }
    const std::string& path() const { return path_; }
    // "IPAM.Config" and 0 make "IPAM.Config[0]".
    std::string path_of(size_t index) const;
    const nlohmann::json& raw() const { return *value_; }

    Result<JsonObject> object(size_t index) const;
    Result<std::string> string(size_t index) const;

  private:
    friend class JsonObject;
    JsonArray(const nlohmann::json& value, std::string path)
        : value_(&value), path_(std::move(path)) {}

    const nlohmann::json* value_;
    std::string path_;
};

// A required string field that holds a typed value (an address, a state), converted by `parse`
// (Ipv4::parse, parse_lifecycle, ...) whose error gets the field's path in front.
template <typename Parse>
auto parsed_field(const JsonObject& object, std::string_view key, Parse&& parse)
    -> decltype(parse(std::string_view{})) {
    BPFNET_ASSIGN_OR_RETURN(std::string text, object.string(key, Presence::Required));
    auto parsed = parse(std::string_view(text));
    if (!parsed) return object.invalid(key, parsed.error().message);
    return parsed;
}

}  // namespace bpfnet

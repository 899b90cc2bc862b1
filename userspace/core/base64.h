// Base64 (RFC 4648, standard alphabet, padded): etcd's JSON API carries keys and values this way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bpfnet {

std::string base64_encode(std::string_view bytes);
// nullopt for anything that is not canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace bpfnet

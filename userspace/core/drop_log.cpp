#include "core/drop_log.h"

#include <fmt/format.h>

namespace bpfnet {

std::string drop_log_prefix(std::string_view reason, std::string_view bridge) {
    return fmt::format("{}{}:{} ", kDropLogPrefix, reason, bridge);
}

bool parse_drop_log_prefix(std::string_view prefix, std::string& reason, std::string& bridge) {
    const std::string_view head = kDropLogPrefix;
    if (prefix.substr(0, head.size()) != head) return false;
    std::string_view rest = prefix.substr(head.size());
    while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    reason = std::string(rest.substr(0, colon));
    bridge = std::string(rest.substr(colon + 1));
    return true;
}

}  // namespace bpfnet

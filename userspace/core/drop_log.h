// How the kernel datapath's nftables firewall logs its drops for `bpfnet monitor`: to one NFLOG
// group, every agent on the host alike, each drop with the prefix "bpfnet:<reason>:<bridge> ",
// the reason one of bpfnet's drop reason words (other-bridge, unpublished), so the monitor can
// name it as it names the BPF programs' drops. The firewall writes it, the monitor reads it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bpfnet {

inline constexpr uint16_t kDropLogGroup = 2470;
inline constexpr const char* kDropLogPrefix = "bpfnet:";
std::string drop_log_prefix(std::string_view reason, std::string_view bridge);
// Its inverse: false for a prefix that is not bpfnet's.
bool parse_drop_log_prefix(std::string_view prefix, std::string& reason, std::string& bridge);

}  // namespace bpfnet

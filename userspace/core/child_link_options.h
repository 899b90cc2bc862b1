// Options of macvlan and ipvlan networks (`-o parent=IF -o macvlan_mode=...`), as Docker's
// drivers take them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/result.h"

namespace bpfnet {

namespace opt {
inline constexpr const char* kParent = "parent";
inline constexpr const char* kMacvlanMode = "macvlan_mode";
inline constexpr const char* kIpvlanMode = "ipvlan_mode";
}  // namespace opt

struct ChildLinkOptions {
    std::string parent;               // empty: an internal parent (the network is internal)
    std::string mode;                 // macvlan: bridge (default), vepa, private, passthru;
                                      // ipvlan: l2 (default), l3, l3s
    std::optional<uint16_t> vlan_id;  // parent "base.N": 802.1Q VLAN N on base
    std::string vlan_base;
};

// `driver` is "macvlan" or "ipvlan". A parent "eth0.10" names VLAN 10 on eth0 (1..4094).
Result<ChildLinkOptions> parse_child_link_options(
    const std::string& driver, const std::map<std::string, std::string>& options);

}  // namespace bpfnet

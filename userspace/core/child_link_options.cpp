#include "core/child_link_options.h"

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "core/options.h"

namespace bpfnet {

Result<ChildLinkOptions> parse_child_link_options(
    const std::string& driver, const std::map<std::string, std::string>& options) {
    ChildLinkOptions out;
    const bool macvlan = driver == "macvlan";
    out.mode = macvlan ? "bridge" : "l2";
    const char* mode_key = macvlan ? opt::kMacvlanMode : opt::kIpvlanMode;
    if (auto it = options.find(mode_key); it != options.end()) {
        static constexpr std::array<const char*, 4> kMacvlanModes{"bridge", "vepa", "private",
                                                                  "passthru"};
        static constexpr std::array<const char*, 3> kIpvlanModes{"l2", "l3", "l3s"};
        bool known = false;
        if (macvlan)
            for (const char* m : kMacvlanModes) known = known || it->second == m;
        else
            for (const char* m : kIpvlanModes) known = known || it->second == m;
        if (!known) {
            return fail(
                ErrorKind::InvalidArgument,
                fmt::format("invalid value \"{}\" for option {}: expected {}", it->second, mode_key,
                            macvlan ? "bridge, vepa, private or passthru" : "l2, l3 or l3s"));
        }
        out.mode = it->second;
    }
    if (auto it = options.find(opt::kParent); it != options.end() && !it->second.empty()) {
        out.parent = it->second;
        if (!is_valid_ifname(out.parent)) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid value \"{}\" for option {}: not an interface name",
                                    out.parent, opt::kParent));
        }
        // Docker's convention: "eth0.10" is VLAN 10 on eth0, made on demand.
        if (auto dot = out.parent.rfind('.'); dot != std::string::npos && dot > 0) {
            const std::string id_text = out.parent.substr(dot + 1);
            unsigned id = 0;
            auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
            if (!id_text.empty() && ec == std::errc{} && ptr == id_text.data() + id_text.size()) {
                if (id < 1 || id > 4094) {
                    return fail(ErrorKind::InvalidArgument,
                                fmt::format("invalid VLAN ID {} in parent {}: expected 1 to 4094",
                                            id_text, out.parent));
                }
                out.vlan_id = static_cast<uint16_t>(id);
                out.vlan_base = out.parent.substr(0, dot);
            }
        }
    }
    return out;
}

}  // namespace bpfnet

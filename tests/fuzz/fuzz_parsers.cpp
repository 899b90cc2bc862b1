// libFuzzer target: the parsers every user-supplied string goes through (addresses, CIDRs, MACs,
// `-p` port specs, port ranges, `-o key=value`, bridge and macvlan/ipvlan options). Each must
// answer with a value or an error; a crash, a hang or a sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/child_link_options.h"
#include "core/ipv4.h"
#include "core/options.h"
#include "core/ports.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bpfnet;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)Ipv4::parse(text);
    (void)Cidr::parse(text);
    (void)Cidr::parse(text, /*allow_bare_address=*/true);
    (void)MacAddr::parse(text);
    (void)parse_publish(text);
    (void)parse_port_range(text);
    (void)parse_proto(text);
    (void)parse_datapath_mode(text);
    (void)parse_bool("fuzz", text);
    // Options: one "key=value" per line, as a network's -o options.
    std::map<std::string, std::string> options;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        if (auto kv = parse_key_value(text.substr(start, end - start)); kv)
            options[kv->first] = kv->second;
        start = end + 1;
    }
    (void)parse_bridge_options(options);
    (void)parse_child_link_options("macvlan", options);
    (void)parse_child_link_options("ipvlan", options);
    return 0;
}

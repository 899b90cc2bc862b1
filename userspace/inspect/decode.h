// Decoding of bpfnet's map entries into words: every key and value layout of include/bpfnet/abi.h
// becomes a JSON object with named fields (addresses as dotted quads, MACs, ports in host order,
// protocols, flags and drop reasons by name), never raw bytes. Pure logic: interface names come
// from a resolver the caller passes, so the decoders are unit-tested without a kernel.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bpfnet::inspect {

using json = nlohmann::ordered_json;

// ifindex -> interface name ("" when unknown, e.g. the interface is gone).
using IfnameResolver = std::function<std::string(uint32_t)>;
// What the numbers in map entries name on this host. Either may be empty (nothing resolved).
struct Names {
    IfnameResolver ifname;
    // A network's datapath ID -> its bridge's name ("" when unknown).
    std::function<std::string(uint32_t)> network_bridge;
};

// The words for the datapath's enums and flags.
std::string drop_reason_name(uint32_t reason);   // "spoofed-mac", ...; "reason-N" if unknown
std::string drop_reason_text(uint32_t reason);   // a sentence for monitor output
std::string nat_counter_name(uint32_t counter);  // "dnat-new", ...
std::string protocol_name(uint8_t protocol);     // "tcp", "udp", "icmp", "sctp", or the number
std::optional<uint8_t> protocol_number(const std::string& name);  // inverse of protocol_name
std::vector<std::string> ct_flag_words(uint16_t flags);
std::vector<std::string> net_flag_words(uint32_t flags);
std::string ipv4_text(uint32_t network_order);
std::string mac_text(const uint8_t mac[6]);

// How one of bpfnet's maps is read: its entries' key and value decoders, and whether its values
// are per-CPU counters to be summed (every field a __u64).
struct MapLayout {
    std::string name;
    std::string what;  // one line: what the map holds
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    bool per_cpu_sum = false;
    std::function<json(const uint8_t* key, const Names&)> key;
    // `now_ns`: CLOCK_MONOTONIC now, for expiry times.
    std::function<json(const uint8_t* value, const Names&, uint64_t now_ns)> value;
};

// The layout for a map pinned under this name; nullptr for a name bpfnet does not define.
const MapLayout* map_layout(const std::string& name);
const std::vector<MapLayout>& map_layouts();

// Per-CPU values come as one slot per possible CPU, each rounded up to 8 bytes: sums the __u64
// fields of all slots into one value of `value_size` bytes.
std::vector<uint8_t> sum_per_cpu(std::span<const uint8_t> slots, uint32_t value_size,
                                 unsigned cpus);

// "k=v k=v ..." for text output of a decoded object (lists joined with ",").
std::string fields_text(const json& object);

}  // namespace bpfnet::inspect

// IPv4 addresses, CIDR prefixes and MAC addresses as value types with strict parsing.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace bpfnet {

// An IPv4 address held in host byte order so arithmetic (next address, ranges) is natural.
struct Ipv4 {
    uint32_t value = 0;

    static Result<Ipv4> parse(std::string_view text);
    std::string str() const;
    uint32_t network_order() const;
    static Ipv4 from_network_order(uint32_t be);

    auto operator<=>(const Ipv4&) const = default;
};

// A prefix such as 10.0.0.0/24. `addr` keeps the host bits as written, so "10.0.0.1/24" can
// describe an interface address; network() masks them.
struct Cidr {
    Ipv4 addr;
    uint8_t prefix_len = 32;

    // Accepts "a.b.c.d/n"; with allow_bare_address, "a.b.c.d" means /32.
    static Result<Cidr> parse(std::string_view text, bool allow_bare_address = false);
    std::string str() const;

    uint32_t mask() const;
    Ipv4 network() const;
    Ipv4 broadcast() const;
    Cidr masked() const { return Cidr{network(), prefix_len}; }
    bool is_canonical() const { return addr == network(); }
    uint64_t size() const { return uint64_t{1} << (32 - prefix_len); }
    bool contains(Ipv4 ip) const;
    bool contains(const Cidr& inner) const;
    bool overlaps(const Cidr& other) const;

    auto operator<=>(const Cidr&) const = default;
};

struct MacAddr {
    std::array<uint8_t, 6> bytes{};

    static Result<MacAddr> parse(std::string_view text);
    // Docker's convention: 02:42 followed by the four bytes of the IPv4 address.
    static MacAddr from_ipv4(Ipv4 ip);
    std::string str() const;
    bool is_multicast() const { return bytes[0] & 1; }
    bool is_zero() const;

    auto operator<=>(const MacAddr&) const = default;
};

}  // namespace bpfnet

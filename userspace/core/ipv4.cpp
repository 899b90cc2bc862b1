#include "core/ipv4.h"

#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

namespace bpfnet {

namespace {

Result<uint32_t> parse_decimal(std::string_view text, uint32_t max, std::string_view what,
                               std::string_view whole) {
    uint32_t out = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || out > max ||
        (text.size() > 1 && text[0] == '0')) {
        return fail(ErrorKind::InvalidArgument, fmt::format("invalid {} in \"{}\"", what, whole));
    }
    return out;
}

}  // namespace

Result<Ipv4> Ipv4::parse(std::string_view text) {
    uint32_t value = 0;
    std::string_view rest = text;
    for (int i = 0; i < 4; ++i) {
        auto dot = rest.find('.');
        if ((i < 3) != (dot != std::string_view::npos)) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid IPv4 address \"{}\"", text));
        }
        auto part = rest.substr(0, dot);
        auto octet = parse_decimal(part, 255, "IPv4 address", text);
        if (!octet) return fail(octet.error());
        value = (value << 8) | *octet;
        rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    }
    return Ipv4{value};
}

std::string Ipv4::str() const {
    return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff,
                       value & 0xff);
}

uint32_t Ipv4::network_order() const {
    return htonl(value);
}
Ipv4 Ipv4::from_network_order(uint32_t be) {
    return Ipv4{ntohl(be)};
}

Result<Cidr> Cidr::parse(std::string_view text, bool allow_bare_address) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        if (!allow_bare_address) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid CIDR \"{}\": expected address/prefix-length", text));
        }
        auto ip = Ipv4::parse(text);
        if (!ip) return fail(ip.error());
        return Cidr{*ip, 32};
    }
    auto ip = Ipv4::parse(text.substr(0, slash));
    if (!ip) return fail(ErrorKind::InvalidArgument, fmt::format("invalid CIDR \"{}\"", text));
    auto len = parse_decimal(text.substr(slash + 1), 32, "prefix length", text);
    if (!len) return fail(len.error());
    return Cidr{*ip, static_cast<uint8_t>(*len)};
}

std::string Cidr::str() const {
    return fmt::format("{}/{}", addr.str(), prefix_len);
}

uint32_t Cidr::mask() const {
    return prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - prefix_len);
}
Ipv4 Cidr::network() const {
    return Ipv4{addr.value & mask()};
}
Ipv4 Cidr::broadcast() const {
    return Ipv4{network().value | ~mask()};
}
bool Cidr::contains(Ipv4 ip) const {
    return (ip.value & mask()) == network().value;
}
bool Cidr::contains(const Cidr& inner) const {
    return inner.prefix_len >= prefix_len && contains(inner.network());
}
bool Cidr::overlaps(const Cidr& other) const {
    return contains(other) || other.contains(*this);
}

Result<MacAddr> MacAddr::parse(std::string_view text) {
    MacAddr mac;
    if (text.size() != 17) {
        return fail(ErrorKind::InvalidArgument, fmt::format("invalid MAC address \"{}\"", text));
    }
    for (size_t i = 0; i < 6; ++i) {
        auto part = text.substr(i * 3, 2);
        if (i < 5 && text[i * 3 + 2] != ':') {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid MAC address \"{}\"", text));
        }
        unsigned v = 0;
        auto [ptr, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
        if (ec != std::errc{} || ptr != part.data() + 2) {
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("invalid MAC address \"{}\"", text));
        }
        mac.bytes[i] = static_cast<uint8_t>(v);
    }
    return mac;
}

MacAddr MacAddr::from_ipv4(Ipv4 ip) {
    return MacAddr{{0x02, 0x42, static_cast<uint8_t>(ip.value >> 24),
                    static_cast<uint8_t>(ip.value >> 16), static_cast<uint8_t>(ip.value >> 8),
                    static_cast<uint8_t>(ip.value)}};
}

std::string MacAddr::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
}

bool MacAddr::is_zero() const {
    for (auto b : bytes)
        if (b) return false;
    return true;
}

}  // namespace bpfnet

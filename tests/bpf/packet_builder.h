// Builds the input (and expected output) frames for BPF_PROG_TEST_RUN tests: Ethernet (optionally
// with 802.1Q/802.1ad tags) + IPv4 (optionally with options) or IPv6 + UDP/TCP/ICMP echo, and ARP,
// with lengths and checksums filled in, as the kernel would see them on a veth. checksum_errors()
// checks a frame the other way round, so a test can assert that a program which rewrote addresses
// or ports (NAT) also fixed every checksum.
//
//   auto frame = PacketBuilder()
//                    .eth(mac("02:42:0a:00:00:02"), mac("02:42:0a:00:00:03"))
//                    .ipv4(ip("10.0.0.2"), ip("10.0.0.3"))
//                    .udp(40000, 53)
//                    .payload("hello")
//                    .build();
//
//   auto tagged = PacketBuilder().vlan(5).ipv4(...).udp(...).build();        // 802.1Q, VID 5
//   auto v6 = PacketBuilder().ipv6(ip6("fd00::2"), ip6("fd00::3")).icmp_echo(1, 1).build();
//   auto req = PacketBuilder().eth(sha, kBroadcastMac).arp(kArpRequest, sha, spa, {}, tpa).build();
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/ipv4.h"

namespace bpfnet::testing {

inline constexpr size_t kEthHdrLen = 14;
inline constexpr size_t kIpv4HdrLen = 20;  // no options
inline constexpr size_t kIpv6HdrLen = 40;  // no extension headers
inline constexpr size_t kVlanTagLen = 4;
inline constexpr size_t kUdpHdrLen = 8;
inline constexpr size_t kTcpHdrLen = 20;    // no options
inline constexpr size_t kIcmpHdrLen = 8;    // echo request/reply
inline constexpr size_t kArpLen = 28;       // Ethernet/IPv4 ARP body
inline constexpr size_t kEthMinFrame = 60;  // minimum Ethernet frame without FCS

inline constexpr uint16_t kEthPIpv4 = 0x0800;
inline constexpr uint16_t kEthPArp = 0x0806;
inline constexpr uint16_t kEthPIpv6 = 0x86dd;
inline constexpr uint16_t kEthP8021Q = 0x8100;
inline constexpr uint16_t kEthP8021AD = 0x88a8;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

// Test literals: a typo in a test is a test bug, so throw (gtest reports it) instead of Result.
inline Ipv4 ip(std::string_view text) {
    auto r = Ipv4::parse(text);
    if (!r) throw std::invalid_argument("bad IPv4 literal in test: " + std::string(text));
    return *r;
}
inline MacAddr mac(std::string_view text) {
    auto r = MacAddr::parse(text);
    if (!r) throw std::invalid_argument("bad MAC literal in test: " + std::string(text));
    return *r;
}
inline const MacAddr kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// IPv6 addresses in network byte order; the project's core has no IPv6 type (yet).
using Ipv6Addr = std::array<uint8_t, 16>;
inline Ipv6Addr ip6(std::string_view text) {
    Ipv6Addr a{};
    const std::string s(text);
    if (inet_pton(AF_INET6, s.c_str(), a.data()) != 1)
        throw std::invalid_argument("bad IPv6 literal in test: " + s);
    return a;
}

// RFC 1071 one's-complement sum, kept unfolded so several pieces (pseudo-header, header, payload)
// can be summed before folding. Odd-length pieces are padded with a zero byte, so only the last
// piece may have an odd length.
inline uint32_t csum_partial(const uint8_t* data, size_t len, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
    if (len % 2) sum += static_cast<uint32_t>(data[len - 1] << 8);
    return sum;
}
inline uint16_t csum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum & 0xffff);
}
inline uint16_t inet_checksum(const uint8_t* data, size_t len) {
    return csum_fold(csum_partial(data, len));
}

namespace detail {

inline void put8(std::vector<uint8_t>& b, uint8_t v) {
    b.push_back(v);
}
inline void put16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
inline void put32(std::vector<uint8_t>& b, uint32_t v) {
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}
inline void put_mac(std::vector<uint8_t>& b, const MacAddr& m) {
    b.insert(b.end(), m.bytes.begin(), m.bytes.end());
}
inline void store16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}
inline uint16_t load16(const std::vector<uint8_t>& b, size_t off) {
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

// Sum of the TCP/UDP pseudo-header (RFC 793/768): addresses, protocol and L4 length.
inline uint32_t pseudo_header_sum(const uint8_t* ip_hdr, uint8_t proto, size_t l4_len) {
    uint32_t sum = csum_partial(ip_hdr + 12, 8);  // saddr + daddr
    sum += proto;
    sum += static_cast<uint32_t>(l4_len);
    return sum;
}
// The IPv6 pseudo-header (RFC 8200 8.1), for TCP, UDP and ICMPv6: the same sum with 16-byte
// addresses and a 32-bit length.
inline uint32_t pseudo_header_sum_v6(const uint8_t* ip6_hdr, uint8_t proto, size_t l4_len) {
    uint32_t sum = csum_partial(ip6_hdr + 8, 32);  // saddr + daddr
    sum += proto;
    sum += static_cast<uint32_t>(l4_len);
    return sum;
}

}  // namespace detail

class PacketBuilder {
  public:
    PacketBuilder& eth(const MacAddr& src, const MacAddr& dst) {
        eth_src_ = src;
        eth_dst_ = dst;
        return *this;
    }
    // An 802.1Q (or, with tpid 0x88a8, 802.1ad) tag after the MAC addresses; call again to stack
    // tags, outermost first. `tci` holds PCP, DEI and the VLAN ID.
    PacketBuilder& vlan(uint16_t tci, uint16_t tpid = kEthP8021Q) {
        vlan_tags_.push_back({tpid, tci});
        return *this;
    }
    PacketBuilder& ipv4(Ipv4 src, Ipv4 dst, uint8_t ttl = 64) {
        l3_ = L3::Ipv4;
        ip_src_ = src;
        ip_dst_ = dst;
        ttl_ = ttl;
        return *this;
    }
    // IPv4 options, zero-padded (End of Option List) to a multiple of 4 bytes; IHL, total length
    // and the header checksum account for them. At most 40 bytes.
    PacketBuilder& ip_options(std::vector<uint8_t> options) {
        options.resize((options.size() + 3) / 4 * 4, 0);
        if (options.size() > 40) throw std::invalid_argument("IPv4 options longer than 40 bytes");
        ip_options_ = std::move(options);
        return *this;
    }
    // IPv6 instead of IPv4: no extension headers; the L4 part is the same (ICMP echo becomes
    // ICMPv6 echo, types 128/129).
    PacketBuilder& ipv6(const Ipv6Addr& src, const Ipv6Addr& dst, uint8_t hop_limit = 64) {
        l3_ = L3::Ipv6;
        ip6_src_ = src;
        ip6_dst_ = dst;
        ttl_ = hop_limit;
        return *this;
    }
    // An Ethernet/IPv4 ARP body instead of IP. Set the Ethernet addresses with eth(); the frame is
    // zero-padded to the 60-byte minimum like arp_frame() (pad_to can ask for more).
    PacketBuilder& arp(uint16_t op, const MacAddr& sha, Ipv4 spa, const MacAddr& tha, Ipv4 tpa) {
        l3_ = L3::Arp;
        arp_op_ = op;
        arp_sha_ = sha;
        arp_tha_ = tha;
        ip_src_ = spa;
        ip_dst_ = tpa;
        return *this;
    }
    PacketBuilder& tos(uint8_t tos) {
        tos_ = tos;
        return *this;
    }
    PacketBuilder& ip_id(uint16_t id) {
        ip_id_ = id;
        return *this;
    }
    PacketBuilder& dont_fragment(bool df) {
        df_ = df;
        return *this;
    }
    PacketBuilder& udp(uint16_t sport, uint16_t dport) {
        proto_ = kIpProtoUdp;
        sport_ = sport;
        dport_ = dport;
        return *this;
    }
    PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = kTcpSyn, uint32_t seq = 1,
                       uint32_t ack = 0, uint16_t window = 64240) {
        proto_ = kIpProtoTcp;
        sport_ = sport;
        dport_ = dport;
        tcp_flags_ = flags;
        seq_ = seq;
        ack_ = ack;
        window_ = window;
        return *this;
    }
    // Echo request (type 8) or reply (type 0); the id plays the role of a port for conntrack/NAT.
    PacketBuilder& icmp_echo(uint16_t id, uint16_t seq, bool reply = false) {
        proto_ = kIpProtoIcmp;
        icmp_reply_ = reply;
        sport_ = id;
        seq_ = seq;
        return *this;
    }
    PacketBuilder& payload(std::vector<uint8_t> bytes) {
        payload_ = std::move(bytes);
        return *this;
    }
    PacketBuilder& payload(std::string_view text) {
        payload_.assign(text.begin(), text.end());
        return *this;
    }
    // Zero-pads the frame after the IP packet, as a NIC pads short frames; the IP total length
    // keeps excluding the padding, so programs must trust tot_len rather than skb->len.
    PacketBuilder& pad_to(size_t frame_len) {
        pad_to_ = frame_len;
        return *this;
    }

    std::vector<uint8_t> build() const {
        using namespace detail;
        std::vector<uint8_t> b;
        put_mac(b, eth_dst_);
        put_mac(b, eth_src_);
        for (const auto& tag : vlan_tags_) {
            put16(b, tag.tpid);
            put16(b, tag.tci);
        }
        size_t min_len = 0;
        switch (l3_) {
            case L3::Ipv4:
                put16(b, kEthPIpv4);
                build_ipv4(b);
                break;
            case L3::Ipv6:
                put16(b, kEthPIpv6);
                build_ipv6(b);
                break;
            case L3::Arp:
                put16(b, kEthPArp);
                build_arp(b);
                min_len = kEthMinFrame;  // ARP frames are always padded on the wire
                break;
        }
        const size_t len = std::max(pad_to_, min_len);
        if (b.size() < len) b.resize(len, 0);
        return b;
    }

  private:
    enum class L3 { Ipv4, Ipv6, Arp };
    struct VlanTag {
        uint16_t tpid;
        uint16_t tci;
    };

    size_t l4_header_len() const {
        return proto_ == kIpProtoUdp   ? kUdpHdrLen
               : proto_ == kIpProtoTcp ? kTcpHdrLen
                                       : kIcmpHdrLen;
    }

    void build_ipv4(std::vector<uint8_t>& b) const {
        using namespace detail;
        const size_t hdr_len = kIpv4HdrLen + ip_options_.size();
        const size_t l4_len = l4_header_len() + payload_.size();
        const size_t ip_off = b.size();
        put8(b, static_cast<uint8_t>(0x40 | hdr_len / 4));  // version 4, IHL
        put8(b, tos_);
        put16(b, static_cast<uint16_t>(hdr_len + l4_len));
        put16(b, ip_id_);
        put16(b, df_ ? 0x4000 : 0);
        put8(b, ttl_);
        put8(b, proto_);
        put16(b, 0);  // checksum, below
        put32(b, ip_src_.value);
        put32(b, ip_dst_.value);
        b.insert(b.end(), ip_options_.begin(), ip_options_.end());
        store16(b, ip_off + 10, inet_checksum(b.data() + ip_off, hdr_len));

        // ICMP sums only its own message; TCP and UDP include the pseudo-header.
        const uint32_t pseudo =
            proto_ == kIpProtoIcmp ? 0 : pseudo_header_sum(b.data() + ip_off, proto_, l4_len);
        build_l4(b, pseudo, icmp_reply_ ? 0 : 8);
    }

    void build_ipv6(std::vector<uint8_t>& b) const {
        using namespace detail;
        const size_t l4_len = l4_header_len() + payload_.size();
        const uint8_t next = proto_ == kIpProtoIcmp ? kIpProtoIcmpv6 : proto_;
        const size_t ip_off = b.size();
        put32(b, 0x60000000u | static_cast<uint32_t>(tos_) << 20);  // version 6, traffic class
        put16(b, static_cast<uint16_t>(l4_len));
        put8(b, next);
        put8(b, ttl_);
        b.insert(b.end(), ip6_src_.begin(), ip6_src_.end());
        b.insert(b.end(), ip6_dst_.begin(), ip6_dst_.end());
        // Every IPv6 upper-layer checksum, ICMPv6's included, covers the pseudo-header.
        build_l4(b, pseudo_header_sum_v6(b.data() + ip_off, next, l4_len), icmp_reply_ ? 129 : 128);
    }

    // Appends the TCP/UDP/ICMP header and the payload, with the checksum seeded by `pseudo`.
    void build_l4(std::vector<uint8_t>& b, uint32_t pseudo, uint8_t icmp_type) const {
        using namespace detail;
        const size_t l4_off = b.size();
        const size_t l4_len = l4_header_len() + payload_.size();
        size_t csum_off = 0;
        if (proto_ == kIpProtoUdp) {
            put16(b, sport_);
            put16(b, dport_);
            put16(b, static_cast<uint16_t>(l4_len));
            csum_off = b.size();
            put16(b, 0);
        } else if (proto_ == kIpProtoTcp) {
            put16(b, sport_);
            put16(b, dport_);
            put32(b, seq_);
            put32(b, ack_);
            put8(b, 5 << 4);  // data offset: 5 words, no options
            put8(b, tcp_flags_);
            put16(b, window_);
            csum_off = b.size();
            put16(b, 0);
            put16(b, 0);  // urgent pointer
        } else {
            put8(b, icmp_type);
            put8(b, 0);  // code
            csum_off = b.size();
            put16(b, 0);
            put16(b, sport_);
            put16(b, static_cast<uint16_t>(seq_));
        }
        b.insert(b.end(), payload_.begin(), payload_.end());

        uint16_t csum = csum_fold(csum_partial(b.data() + l4_off, l4_len, pseudo));
        // A computed UDP checksum of 0 is sent as 0xffff: 0 means "no checksum" (RFC 768).
        if (proto_ == kIpProtoUdp && csum == 0) csum = 0xffff;
        store16(b, csum_off, csum);
    }

    void build_arp(std::vector<uint8_t>& b) const {
        using namespace detail;
        put16(b, 1);  // hardware type: Ethernet
        put16(b, kEthPIpv4);
        put8(b, 6);  // hardware address length
        put8(b, 4);  // protocol address length
        put16(b, arp_op_);
        put_mac(b, arp_sha_);
        put32(b, ip_src_.value);
        put_mac(b, arp_tha_);
        put32(b, ip_dst_.value);
    }

    MacAddr eth_src_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
    MacAddr eth_dst_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
    Ipv4 ip_src_{0x0a000001};  // 10.0.0.1
    Ipv4 ip_dst_{0x0a000002};  // 10.0.0.2
    L3 l3_ = L3::Ipv4;
    std::vector<VlanTag> vlan_tags_;
    std::vector<uint8_t> ip_options_;
    Ipv6Addr ip6_src_{};
    Ipv6Addr ip6_dst_{};
    uint16_t arp_op_ = kArpRequest;
    MacAddr arp_sha_;
    MacAddr arp_tha_;
    uint8_t ttl_ = 64;
    uint8_t tos_ = 0;
    uint16_t ip_id_ = 0;
    bool df_ = true;  // what Linux sets on TCP/UDP sockets with PMTU discovery
    uint8_t proto_ = kIpProtoUdp;
    uint16_t sport_ = 12345;
    uint16_t dport_ = 80;
    uint8_t tcp_flags_ = kTcpSyn;
    uint32_t seq_ = 1;
    uint32_t ack_ = 0;
    uint16_t window_ = 64240;
    bool icmp_reply_ = false;
    std::vector<uint8_t> payload_;
    size_t pad_to_ = 0;
};

// An Ethernet/IPv4 ARP frame. Requests go to broadcast with a zero target MAC unless given.
inline std::vector<uint8_t> arp_frame(uint16_t op, const MacAddr& sha, Ipv4 spa, const MacAddr& tha,
                                      Ipv4 tpa, const MacAddr& eth_dst) {
    return PacketBuilder().eth(sha, eth_dst).arp(op, sha, spa, tha, tpa).build();
}
inline std::vector<uint8_t> arp_request(const MacAddr& sha, Ipv4 spa, Ipv4 tpa) {
    return arp_frame(kArpRequest, sha, spa, MacAddr{}, tpa, kBroadcastMac);
}
inline std::vector<uint8_t> arp_reply(const MacAddr& sha, Ipv4 spa, const MacAddr& tha, Ipv4 tpa) {
    return arp_frame(kArpReply, sha, spa, tha, tpa, tha);
}

// Checks the IPv4 header checksum and the UDP/TCP/ICMP checksum of an Ethernet/IPv4 frame, or the
// UDP/TCP/ICMPv6 checksum of an Ethernet/IPv6 frame (no extension headers), skipping VLAN tags.
// Returns an empty string when all are right, else what is wrong (for gtest messages).
inline std::string checksum_errors(const std::vector<uint8_t>& f) {
    using namespace detail;
    size_t ip = kEthHdrLen;
    if (f.size() < ip) return "frame too short for Ethernet";
    uint16_t ethertype = load16(f, 12);
    while (ethertype == kEthP8021Q || ethertype == kEthP8021AD) {
        if (f.size() < ip + kVlanTagLen) return "truncated VLAN tag";
        ethertype = load16(f, ip + 2);
        ip += kVlanTagLen;
    }

    uint8_t proto = 0;
    size_t l4 = 0;
    size_t l4_len = 0;
    uint32_t sum = 0;
    if (ethertype == kEthPIpv4) {
        if (f.size() < ip + kIpv4HdrLen) return "frame too short for Ethernet + IPv4";
        const size_t ihl = static_cast<size_t>(f[ip] & 0x0f) * 4;
        const size_t tot_len = load16(f, ip + 2);
        if (ihl < kIpv4HdrLen || tot_len < ihl || ip + tot_len > f.size())
            return "bad IPv4 lengths";
        if (inet_checksum(f.data() + ip, ihl) != 0) return "bad IPv4 header checksum";
        proto = f[ip + 9];
        l4 = ip + ihl;
        l4_len = tot_len - ihl;
        if (proto == kIpProtoIcmp) {
            if (l4_len < kIcmpHdrLen) return "truncated ICMP header";
            return inet_checksum(f.data() + l4, l4_len) == 0 ? "" : "bad ICMP checksum";
        }
        if (proto == kIpProtoUdp || proto == kIpProtoTcp)
            sum = pseudo_header_sum(f.data() + ip, proto, l4_len);
    } else if (ethertype == kEthPIpv6) {
        if (f.size() < ip + kIpv6HdrLen) return "frame too short for Ethernet + IPv6";
        proto = f[ip + 6];
        l4 = ip + kIpv6HdrLen;
        l4_len = load16(f, ip + 4);
        if (l4 + l4_len > f.size()) return "bad IPv6 payload length";
        if (proto == kIpProtoIcmpv6 && l4_len < kIcmpHdrLen) return "truncated ICMPv6 header";
        sum = pseudo_header_sum_v6(f.data() + ip, proto, l4_len);
    } else {
        return "not an IPv4 or IPv6 frame";
    }

    if (proto == kIpProtoUdp) {
        if (l4_len < kUdpHdrLen) return "truncated UDP header";
        // Only IPv4 lets a sender choose no checksum.
        if (load16(f, l4 + 6) == 0)
            return ethertype == kEthPIpv4 ? "" : "zero UDP checksum on IPv6";
    } else if (proto == kIpProtoTcp) {
        if (l4_len < kTcpHdrLen) return "truncated TCP header";
    } else if (proto != kIpProtoIcmpv6) {
        return "";  // nothing more we know how to check
    }
    if (csum_fold(csum_partial(f.data() + l4, l4_len, sum)) != 0)
        return proto == kIpProtoUdp   ? "bad UDP checksum"
               : proto == kIpProtoTcp ? "bad TCP checksum"
                                      : "bad ICMPv6 checksum";
    return "";
}

}  // namespace bpfnet::testing

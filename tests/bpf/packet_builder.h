// Builds the input (and expected output) frames for BPF_PROG_TEST_RUN tests: Ethernet + IPv4 +
// UDP/TCP/ICMP echo, and ARP, with lengths and checksums filled in, as the kernel would see them on
// a veth. checksums_valid() checks a frame the other way round, so a test can assert that a program
// which rewrote addresses or ports (NAT) also fixed every checksum.
//
//   auto frame = PacketBuilder()
//                    .eth(mac("02:42:0a:00:00:02"), mac("02:42:0a:00:00:03"))
//                    .ipv4(ip("10.0.0.2"), ip("10.0.0.3"))
//                    .udp(40000, 53)
//                    .payload("hello")
//                    .build();
#pragma once

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
inline constexpr size_t kUdpHdrLen = 8;
inline constexpr size_t kTcpHdrLen = 20;    // no options
inline constexpr size_t kIcmpHdrLen = 8;    // echo request/reply
inline constexpr size_t kArpLen = 28;       // Ethernet/IPv4 ARP body
inline constexpr size_t kEthMinFrame = 60;  // minimum Ethernet frame without FCS

inline constexpr uint16_t kEthPIpv4 = 0x0800;
inline constexpr uint16_t kEthPArp = 0x0806;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
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

}  // namespace detail

class PacketBuilder {
  public:
    PacketBuilder& eth(const MacAddr& src, const MacAddr& dst) {
        eth_src_ = src;
        eth_dst_ = dst;
        return *this;
    }
    PacketBuilder& ipv4(Ipv4 src, Ipv4 dst, uint8_t ttl = 64) {
        ip_src_ = src;
        ip_dst_ = dst;
        ttl_ = ttl;
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
        icmp_type_ = reply ? 0 : 8;
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
        put16(b, kEthPIpv4);

        const size_t l4_hdr = proto_ == kIpProtoUdp   ? kUdpHdrLen
                              : proto_ == kIpProtoTcp ? kTcpHdrLen
                                                      : kIcmpHdrLen;
        const size_t l4_len = l4_hdr + payload_.size();
        const size_t ip_off = b.size();
        put8(b, 0x45);  // version 4, IHL 5
        put8(b, tos_);
        put16(b, static_cast<uint16_t>(kIpv4HdrLen + l4_len));
        put16(b, ip_id_);
        put16(b, df_ ? 0x4000 : 0);
        put8(b, ttl_);
        put8(b, proto_);
        put16(b, 0);  // checksum, below
        put32(b, ip_src_.value);
        put32(b, ip_dst_.value);
        store16(b, ip_off + 10, inet_checksum(b.data() + ip_off, kIpv4HdrLen));

        const size_t l4_off = b.size();
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
            put8(b, icmp_type_);
            put8(b, 0);  // code
            csum_off = b.size();
            put16(b, 0);
            put16(b, sport_);
            put16(b, static_cast<uint16_t>(seq_));
        }
        b.insert(b.end(), payload_.begin(), payload_.end());

        // ICMP sums only its own message; TCP and UDP include the pseudo-header.
        uint32_t sum =
            proto_ == kIpProtoIcmp ? 0 : pseudo_header_sum(b.data() + ip_off, proto_, l4_len);
        uint16_t csum = csum_fold(csum_partial(b.data() + l4_off, l4_len, sum));
        // A computed UDP checksum of 0 is sent as 0xffff: 0 means "no checksum" (RFC 768).
        if (proto_ == kIpProtoUdp && csum == 0) csum = 0xffff;
        store16(b, csum_off, csum);

        if (b.size() < pad_to_) b.resize(pad_to_, 0);
        return b;
    }

  private:
    MacAddr eth_src_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
    MacAddr eth_dst_{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
    Ipv4 ip_src_{0x0a000001};  // 10.0.0.1
    Ipv4 ip_dst_{0x0a000002};  // 10.0.0.2
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
    uint8_t icmp_type_ = 8;
    std::vector<uint8_t> payload_;
    size_t pad_to_ = 0;
};

// An Ethernet/IPv4 ARP frame. Requests go to broadcast with a zero target MAC unless given.
inline std::vector<uint8_t> arp_frame(uint16_t op, const MacAddr& sha, Ipv4 spa, const MacAddr& tha,
                                      Ipv4 tpa, const MacAddr& eth_dst) {
    using namespace detail;
    std::vector<uint8_t> b;
    put_mac(b, eth_dst);
    put_mac(b, sha);
    put16(b, kEthPArp);
    put16(b, 1);  // hardware type: Ethernet
    put16(b, kEthPIpv4);
    put8(b, 6);  // hardware address length
    put8(b, 4);  // protocol address length
    put16(b, op);
    put_mac(b, sha);
    put32(b, spa.value);
    put_mac(b, tha);
    put32(b, tpa.value);
    b.resize(kEthMinFrame, 0);  // ARP frames are always padded on the wire
    return b;
}
inline std::vector<uint8_t> arp_request(const MacAddr& sha, Ipv4 spa, Ipv4 tpa) {
    return arp_frame(kArpRequest, sha, spa, MacAddr{}, tpa, kBroadcastMac);
}
inline std::vector<uint8_t> arp_reply(const MacAddr& sha, Ipv4 spa, const MacAddr& tha, Ipv4 tpa) {
    return arp_frame(kArpReply, sha, spa, tha, tpa, tha);
}

// Checks the IPv4 header checksum and the UDP/TCP/ICMP checksum of an untagged Ethernet/IPv4
// frame. Returns an empty string when all are right, else what is wrong (for gtest messages).
inline std::string checksum_errors(const std::vector<uint8_t>& f) {
    using namespace detail;
    if (f.size() < kEthHdrLen + kIpv4HdrLen) return "frame too short for Ethernet + IPv4";
    if (load16(f, 12) != kEthPIpv4) return "not an IPv4 frame";
    const size_t ip = kEthHdrLen;
    const size_t ihl = static_cast<size_t>(f[ip] & 0x0f) * 4;
    const size_t tot_len = load16(f, ip + 2);
    if (ihl < kIpv4HdrLen || tot_len < ihl || ip + tot_len > f.size()) return "bad IPv4 lengths";
    if (inet_checksum(f.data() + ip, ihl) != 0) return "bad IPv4 header checksum";

    const uint8_t proto = f[ip + 9];
    const size_t l4 = ip + ihl;
    const size_t l4_len = tot_len - ihl;
    if (proto == kIpProtoUdp) {
        if (l4_len < kUdpHdrLen) return "truncated UDP header";
        if (load16(f, l4 + 6) == 0) return "";  // sender chose no checksum
    } else if (proto == kIpProtoTcp) {
        if (l4_len < kTcpHdrLen) return "truncated TCP header";
    } else if (proto == kIpProtoIcmp) {
        if (l4_len < kIcmpHdrLen) return "truncated ICMP header";
        return inet_checksum(f.data() + l4, l4_len) == 0 ? "" : "bad ICMP checksum";
    } else {
        return "";  // nothing more we know how to check
    }
    const uint32_t sum = pseudo_header_sum(f.data() + ip, proto, l4_len);
    if (csum_fold(csum_partial(f.data() + l4, l4_len, sum)) != 0)
        return proto == kIpProtoUdp ? "bad UDP checksum" : "bad TCP checksum";
    return "";
}

}  // namespace bpfnet::testing

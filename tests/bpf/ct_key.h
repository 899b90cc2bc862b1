// A conntrack key (bpfnet/abi.h, struct bpfnet_ct_key) from readable addresses and ports, for the
// BPF tests that read the published-port conntrack.
#pragma once

#include <arpa/inet.h>

#include <cstdint>

#include "bpf/packet_builder.h"
#include "bpfnet/abi.h"

namespace bpfnet::testing {

inline bpfnet_ct_key ct_key(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                            uint8_t proto, uint8_t dir) {
    bpfnet_ct_key key{};
    key.saddr = ip(src).network_order();
    key.daddr = ip(dst).network_order();
    key.sport = htons(sport);
    key.dport = htons(dport);
    key.proto = proto;
    key.dir = dir;
    return key;
}

}  // namespace bpfnet::testing

// Hostile frames for the BPF packet-fuzz tests: deterministic (seeded) mutations of valid frames
// (bit flips, truncation, extension, overwritten header bytes and fields, pure noise), and a
// snapshot of a map's contents to show a program never changed what only the agent may write.
//
// Every bpfnet program that BPF_PROG_TEST_RUN can run has such a fuzz test: the endpoint program
// (endpoint_test.cpp), the uplink's TC and XDP programs (uplink_test.cpp), the overlay program
// (overlay_test.cpp, with tunnel metadata from overlay_harness.bpf.c) and the pipeline program
// (pipeline_test.cpp). The cgroup sock_addr programs of bpf/sock.bpf.c (connect4, sendmsg4,
// recvmsg4, getpeername4) cannot be test-run: the kernel has no BPF_PROG_TEST_RUN for
// BPF_PROG_TYPE_CGROUP_SOCK_ADDR, and their input is a socket call's address, not a frame. They
// are exercised through real sockets by tests/e2e/e2e_ports.sh.
#pragma once

#include <bpf/bpf.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace bpfnet::testing {

inline std::vector<std::vector<uint8_t>> mutated_frames(
    const std::vector<std::vector<uint8_t>>& seeds, size_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    auto pick = [&](size_t n) {
        return n ? std::uniform_int_distribution<size_t>(0, n - 1)(rng) : 0;
    };
    auto byte = [&] { return static_cast<uint8_t>(rng()); };
    std::vector<std::vector<uint8_t>> out;
    out.reserve(count);
    while (out.size() < count) {
        std::vector<uint8_t> f = seeds[pick(seeds.size())];
        const size_t rounds = 1 + pick(3);
        for (size_t r = 0; r < rounds; ++r) {
            switch (pick(7)) {
                case 0:  // flip bits
                    for (size_t i = 0, n = 1 + pick(8); i < n && !f.empty(); ++i)
                        f[pick(f.size())] ^= static_cast<uint8_t>(1u << pick(8));
                    break;
                case 1:  // truncate (keeping the Ethernet header most of the time)
                    f.resize(pick(f.size() + 1));
                    break;
                case 2:  // extend with noise
                    for (size_t i = 0, n = 1 + pick(64); i < n; ++i) f.push_back(byte());
                    break;
                case 3:  // overwrite a run of header bytes
                    for (size_t i = pick(std::min<size_t>(f.size(), 64)), n = 1 + pick(8);
                         n-- && i < f.size(); ++i)
                        f[i] = byte();
                    break;
                case 4:  // an EtherType the programs treat specially
                    if (f.size() >= 14) {
                        static const uint16_t types[] = {0x0800, 0x0806, 0x86dd, 0x8100, 0x88a8};
                        const uint16_t t = pick(4) ? types[pick(5)] : static_cast<uint16_t>(rng());
                        f[12] = static_cast<uint8_t>(t >> 8);
                        f[13] = static_cast<uint8_t>(t);
                    }
                    break;
                case 5:  // IPv4 fields: version/IHL, total length, fragment bits, protocol
                    if (f.size() >= 34) {
                        const size_t field = pick(4);
                        if (field == 0) f[14] = byte();
                        if (field == 1) f[16] = byte(), f[17] = byte();
                        if (field == 2) f[20] = byte(), f[21] = byte();
                        if (field == 3)
                            f[23] = pick(2) ? byte()
                                            : static_cast<uint8_t>(
                                                  std::vector<int>{1, 6, 17, 132, 47}[pick(5)]);
                    }
                    break;
                default:  // noise
                    f.assign(pick(200), 0);
                    for (auto& b : f) b = byte();
            }
        }
        out.push_back(std::move(f));
    }
    return out;
}

// BPF_PROG_TEST_RUN refuses (EINVAL) frames without a whole Ethernet header, and IPv4/IPv6 frames
// too short for their fixed header: those cannot be run, whatever the program would do.
inline bool test_run_refuses(const std::vector<uint8_t>& frame) {
    if (frame.size() < 14) return true;
    const unsigned type = frame[12] << 8 | frame[13];
    return (type == 0x0800 && frame.size() < 14 + 20) || (type == 0x86dd && frame.size() < 14 + 40);
}

// Every key and value of a map (not per-CPU), as bytes.
inline std::map<std::vector<uint8_t>, std::vector<uint8_t>> map_contents(int fd, size_t key_size,
                                                                         size_t value_size) {
    std::map<std::vector<uint8_t>, std::vector<uint8_t>> out;
    std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        key = next;
        prev = key.data();
        if (bpf_map_lookup_elem(fd, key.data(), value.data()) == 0) out[key] = value;
    }
    return out;
}

}  // namespace bpfnet::testing

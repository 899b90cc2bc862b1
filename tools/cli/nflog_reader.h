// The nftables firewall's drops as `bpfnet monitor` shows them: the agent's drop rules log to NFLOG
// group kDropLogGroup with the prefix "bpfnet:<reason>:<bridge> " (core/drop_log.h); this
// reads that group with libnl-nf. NFLOG gives a group to one socket at a time: a second monitor
// gets the BPF programs' events only, and says so.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"

struct nl_sock;

namespace bpfnet::cli {

struct NftDrop {
    int64_t wall_ns = 0;  // when the kernel logged it
    std::string reason;   // bpfnet's drop reason word (other-bridge, unpublished)
    std::string bridge;   // the network's bridge whose rule dropped it
    uint32_t indev = 0, outdev = 0;
    uint8_t protocol = 0;
    uint32_t saddr = 0, daddr = 0;  // network order
    uint16_t sport = 0, dport = 0;  // host order; 0 for other protocols
    uint32_t len = 0;
};

class NflogReader {
  public:
    static Result<std::unique_ptr<NflogReader>> open(uint16_t group);
    ~NflogReader();
    NflogReader(const NflogReader&) = delete;
    NflogReader& operator=(const NflogReader&) = delete;

    int fd() const;
    // Reads every pending message, calling on_drop for each of bpfnet's drops.
    void read(const std::function<void(const NftDrop&)>& on_drop);

  private:
    NflogReader() = default;
    struct SockDeleter {
        void operator()(nl_sock* s) const;
    };
    std::unique_ptr<nl_sock, SockDeleter> sock_;
    uint16_t group_ = 0;
    const std::function<void(const NftDrop&)>* on_drop_ = nullptr;  // during read()
};

}  // namespace bpfnet::cli

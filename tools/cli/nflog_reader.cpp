#include "nflog_reader.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netlink/msg.h>
#include <netlink/netfilter/log.h>
#include <netlink/netfilter/log_msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "core/drop_log.h"

namespace bpfnet::cli {

namespace {

// Enough of each packet for its IPv4 and transport headers.
constexpr uint32_t kCopyRange = 128;

struct LogDeleter {
    void operator()(nfnl_log* log) const { nfnl_log_put(log); }
};

NftDrop to_drop(nfnl_log_msg* msg) {
    NftDrop d;
    if (const timeval* tv = nfnl_log_msg_get_timestamp(msg))
        d.wall_ns = static_cast<int64_t>(tv->tv_sec) * 1000000000 + tv->tv_usec * 1000;
    d.indev = nfnl_log_msg_get_indev(msg);
    d.outdev = nfnl_log_msg_get_outdev(msg);
    int len = 0;
    const auto* payload = static_cast<const uint8_t*>(nfnl_log_msg_get_payload(msg, &len));
    if (!payload || len < static_cast<int>(sizeof(iphdr))) return d;
    iphdr ip;
    std::memcpy(&ip, payload, sizeof(ip));
    if (ip.version != 4) return d;
    d.protocol = ip.protocol;
    d.saddr = ip.saddr;
    d.daddr = ip.daddr;
    d.len = ntohs(ip.tot_len);
    const int l4 = ip.ihl * 4;
    const bool ports =
        ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_SCTP;
    // A later fragment has no transport header.
    if (ports && (ntohs(ip.frag_off) & 0x1fff) == 0 && len >= l4 + 4) {
        uint16_t p[2];
        std::memcpy(p, payload + l4, sizeof(p));
        d.sport = ntohs(p[0]);
        d.dport = ntohs(p[1]);
    }
    return d;
}

}  // namespace

void NflogReader::SockDeleter::operator()(nl_sock* s) const {
    nl_socket_free(s);
}

Result<std::unique_ptr<NflogReader>> NflogReader::open(uint16_t group) {
    std::unique_ptr<NflogReader> reader(new NflogReader());
    reader->group_ = group;
    reader->sock_.reset(nl_socket_alloc());
    if (!reader->sock_) return fail(ErrorKind::Internal, "NFLOG: cannot allocate a socket");
    nl_sock* sock = reader->sock_.get();
    auto failure = [&](std::string_view what, int err) {
        return fail(ErrorKind::Unsupported,
                    fmt::format("NFLOG group {}: {}: {}", group, what, nl_geterror(err)));
    };
    if (int err = nl_connect(sock, NETLINK_NETFILTER); err < 0) return failure("connect", err);
    // Older kernels want the family bound first; newer ones ignore it.
    nfnl_log_pf_bind(sock, AF_INET);
    std::unique_ptr<nfnl_log, LogDeleter> log(nfnl_log_alloc());
    if (!log) return fail(ErrorKind::Internal, "NFLOG: out of memory");
    nfnl_log_set_group(log.get(), group);
    nfnl_log_set_copy_mode(log.get(), NFNL_LOG_COPY_PACKET);
    nfnl_log_set_copy_range(log.get(), kCopyRange);
    // EBUSY: another socket (another monitor) has the group.
    if (int err = nfnl_log_create(sock, log.get()); err < 0) return failure("bind", err);
    // Log messages carry no sequence numbers of ours.
    nl_socket_disable_seq_check(sock);
    nl_socket_set_nonblocking(sock);
    nl_socket_modify_cb(
        sock, NL_CB_VALID, NL_CB_CUSTOM,
        [](nl_msg* msg, void* arg) -> int {
            auto* self = static_cast<NflogReader*>(arg);
            nl_msg_parse(
                msg,
                [](nl_object* obj, void* arg2) {
                    auto* reader = static_cast<NflogReader*>(arg2);
                    if (std::string_view(nl_object_get_type(obj)) != "netfilter/log_msg") return;
                    auto* m = reinterpret_cast<nfnl_log_msg*>(obj);
                    const char* prefix = nfnl_log_msg_get_prefix(m);
                    NftDrop d = to_drop(m);
                    if (!prefix || !parse_drop_log_prefix(prefix, d.reason, d.bridge)) return;
                    if (reader->on_drop_) (*reader->on_drop_)(d);
                },
                self);
            return NL_OK;
        },
        reader.get());
    return reader;
}

NflogReader::~NflogReader() {
    if (!sock_) return;
    // Unbinds the group, so the next monitor gets it at once.
    std::unique_ptr<nfnl_log, LogDeleter> log(nfnl_log_alloc());
    if (!log) return;
    nfnl_log_set_group(log.get(), group_);
    nfnl_log_delete(sock_.get(), log.get());
}

int NflogReader::fd() const {
    return nl_socket_get_fd(sock_.get());
}

void NflogReader::read(const std::function<void(const NftDrop&)>& on_drop) {
    on_drop_ = &on_drop;
    // Until nothing is pending (NLE_AGAIN) or an error (e.g. ENOBUFS when the monitor fell behind:
    // the kernel dropped log messages, the next call goes on).
    while (nl_recvmsgs_default(sock_.get()) >= 0) {
    }
    on_drop_ = nullptr;
}

}  // namespace bpfnet::cli

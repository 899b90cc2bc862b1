// `bpfnet monitor`: live events from the datapath's ring buffer (bpfnet_events), one line each,
// like `cilium monitor`: every drop with its reason in words, and while the monitor asks for them
// (bpfnet_mon_cfg), a trace of every packet an endpoint sends with the verdict. The nftables
// firewall's drops (other bridges, direct routing) come from NFLOG (nflog_reader.h) and are shown
// the same way, with "nftables" where a BPF drop names its endpoint.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include <poll.h>

#include <fmt/format.h>

#include <bpfnet/abi.h>

#include "core/drop_log.h"
#include "core/ipv4.h"
#include "inspect_common.h"
#include "nflog_reader.h"

namespace bpfnet::cli {

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct MonitorArgs {
    std::string type = "all";  // drop, trace, all
    std::string endpoint;      // interface name or IPv4 address
    std::string format = "text";
    int count = 0;        // stop after this many events (0: never)
    double duration = 0;  // stop after this many seconds (0: never)
};

struct MonitorState {
    const MonitorArgs* args = nullptr;
    const inspect::PinnedDatapath* datapath = nullptr;
    // Host ends of endpoint veths (re-read at most once a second when an unknown ifindex shows).
    std::set<uint32_t> endpoints;
    std::chrono::steady_clock::time_point endpoints_read;
    uint32_t endpoint_ifindex = 0;
    uint32_t endpoint_ip = 0;  // network order
    int64_t wall_minus_mono_ns = 0;
    int printed = 0;
    // Events in the ring buffer from before the monitor started are consumed unseen.
    bool skipping_backlog = false;
};

bool done(const MonitorState& st) {
    return st.args->count && st.printed >= st.args->count;
}

std::string verdict_name(uint32_t verdict) {
    switch (verdict) {
        case BPFNET_TC_OK:
            return "to-stack";
        case BPFNET_TC_REDIRECT:
            return "redirected";
        case BPFNET_TC_SHOT:
            return "dropped";
        default:
            return fmt::format("verdict-{}", verdict);
    }
}

std::string time_text(int64_t wall_ns) {
    const std::time_t secs = static_cast<std::time_t>(wall_ns / 1000000000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char hms[16];
    std::strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
    return fmt::format("{}.{:06d}", hms, (wall_ns % 1000000000) / 1000);
}

std::string l3_name(const bpfnet_event& ev) {
    const uint16_t eth = ntohs(ev.eth_proto);
    if (eth == 0x0806) return "arp";
    if (eth == 0x0800) return inspect::protocol_name(ev.protocol);
    if (eth == 0x86dd) return "ipv6";
    if (eth == 0x8100 || eth == 0x88a8) return "vlan";
    return fmt::format("ethertype 0x{:04x}", eth);
}

void read_endpoints(MonitorState& st) {
    st.endpoints.clear();
    st.endpoints_read = std::chrono::steady_clock::now();
    auto entries = st.datapath->dump("bpfnet_ep_by_if", [](uint32_t) { return std::string(); });
    if (!entries) return;
    for (const auto& e : *entries) st.endpoints.insert(e["key"]["ifindex"].get<uint32_t>());
}

// Endpoint programs see what a container sends; the uplink and overlay programs what arrives from
// outside.
std::string direction_of(MonitorState& st, uint32_t ifindex) {
    if (!st.endpoints.count(ifindex) &&
        std::chrono::steady_clock::now() - st.endpoints_read > std::chrono::seconds(1))
        read_endpoints(st);
    return st.endpoints.count(ifindex) ? "from-endpoint" : "from-outside";
}

json event_json(const bpfnet_event& ev, MonitorState& st) {
    const bool drop = ev.type == BPFNET_EVENT_DROP;
    json out{{"time", time_text(static_cast<int64_t>(ev.timestamp_ns) + st.wall_minus_mono_ns)},
             {"type", drop ? "drop" : "trace"},
             {"endpoint", inspect::ifname_of(ev.ifindex)},
             {"ifindex", ev.ifindex},
             {"direction", direction_of(st, ev.ifindex)},
             {"proto", l3_name(ev)},
             {"src", inspect::ipv4_text(ev.saddr)},
             {"sport", ntohs(ev.sport)},
             {"dst", inspect::ipv4_text(ev.daddr)},
             {"dport", ntohs(ev.dport)},
             {"smac", inspect::mac_text(ev.smac)},
             {"dmac", inspect::mac_text(ev.dmac)},
             {"len", ev.len},
             {"verdict", drop ? "dropped" : verdict_name(ev.reason)},
             {"reason", drop ? inspect::drop_reason_name(ev.reason) : ""},
             {"reason_text", drop ? inspect::drop_reason_text(ev.reason) : ""}};
    return out;
}

std::string endpoint_text(const json& e) {
    const std::string name = e["endpoint"].get<std::string>();
    return name.empty() ? fmt::format("ifindex {}", e["ifindex"].get<uint32_t>()) : name;
}

std::string flow_text(const json& e) {
    auto side = [&](const char* ip, const char* port) {
        const std::string addr = e[ip].get<std::string>();
        const unsigned p = e[port].get<unsigned>();
        return p ? fmt::format("{}:{}", addr, p) : addr;
    };
    return fmt::format("{} -> {}", side("src", "sport"), side("dst", "dport"));
}

int on_event(void* ctx, void* data, size_t size) {
    auto* st = static_cast<MonitorState*>(ctx);
    // One poll may hand over more events than --count still wants.
    if (size < sizeof(bpfnet_event) || st->skipping_backlog || done(*st)) return 0;
    bpfnet_event ev;
    std::memcpy(&ev, data, sizeof(ev));
    const std::string& type = st->args->type;
    if (type == "drop" && ev.type != BPFNET_EVENT_DROP) return 0;
    if (type == "trace" && ev.type != BPFNET_EVENT_TRACE) return 0;
    if (st->endpoint_ifindex && ev.ifindex != st->endpoint_ifindex) return 0;
    if (st->endpoint_ip && ev.saddr != st->endpoint_ip && ev.daddr != st->endpoint_ip) return 0;
    const json e = event_json(ev, *st);
    if (st->args->format == "json") {
        std::cout << e.dump() << std::endl;
    } else if (ev.type == BPFNET_EVENT_DROP) {
        std::cout << fmt::format("{} drop  {} {} {} {} len {}: {} ({})",
                                 e["time"].get<std::string>(), endpoint_text(e),
                                 e["direction"].get<std::string>(), e["proto"].get<std::string>(),
                                 flow_text(e), ev.len, e["reason"].get<std::string>(),
                                 e["reason_text"].get<std::string>())
                  << std::endl;
    } else {
        std::cout << fmt::format("{} trace {} {} {} {} len {}: {}", e["time"].get<std::string>(),
                                 endpoint_text(e), e["direction"].get<std::string>(),
                                 e["proto"].get<std::string>(), flow_text(e), ev.len,
                                 e["verdict"].get<std::string>())
                  << std::endl;
    }
    ++st->printed;
    if (done(*st)) g_stop = 1;
    return 0;
}

void on_nft_drop(const NftDrop& d, MonitorState& st) {
    if (st.args->type == "trace" || done(st)) return;
    if (st.endpoint_ifindex && d.indev != st.endpoint_ifindex && d.outdev != st.endpoint_ifindex)
        return;
    if (st.endpoint_ip && d.saddr != st.endpoint_ip && d.daddr != st.endpoint_ip) return;
    // The fields of a BPF drop (no MACs: the firewall sees routed packets), and where it was.
    json e{{"time", time_text(d.wall_ns)},
           {"type", "drop"},
           {"endpoint", "nftables"},
           {"ifindex", d.indev},
           {"direction", "forwarded"},
           {"proto", inspect::protocol_name(d.protocol)},
           {"src", inspect::ipv4_text(d.saddr)},
           {"sport", d.sport},
           {"dst", inspect::ipv4_text(d.daddr)},
           {"dport", d.dport},
           {"smac", ""},
           {"dmac", ""},
           {"len", d.len},
           {"bridge", d.bridge},
           {"in", inspect::ifname_of(d.indev)},
           {"out", inspect::ifname_of(d.outdev)},
           {"verdict", "dropped"},
           {"reason", d.reason},
           {"reason_text",
            d.reason == "other-bridge"  ? "between a bpfnet network and another bridge on the host"
            : d.reason == "unpublished" ? "routed to a container's address, not a published port"
                                        : ""}};
    if (st.args->format == "json") {
        std::cout << e.dump() << std::endl;
    } else {
        std::cout << fmt::format("{} drop  nftables {} -> {} {} {} len {}: {} ({}; {})",
                                 e["time"].get<std::string>(), e["in"].get<std::string>(),
                                 e["out"].get<std::string>(), e["proto"].get<std::string>(),
                                 flow_text(e), d.len, d.reason, e["reason_text"].get<std::string>(),
                                 d.bridge)
                  << std::endl;
    }
    ++st.printed;
    if (done(st)) g_stop = 1;
}

// Asks the programs for traces while the monitor runs; puts the setting back at exit.
class TraceRequest {
  public:
    TraceRequest(const inspect::PinnedDatapath& dp, bool wanted) {
        if (!wanted) return;
        auto fd = dp.open_map("bpfnet_mon_cfg");
        if (!fd) return;  // an older datapath: drops only
        fd_ = std::make_unique<Fd>(std::move(*fd));
        uint32_t key = 0;
        bpfnet_monitor_cfg cfg{1, 0};
        bpf_map_lookup_elem(fd_->get(), &key, &previous_);
        bpf_map_update_elem(fd_->get(), &key, &cfg, BPF_ANY);
    }
    ~TraceRequest() {
        if (!fd_) return;
        uint32_t key = 0;
        bpf_map_update_elem(fd_->get(), &key, &previous_, BPF_ANY);
    }
    TraceRequest(const TraceRequest&) = delete;
    TraceRequest& operator=(const TraceRequest&) = delete;

  private:
    std::unique_ptr<Fd> fd_;
    bpfnet_monitor_cfg previous_{};
};

void run_monitor(Context& ctx, const MonitorArgs& a) {
    MonitorState st;
    st.args = &a;
    if (!a.endpoint.empty()) {
        if (auto ip = Ipv4::parse(a.endpoint); ip) {
            st.endpoint_ip = ip->network_order();
        } else if (unsigned idx = if_nametoindex(a.endpoint.c_str()); idx) {
            st.endpoint_ifindex = idx;
        } else {
            return report_error(
                ctx, fmt::format("--endpoint {}: no such interface or IPv4 address", a.endpoint));
        }
    }
    // The BPF programs' events where the BPF datapath is loaded, the firewall's drops (NFLOG)
    // wherever bpfnet's nftables firewall runs; one of the two is enough to monitor.
    std::optional<inspect::PinnedDatapath> dp;
    auto pinned = inspect::PinnedDatapath::open(ctx.bpffs_root);
    if (pinned) dp = std::move(*pinned);
    std::unique_ptr<NflogReader> nflog;
    std::string nflog_error = "not asked for (--type trace)";
    if (a.type != "trace") {
        auto opened = NflogReader::open(kDropLogGroup);
        if (opened)
            nflog = std::move(*opened);
        else
            nflog_error = opened.error().message;
    }
    if (!dp && !nflog)
        return report_error(ctx, fmt::format("{}; the nftables firewall's drops: {}",
                                             pinned.error().message, nflog_error));
    if (!dp) {
        std::cerr << fmt::format("no BPF datapath ({}): showing the nftables firewall's drops\n",
                                 pinned.error().message);
    } else if (!nflog) {
        std::cerr << fmt::format("not showing the nftables firewall's drops: {}\n", nflog_error);
    }
    timespec wall{}, mono{};
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    st.wall_minus_mono_ns =
        (wall.tv_sec - mono.tv_sec) * 1000000000ll + (wall.tv_nsec - mono.tv_nsec);

    std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> rb(nullptr, ring_buffer__free);
    std::optional<TraceRequest> trace;
    std::optional<Fd> events_fd;  // open for as long as the ring buffer is read
    if (dp) {
        st.datapath = &*dp;
        read_endpoints(st);
        auto events = dp->open_map("bpfnet_events");
        if (failed(ctx, events)) return;
        events_fd.emplace(std::move(*events));
        rb.reset(ring_buffer__new(events_fd->get(), on_event, &st, nullptr));
        if (!rb)
            return report_error(ctx,
                                fmt::format("reading bpfnet_events: {}", std::strerror(errno)));
        // What was in the ring buffer before: the drops of the past are `bpfnet drops`' business.
        st.skipping_backlog = true;
        ring_buffer__consume(rb.get());
        st.skipping_backlog = false;
        trace.emplace(*dp, a.type != "drop");
    }
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    if (a.format == "text")
        std::cerr << fmt::format("Listening for {} events{} (Ctrl-C to stop)\n",
                                 a.type == "all" ? "drop and trace" : a.type,
                                 a.endpoint.empty() ? "" : " of " + a.endpoint);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(a.duration);
    pollfd fds[2] = {{rb ? ring_buffer__epoll_fd(rb.get()) : -1, POLLIN, 0},
                     {nflog ? nflog->fd() : -1, POLLIN, 0}};
    const std::function<void(const NftDrop&)> nft_drop = [&](const NftDrop& d) {
        on_nft_drop(d, st);
    };
    while (!g_stop) {
        if (::poll(fds, 2, 200) < 0 && errno != EINTR)
            return report_error(ctx, fmt::format("polling for events: {}", std::strerror(errno)));
        int n = rb ? ring_buffer__consume(rb.get()) : 0;
        if (n < 0 && n != -EINTR)
            return report_error(ctx, fmt::format("reading bpfnet_events: {}", std::strerror(-n)));
        if (nflog && (fds[1].revents & POLLIN)) nflog->read(nft_drop);
        if (a.duration > 0 && std::chrono::steady_clock::now() >= deadline) break;
    }
}

}  // namespace

void add_monitor_command(CLI::App& app, Context& ctx) {
    auto args = std::make_shared<MonitorArgs>();
    auto* monitor = app.add_subcommand("monitor", "Show datapath events live: drops and traces");
    monitor->add_option("--type", args->type, "drop, trace or all")
        ->check(CLI::IsMember({"drop", "trace", "all"}))
        ->capture_default_str();
    monitor->add_option("--endpoint", args->endpoint,
                        "Only events of this endpoint (host interface or IPv4 address)");
    monitor->add_option("--format", args->format, "text or json (one object per line)")
        ->check(CLI::IsMember({"text", "json"}));
    monitor->add_option("--count", args->count, "Stop after this many events");
    monitor->add_option("--duration", args->duration, "Stop after this many seconds");
    monitor->callback([&ctx, args] { run_monitor(ctx, *args); });
}

}  // namespace bpfnet::cli

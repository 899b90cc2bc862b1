#include "inspect/pinned.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "bpfnet/abi.h"
#include "core/link_info.h"
#include "core/pin_layout.h"

namespace bpfnet::inspect {

namespace {

namespace fs = std::filesystem;

Failure errno_error(const std::string& what, int err) {
    return fail(ErrorKind::Internal,
                fmt::format("{}: {}", what, std::strerror(err < 0 ? -err : err)));
}

bool is_per_cpu(uint32_t type) {
    return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}
bool is_array(uint32_t type) {
    return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

std::string cgroup_hook(uint32_t attach_type) {
    switch (attach_type) {
        case BPF_CGROUP_INET4_CONNECT:
            return "cgroup connect4";
        case BPF_CGROUP_UDP4_SENDMSG:
            return "cgroup sendmsg4";
        case BPF_CGROUP_UDP4_RECVMSG:
            return "cgroup recvmsg4";
        case BPF_CGROUP_INET4_GETPEERNAME:
            return "cgroup getpeername4";
        case BPF_CGROUP_INET4_GETSOCKNAME:
            return "cgroup getsockname4";
        default:
            return fmt::format("cgroup attach type {}", attach_type);
    }
}

std::string xdp_mechanism(uint32_t ifindex) {
    LIBBPF_OPTS(bpf_xdp_query_opts, opts);
    if (bpf_xdp_query(static_cast<int>(ifindex), 0, &opts) != 0) return "xdp";
    switch (opts.attach_mode) {
        case XDP_ATTACHED_DRV:
            return "xdp native";
        case XDP_ATTACHED_SKB:
            return "xdp generic";
        case XDP_ATTACHED_HW:
            return "xdp offload";
        default:
            return "xdp";
    }
}

// Name, tag, run statistics and size of a program.
void describe_program(ProgramAttachment& a) {
    int fd = bpf_prog_get_fd_by_id(a.prog_id);
    if (fd < 0) return;
    Fd prog(fd);
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) return;
    a.prog_name = info.name;
    // The kernel keeps 15 characters of a name; the BTF of the program has all of it.
    if (info.btf_id && info.nr_func_info > 0) {
        std::vector<bpf_func_info> funcs(info.nr_func_info);
        bpf_prog_info more{};
        more.nr_func_info = info.nr_func_info;
        more.func_info_rec_size = sizeof(bpf_func_info);
        more.func_info = reinterpret_cast<uint64_t>(funcs.data());
        uint32_t more_len = sizeof(more);
        if (bpf_obj_get_info_by_fd(prog.get(), &more, &more_len) == 0) {
            if (btf* b = btf__load_from_kernel_by_id(info.btf_id)) {
                const btf_type* t = btf__type_by_id(b, funcs[0].type_id);
                const char* full = t ? btf__name_by_offset(b, t->name_off) : nullptr;
                if (full && *full) a.prog_name = full;
                btf__free(b);
            }
        }
    }
    for (uint8_t b : info.tag) a.tag += fmt::format("{:02x}", b);
    a.run_count = info.run_cnt;
    a.run_time_ns = info.run_time_ns;
    a.instructions = info.xlated_prog_len / sizeof(bpf_insn);
    a.verified_instructions = info.verified_insns;
}

std::string role_of(const std::string& links_dir) {
    if (links_dir == pin_layout::kEndpointLinks) return "endpoint";
    if (links_dir == pin_layout::kUplinkLinks || links_dir == pin_layout::kUplinkXdpLinks)
        return "uplink";
    if (links_dir == pin_layout::kOverlayLinks) return "overlay";
    if (links_dir == pin_layout::kCgroupLinks) return "host sockets";
    return links_dir;
}

}  // namespace

std::string ifname_of(uint32_t ifindex) {
    char name[IF_NAMESIZE] = {};
    return if_indextoname(ifindex, name) ? std::string(name) : std::string();
}

uint64_t monotonic_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Result<PinnedDatapath> PinnedDatapath::open(const std::string& bpffs_root) {
    const std::string dir = (fs::path(bpffs_root) / pin_layout::kDir).string();
    std::error_code ec;
    if (!fs::exists(fs::path(dir) / "bpfnet_net", ec))
        return fail(ErrorKind::NotFound,
                    fmt::format("bpfnet's datapath is not loaded on this host (no maps pinned "
                                "under {}): start bpfnetd with the BPF datapath, or point "
                                "--bpffs-root at the agent's bpffs",
                                dir));
    return PinnedDatapath(dir);
}

Result<Fd> PinnedDatapath::open_map(const std::string& name) const {
    if (name.find('/') != std::string::npos || name.empty())
        return fail(ErrorKind::InvalidArgument, fmt::format("invalid map name \"{}\"", name));
    const std::string pin = dir_ + "/" + name;
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) {
        if (errno == ENOENT)
            return fail(ErrorKind::NotFound,
                        fmt::format("no map {} is pinned under {} (bpfnet map list shows them)",
                                    name, dir_));
        return errno_error("opening " + pin, errno);
    }
    return Fd(fd);
}

Result<std::vector<MapSummary>> PinnedDatapath::maps() const {
    std::vector<MapSummary> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        if (entry.is_directory()) continue;
        const std::string name = entry.path().filename().string();
        auto fd = open_map(name);
        if (!fd) continue;
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0) continue;  // not a map
        MapSummary m;
        m.name = name;
        const char* type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
        m.type = type ? type : std::to_string(info.type);
        m.id = info.id;
        m.key_size = info.key_size;
        m.value_size = info.value_size;
        m.max_entries = info.max_entries;
        if (is_array(info.type)) {
            m.entries = info.max_entries;
        } else if (info.type != BPF_MAP_TYPE_RINGBUF) {
            std::vector<uint8_t> key(info.key_size), next(info.key_size);
            const void* prev = nullptr;
            while (bpf_map_get_next_key(fd->get(), prev, next.data()) == 0) {
                ++m.entries;
                key = next;
                prev = key.data();
            }
        }
        if (const MapLayout* layout = map_layout(name)) m.what = layout->what;
        out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(),
              [](const MapSummary& a, const MapSummary& b) { return a.name < b.name; });
    return out;
}

Result<json> PinnedDatapath::dump(const std::string& name, const IfnameResolver& ifname) const {
    const MapLayout* layout = map_layout(name);
    if (!layout)
        return fail(
            ErrorKind::NotFound,
            fmt::format("{} is not one of bpfnet's maps (bpfnet map list shows them)", name));
    if (!layout->key)
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{} is a ring buffer: watch it with `bpfnet monitor`", name));
    BPFNET_ASSIGN_OR_RETURN(Fd fd, open_map(name));
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return errno_error("reading the info of " + name, errno);
    if (info.key_size != layout->key_size || info.value_size != layout->value_size)
        return fail(ErrorKind::Conflict,
                    fmt::format("{} has key/value sizes {}/{} where this bpfnet expects {}/{}: "
                                "the agent and the CLI are of different versions",
                                name, info.key_size, info.value_size, layout->key_size,
                                layout->value_size));
    const bool per_cpu = is_per_cpu(info.type);
    const int cpus = per_cpu ? libbpf_num_possible_cpus() : 1;
    if (cpus <= 0) return errno_error("counting CPUs", cpus);
    const size_t slot = per_cpu ? (info.value_size + 7) / 8 * 8 : info.value_size;
    std::vector<uint8_t> key(info.key_size), next(info.key_size), value(slot * cpus);
    const uint64_t now = monotonic_now_ns();
    // Networks are keyed by datapath ID; bpfnet_net says which bridge each one has.
    auto networks = open_map("bpfnet_net");
    const Names names{ifname, [&](uint32_t network) -> std::string {
                          bpfnet_net_info net{};
                          if (!networks ||
                              bpf_map_lookup_elem(networks->get(), &network, &net) != 0 ||
                              net.bridge_ifindex == 0)
                              return "";
                          return ifname(net.bridge_ifindex);
                      }};
    json out = json::array();
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd.get(), prev, next.data()) == 0) {
        key = next;
        prev = key.data();
        if (bpf_map_lookup_elem(fd.get(), key.data(), value.data()) != 0) continue;  // just went
        std::vector<uint8_t> one =
            per_cpu ? sum_per_cpu(value, info.value_size, static_cast<unsigned>(cpus)) : value;
        out.push_back(json{{"key", layout->key(key.data(), names)},
                           {"value", layout->value(one.data(), names, now)}});
    }
    return out;
}

Result<uint64_t> PinnedDatapath::clear(const std::string& name) const {
    BPFNET_ASSIGN_OR_RETURN(Fd fd, open_map(name));
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return errno_error("reading the info of " + name, errno);
    std::vector<std::vector<uint8_t>> keys;
    std::vector<uint8_t> key(info.key_size), next(info.key_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd.get(), prev, next.data()) == 0) {
        keys.push_back(next);
        key = next;
        prev = key.data();
    }
    uint64_t removed = 0;
    for (const auto& k : keys)
        if (bpf_map_delete_elem(fd.get(), k.data()) == 0) ++removed;
    return removed;
}

Result<std::vector<ProgramAttachment>> PinnedDatapath::programs() const {
    std::vector<ProgramAttachment> out;
    std::set<std::pair<uint32_t, uint32_t>> seen;  // (ifindex, prog id) found through links
    for (const char* sub :
         {pin_layout::kEndpointLinks, pin_layout::kUplinkLinks, pin_layout::kUplinkXdpLinks,
          pin_layout::kOverlayLinks, pin_layout::kCgroupLinks}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(fs::path(dir_) / sub, ec)) {
            int fd = bpf_obj_get(entry.path().c_str());
            if (fd < 0) continue;
            Fd link(fd);
            BpfLinkInfo info{};
            uint32_t len = sizeof(info);
            if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) continue;
            ProgramAttachment a;
            a.pin = entry.path().string();
            a.role = role_of(sub);
            a.link_id = info.id;
            a.prog_id = info.prog_id;
            if (info.type == kBpfLinkTypeTcx) {
                a.ifindex = info.tcx.ifindex;
                a.hook = "tc ingress";
                a.mechanism = "tcx";
            } else if (info.type == kBpfLinkTypeXdp) {
                a.ifindex = info.xdp.ifindex;
                a.hook = "xdp";
                a.mechanism = xdp_mechanism(a.ifindex);
            } else if (info.type == kBpfLinkTypeCgroup) {
                a.hook = cgroup_hook(info.cgroup.attach_type);
                a.mechanism = "cgroup link";
            } else {
                a.hook = fmt::format("link type {}", info.type);
            }
            // A link whose device went away is defunct until the agent removes its pin.
            a.interface = a.ifindex ? ifname_of(a.ifindex) : "";
            if (a.ifindex && a.interface.empty()) a.interface = "(gone)";
            describe_program(a);
            seen.insert({a.ifindex, a.prog_id});
            out.push_back(std::move(a));
        }
    }
    // Without tcx (and on endpoint veths always) the programs hang off cls_bpf filters with
    // bpfnet's handles on a clsact or ingress qdisc, and no link is
    // pinned: look for them on every interface.
    if (struct if_nameindex* names = if_nameindex()) {
        for (auto* n = names; n->if_index != 0; ++n) {
            for (auto [handle, role] : {std::pair{pin_layout::kEndpointFilterHandle, "endpoint"},
                                        std::pair{pin_layout::kUplinkFilterHandle, "uplink"},
                                        std::pair{pin_layout::kOverlayFilterHandle, "overlay"}}) {
                LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(n->if_index),
                            .attach_point = BPF_TC_INGRESS);
                LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle,
                            .priority = pin_layout::kFilterPriority);
                if (bpf_tc_query(&hook, &opts) != 0 || seen.count({n->if_index, opts.prog_id}))
                    continue;
                ProgramAttachment a;
                a.ifindex = n->if_index;
                a.interface = n->if_name;
                a.hook = "tc ingress";
                a.mechanism = "cls_bpf";
                a.role = role;
                a.prog_id = opts.prog_id;
                describe_program(a);
                if (a.prog_name.rfind("bpfnet_", 0) != 0) continue;  // someone else's filter
                out.push_back(std::move(a));
            }
        }
        if_freenameindex(names);
    }
    return out;
}

}  // namespace bpfnet::inspect

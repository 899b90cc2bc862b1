#include "datapath/published_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "bpfnet/abi.h"
#include "datapath/bpf_util.h"
#include "kernel/netlink.h"

namespace bpfnet {

Result<std::set<uint32_t>> host_ipv4_addresses() {
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto addresses, kernel::list_all_ipv4_addresses(sock));
    std::set<uint32_t> out;
    for (const auto& a : addresses) out.insert(a.address.addr.network_order());
    return out;
}

// Each port's entry. The network is its datapath ID, known without asking the kernel.
static std::vector<std::pair<bpfnet_svc_key, bpfnet_svc_target>> published_entries(
    const std::vector<PublishedPort>& ports) {
    std::vector<std::pair<bpfnet_svc_key, bpfnet_svc_target>> entries;
    for (const auto& p : ports) {
        entries.emplace_back(published_key(p.binding), bpfnet_svc_target{});
        bpfnet_svc_target& target = entries.back().second;
        target.ip = p.endpoint_ip.network_order();
        target.network = p.network;
        target.port = htons(p.binding.container_port);
    }
    return entries;
}

bpfnet_svc_key published_key(const PortBinding& binding) {
    bpfnet_svc_key key{};
    key.host_ip = binding.host_ip.network_order();
    key.port = htons(binding.host_port);
    key.proto = static_cast<uint8_t>(binding.proto);
    return key;
}

Status put_published_ports(int published_fd, const std::vector<PublishedPort>& ports) {
    const auto entries = published_entries(ports);
    for (const auto& [key, target] : entries) {
        if (int err = bpf_map_update_elem(published_fd, &key, &target, BPF_ANY); err)
            return fail(map_error("bpfnet_pub_port update", err));
    }
    return {};
}

Status delete_published_ports(int published_fd, const std::vector<PublishedPort>& ports) {
    for (const auto& p : ports) {
        const bpfnet_svc_key key = published_key(p.binding);
        if (int err = bpf_map_delete_elem(published_fd, &key); err && err != -ENOENT)
            return fail(map_error("bpfnet_pub_port delete", err));
    }
    return {};
}

Status sync_published_maps(int published_fd, int local_ips_fd,
                           const std::vector<PublishedPort>& ports) {
    const auto entries = published_entries(ports);
    auto id = [](const bpfnet_svc_key& k) { return std::tuple(k.host_ip, k.port, k.proto); };
    std::set<std::tuple<uint32_t, uint16_t, uint8_t>> wanted;
    for (const auto& entry : entries) wanted.insert(id(entry.first));
    for (const auto& key : map_keys<bpfnet_svc_key>(published_fd))
        if (!wanted.count(id(key))) bpf_map_delete_elem(published_fd, &key);
    for (const auto& [key, target] : entries) {
        if (int err = bpf_map_update_elem(published_fd, &key, &target, BPF_ANY); err)
            return fail(map_error("bpfnet_pub_port update", err));
    }
    return sync_local_ips(local_ips_fd);
}

Status sync_local_ips(int local_ips_fd) {
    BPFNET_ASSIGN_OR_RETURN(auto addresses, host_ipv4_addresses());
    for (uint32_t ip : map_keys<uint32_t>(local_ips_fd))
        if (!addresses.count(ip)) bpf_map_delete_elem(local_ips_fd, &ip);
    uint8_t one = 1;
    for (uint32_t ip : addresses) {
        if (int err = bpf_map_update_elem(local_ips_fd, &ip, &one, BPF_ANY); err)
            return fail(map_error("bpfnet_local_ip update", err));
    }
    return {};
}

}  // namespace bpfnet

#include "maps/conntrack_map.h"

namespace bpfnet {

ConntrackMap::ConntrackMap(int ct_fd) : ct_(ct_fd, "bpfnet_ct") {}

bpfnet_ct_key ConntrackMap::reply_key(const bpfnet_ct_key& in, const bpfnet_ct_entry& entry) {
    bpfnet_ct_key reply{};
    reply.saddr = entry.nat_addr;
    reply.daddr = in.saddr;
    reply.sport = entry.nat_port;
    reply.dport = in.sport;
    reply.proto = in.proto;
    reply.dir = BPFNET_CT_DIR_REPLY;
    return reply;
}

void ConntrackMap::forget_flows_if(
    const std::function<bool(const bpfnet_ct_key&, const bpfnet_ct_entry&)>& stale) {
    for (const auto& key : ct_.keys()) {
        if (key.dir != BPFNET_CT_DIR_IN) continue;
        auto entry = ct_.get(key);
        if (!entry || !stale(key, *entry)) continue;
        ct_.erase(key);
        ct_.erase(reply_key(key, *entry));
    }
}

}  // namespace bpfnet

#include "cluster/overlay_registry.h"

#include <chrono>
#include <limits>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/ipam.h"
#include "core/json_fields.h"

namespace bpfnet {

using json = nlohmann::json;

namespace {

constexpr const char* kRoot = "/bpfnet/v1/";

std::string network_key(const std::string& id) {
    return fmt::format("{}networks/{}", kRoot, id);
}
std::string vni_key(uint32_t vni) {
    return fmt::format("{}vnis/{}", kRoot, vni);
}
std::string subnet_key(const Cidr& subnet) {
    return fmt::format("{}subnets/{}-{}", kRoot, subnet.network().str(), subnet.prefix_len);
}
std::string address_prefix(const std::string& network_id) {
    return fmt::format("{}addresses/{}/", kRoot, network_id);
}
std::string endpoint_key(const std::string& network_id, const std::string& endpoint_id) {
    return fmt::format("{}endpoints/{}/{}", kRoot, network_id, endpoint_id);
}
std::string attachment_key(const std::string& network_id, const std::string& host) {
    return fmt::format("{}attachments/{}/{}", kRoot, network_id, host);
}
std::string host_key(const std::string& host) {
    return fmt::format("{}hosts/{}", kRoot, host);
}

// Records other agents wrote. One that does not decode is skipped with a warning by the caller: a
// bad record must not stop the watch.
Result<OverlayNetwork> decode_network_record(std::string_view text) {
    BPFNET_ASSIGN_OR_RETURN(json document, parse_json(text));
    BPFNET_ASSIGN_OR_RETURN(JsonObject record, JsonObject::root(document));
    BPFNET_ASSIGN_OR_RETURN(JsonObject network, record.object("network", Presence::Required));
    OverlayNetwork n;
    BPFNET_ASSIGN_OR_RETURN(n.network, network_from_json(network));
    BPFNET_ASSIGN_OR_RETURN(int64_t vni, record.integer("vni", Presence::Required, 0,
                                                        std::numeric_limits<uint32_t>::max()));
    n.vni = static_cast<uint32_t>(vni);
    return n;
}

Result<OverlayEndpoint> decode_endpoint_record(std::string_view text) {
    BPFNET_ASSIGN_OR_RETURN(json document, parse_json(text));
    BPFNET_ASSIGN_OR_RETURN(JsonObject record, JsonObject::root(document));
    OverlayEndpoint e;
    BPFNET_ASSIGN_OR_RETURN(e.host, record.string("host", Presence::Required));
    BPFNET_ASSIGN_OR_RETURN(e.ip, parsed_field(record, "ip", Ipv4::parse));
    BPFNET_ASSIGN_OR_RETURN(e.mac, parsed_field(record, "mac", MacAddr::parse));
    BPFNET_ASSIGN_OR_RETURN(e.vtep, parsed_field(record, "vtep", Ipv4::parse));
    return e;
}

// The path components after the root: {"endpoints", "<net>", "<ep>"}.
std::vector<std::string> key_parts(const std::string& key) {
    std::vector<std::string> parts;
    if (key.rfind(kRoot, 0) != 0) return parts;
    size_t start = std::string(kRoot).size();
    while (start <= key.size()) {
        size_t slash = key.find('/', start);
        if (slash == std::string::npos) slash = key.size();
        parts.push_back(key.substr(start, slash - start));
        start = slash + 1;
    }
    return parts;
}

}  // namespace

OverlayRegistry::OverlayRegistry(std::unique_ptr<EtcdClient> etcd, std::string host_id, Ipv4 vtep,
                                 int64_t lease_ttl_seconds)
    : etcd_(std::move(etcd)),
      host_id_(std::move(host_id)),
      vtep_(vtep),
      lease_ttl_(lease_ttl_seconds) {}

OverlayRegistry::~OverlayRegistry() {
    stop();
}

Status OverlayRegistry::start(std::function<void()> on_change) {
    on_change_ = std::move(on_change);
    {
        std::lock_guard lock(mutex_);
        leased_[host_key(host_id_)] = json{{"vtep", vtep_.str()}}.dump();
    }
    BPFNET_TRY(take_lease_and_republish());
    BPFNET_TRY(resync());
    keepalive_thread_ = std::thread([this] { keepalive_loop(); });
    watch_thread_ = std::thread([this] { watch_loop(); });
    spdlog::info("cluster: host {} (VTEP {}) joined through etcd {}", host_id_, vtep_.str(),
                 fmt::join(etcd_->endpoints(), ","));
    return {};
}

void OverlayRegistry::stop() {
    stop_ = true;
    if (keepalive_thread_.joinable()) keepalive_thread_.join();
    if (watch_thread_.joinable()) watch_thread_.join();
}

// A fresh lease, and everything this host publishes written again under it.
Status OverlayRegistry::take_lease_and_republish() {
    BPFNET_ASSIGN_OR_RETURN(int64_t lease, etcd_->grant_lease(lease_ttl_));
    lease_ = lease;
    std::map<std::string, std::string> leased;
    {
        std::lock_guard lock(mutex_);
        leased = leased_;
    }
    for (const auto& [key, value] : leased) BPFNET_TRY(etcd_->put(key, value, lease));
    return {};
}

void OverlayRegistry::keepalive_loop() {
    const auto period = std::chrono::milliseconds(lease_ttl_ * 1000 / 3);
    auto next = std::chrono::steady_clock::now() + period;
    while (!stop_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (std::chrono::steady_clock::now() < next) continue;
        next = std::chrono::steady_clock::now() + period;
        Status alive = etcd_->keep_alive(lease_);
        if (alive) continue;
        if (alive.error().kind == ErrorKind::NotFound) {
            // Partitioned for longer than the TTL: the cluster dropped our records. Write them
            // again under a new lease as soon as etcd answers.
            spdlog::warn("cluster: lease expired; re-publishing this host's endpoints");
            if (auto st = take_lease_and_republish(); !st)
                spdlog::warn("cluster: {}", st.error().message);
        } else {
            spdlog::warn("cluster: keep-alive failed: {}", alive.error().message);
        }
    }
}

Status OverlayRegistry::resync() {
    BPFNET_ASSIGN_OR_RETURN(auto range, etcd_->get_prefix(kRoot));
    {
        std::lock_guard lock(mutex_);
        networks_.clear();
        endpoints_.clear();
        attachments_.clear();
    }
    for (const auto& kv : range.kvs) apply(kv, false);
    {
        std::lock_guard lock(mutex_);
        revision_ = range.revision;
    }
    if (on_change_) on_change_();
    return {};
}

void OverlayRegistry::watch_loop() {
    while (!stop_) {
        const int64_t from = revision() + 1;
        Status watched = etcd_->watch_prefix(
            kRoot, from,
            [this](const std::vector<EtcdEvent>& events) {
                for (const auto& e : events) apply(e.kv, e.deleted);
                {
                    std::lock_guard lock(mutex_);
                    for (const auto& e : events) revision_ = std::max(revision_, e.kv.mod_revision);
                }
                if (on_change_) on_change_();
                return !stop_.load();
            },
            stop_);
        if (stop_) break;
        if (!watched && watched.error().kind == ErrorKind::Conflict) {
            spdlog::warn("cluster: watch history compacted; re-reading everything");
            if (auto st = resync(); !st) spdlog::warn("cluster: {}", st.error().message);
            continue;
        }
        spdlog::warn("cluster: watch interrupted ({}); resuming from revision {}",
                     watched ? "closed" : watched.error().message, from);
        for (int i = 0; i < 10 && !stop_; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

void OverlayRegistry::apply(const EtcdKeyValue& kv, bool deleted) {
    const auto parts = key_parts(kv.key);
    if (parts.empty()) return;
    std::lock_guard lock(mutex_);
    if (parts[0] == "networks" && parts.size() == 2) {
        if (deleted) {
            networks_.erase(parts[1]);
            return;
        }
        auto network = decode_network_record(kv.value);
        if (!network) {
            spdlog::warn("cluster: ignoring unreadable network record {}: {}", kv.key,
                         network.error().message);
            return;
        }
        networks_[parts[1]] = std::move(*network);
    } else if (parts[0] == "attachments" && parts.size() == 3) {
        if (deleted) {
            attachments_[parts[1]].erase(parts[2]);
        } else if (parts[2] != host_id_ || leased_.count(kv.key)) {
            // This host's own attachment follows what it holds: the watch may deliver the put of
            // an attach after the detach that followed it, which must not bring it back.
            attachments_[parts[1]].insert(parts[2]);
        }
    } else if (parts[0] == "endpoints" && parts.size() == 3) {
        if (deleted) {
            endpoints_[parts[1]].erase(parts[2]);
            return;
        }
        auto endpoint = decode_endpoint_record(kv.value);
        if (!endpoint) {
            spdlog::warn("cluster: ignoring unreadable endpoint record {}: {}", kv.key,
                         endpoint.error().message);
            return;
        }
        endpoint->network_id = parts[1];
        endpoint->endpoint_id = parts[2];
        endpoints_[parts[1]][parts[2]] = *endpoint;
    }
}

Result<uint32_t> OverlayRegistry::claim_vni(const std::string& network_id,
                                            std::optional<uint32_t> requested) {
    if (requested) {
        if (*requested < 1 || *requested > kOverlayVniMax)
            return fail(ErrorKind::InvalidArgument,
                        fmt::format("VNI {} is out of range 1..{}", *requested, kOverlayVniMax));
        BPFNET_ASSIGN_OR_RETURN(bool claimed, etcd_->create(vni_key(*requested), network_id));
        if (!claimed)
            return fail(
                ErrorKind::Conflict,
                fmt::format("VNI {} is already used by another overlay network", *requested));
        return *requested;
    }
    BPFNET_ASSIGN_OR_RETURN(auto taken, etcd_->get_prefix(std::string(kRoot) + "vnis/"));
    std::set<uint32_t> used;
    for (const auto& kv : taken.kvs) {
        const auto parts = key_parts(kv.key);
        if (parts.size() == 2) used.insert(static_cast<uint32_t>(std::stoul(parts[1])));
    }
    for (uint32_t vni = kOverlayVniMin; vni <= kOverlayVniMax; ++vni) {
        if (used.count(vni)) continue;
        BPFNET_ASSIGN_OR_RETURN(bool claimed, etcd_->create(vni_key(vni), network_id));
        if (claimed) return vni;  // else another host took it a moment ago: try the next
    }
    return fail(ErrorKind::Exhausted, "every VNI is in use");
}

Status OverlayRegistry::release_vni(uint32_t vni, const std::string& network_id) {
    BPFNET_TRY(etcd_->delete_if_value(vni_key(vni), network_id));
    return {};
}

Status OverlayRegistry::claim_subnet(const Cidr& subnet, const std::string& network_id) {
    BPFNET_ASSIGN_OR_RETURN(bool claimed, etcd_->create(subnet_key(subnet), network_id));
    if (claimed) return {};
    BPFNET_ASSIGN_OR_RETURN(auto holder, etcd_->get(subnet_key(subnet)));
    if (holder && holder->value == network_id) return {};  // ours already (a retried create)
    return fail(ErrorKind::Conflict,
                fmt::format("subnet {} is already used by overlay {} in the cluster", subnet.str(),
                            holder ? holder->value.substr(0, 12) : std::string("(gone)")));
}

Status OverlayRegistry::release_subnet(const Cidr& subnet, const std::string& network_id) {
    BPFNET_TRY(etcd_->delete_if_value(subnet_key(subnet), network_id));
    return {};
}

Result<int64_t> OverlayRegistry::put_network(const OverlayNetwork& network) {
    Network shared = network.network;
    shared.datapath_id = 0;  // each host keys the network in its maps by an ID of its own
    json record = {{"network", shared}, {"vni", network.vni}};
    return etcd_->put(network_key(network.network.id), record.dump());
}

Status OverlayRegistry::delete_network(const std::string& network_id) {
    const std::string attachments = fmt::format("{}attachments/{}/", kRoot, network_id);
    {
        // Nothing of the network is written again under a new lease.
        std::lock_guard lock(mutex_);
        std::erase_if(leased_, [&](const auto& entry) {
            return entry.first.rfind(attachments, 0) == 0 ||
                   entry.first.rfind(address_prefix(network_id), 0) == 0;
        });
    }
    BPFNET_TRY(etcd_->remove(network_key(network_id)));
    BPFNET_TRY(etcd_->remove_prefix(address_prefix(network_id)));
    BPFNET_TRY(etcd_->remove_prefix(attachments));
    return {};
}

Result<Ipv4> OverlayRegistry::claim_address(const Network& network, std::optional<Ipv4> requested,
                                            const std::string& endpoint_id) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        BPFNET_ASSIGN_OR_RETURN(auto claimed, etcd_->get_prefix(address_prefix(network.id)));
        std::set<Ipv4> used;
        for (const auto& kv : claimed.kvs) {
            const auto parts = key_parts(kv.key);
            if (parts.size() != 3) continue;
            if (auto ip = Ipv4::parse(parts[2]); ip) used.insert(*ip);
        }
        BPFNET_ASSIGN_OR_RETURN(Ipv4 ip,
                                allocate_address(network.ipam, used, requested, network.name));
        const std::string key = address_prefix(network.id) + ip.str();
        BPFNET_ASSIGN_OR_RETURN(bool won, etcd_->create(key, endpoint_id, lease_));
        if (won) {
            std::lock_guard lock(mutex_);
            leased_[key] = endpoint_id;
            return ip;
        }
        if (requested)
            return fail(
                ErrorKind::Conflict,
                fmt::format("address {} is already in use on network {}", ip.str(), network.name));
        // Another host claimed it between our read and our write: read again.
    }
    return fail(
        ErrorKind::Conflict,
        fmt::format("could not claim an address on network {}: too much contention", network.name));
}

Status OverlayRegistry::release_address(const std::string& network_id, Ipv4 ip,
                                        const std::string& endpoint_id) {
    const std::string key = address_prefix(network_id) + ip.str();
    {
        std::lock_guard lock(mutex_);
        leased_.erase(key);
    }
    BPFNET_TRY(etcd_->delete_if_value(key, endpoint_id));
    return {};
}

Status OverlayRegistry::reclaim_address(const std::string& network_id, Ipv4 ip,
                                        const std::string& endpoint_id) {
    const std::string key = address_prefix(network_id) + ip.str();
    BPFNET_ASSIGN_OR_RETURN(auto holder, etcd_->get(key));
    if (holder && holder->value != endpoint_id)
        return fail(ErrorKind::Conflict,
                    fmt::format("address {} was taken by another endpoint meanwhile", ip.str()));
    BPFNET_TRY(etcd_->put(key, endpoint_id, lease_));
    std::lock_guard lock(mutex_);
    leased_[key] = endpoint_id;
    return {};
}

Status OverlayRegistry::publish_endpoint(const OverlayEndpoint& endpoint) {
    const std::string key = endpoint_key(endpoint.network_id, endpoint.endpoint_id);
    const std::string value = json{
        {"ip", endpoint.ip.str()},
        {"mac", endpoint.mac.str()},
        {"vtep", endpoint.vtep.str()},
        {"host", endpoint.host}}.dump();
    {
        std::lock_guard lock(mutex_);
        leased_[key] = value;
    }
    BPFNET_TRY(etcd_->put(key, value, lease_));
    return {};
}

Status OverlayRegistry::withdraw_endpoint(const std::string& network_id,
                                          const std::string& endpoint_id) {
    const std::string key = endpoint_key(network_id, endpoint_id);
    {
        std::lock_guard lock(mutex_);
        leased_.erase(key);
    }
    return etcd_->remove(key);
}

Status OverlayRegistry::attach(const std::string& network_id) {
    const std::string key = attachment_key(network_id, host_id_);
    {
        std::lock_guard lock(mutex_);
        leased_[key] = "docker";
    }
    BPFNET_TRY(etcd_->put(key, "docker", lease_));
    return {};
}

Status OverlayRegistry::detach(const std::string& network_id) {
    const std::string key = attachment_key(network_id, host_id_);
    {
        std::lock_guard lock(mutex_);
        leased_.erase(key);
        // Seen at once by this host's own decisions (remove the overlay or not), not only
        // after the watch delivers the deletion.
        attachments_[network_id].erase(host_id_);
    }
    return etcd_->remove(key);
}

std::vector<std::string> OverlayRegistry::attached_hosts(const std::string& network_id) const {
    std::lock_guard lock(mutex_);
    auto it = attachments_.find(network_id);
    if (it == attachments_.end()) return {};
    return {it->second.begin(), it->second.end()};
}

std::optional<OverlayNetwork> OverlayRegistry::network(const std::string& network_id) const {
    std::lock_guard lock(mutex_);
    auto it = networks_.find(network_id);
    if (it == networks_.end()) return std::nullopt;
    return it->second;
}

std::vector<OverlayNetwork> OverlayRegistry::networks() const {
    std::lock_guard lock(mutex_);
    std::vector<OverlayNetwork> out;
    for (const auto& [id, n] : networks_) out.push_back(n);
    return out;
}

std::vector<OverlayEndpoint> OverlayRegistry::endpoints(const std::string& network_id) const {
    std::lock_guard lock(mutex_);
    std::vector<OverlayEndpoint> out;
    auto it = endpoints_.find(network_id);
    if (it == endpoints_.end()) return out;
    for (const auto& [id, e] : it->second) out.push_back(e);
    return out;
}

int64_t OverlayRegistry::revision() const {
    std::lock_guard lock(mutex_);
    return revision_;
}

}  // namespace bpfnet

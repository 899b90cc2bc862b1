// What overlay networks share across hosts, kept in etcd, and this host's live view of it.
//
// Keys (all under /bpfnet/v1/):
//   networks/<id>               the network's definition (JSON, as Network), written once
//   vnis/<vni>                  <network id>: a VNI is claimed by exactly one network
//   subnets/<a.b.c.d>-<len>     <network id>: so is a subnet (two hosts creating the same one at
//                               once: one wins, the other's Docker network then joins it)
//   addresses/<network>/<ip>    <endpoint id>: an address is claimed by exactly one endpoint
//                               (cluster-wide IPAM), under the owning host's lease
//   endpoints/<network>/<ep>    {"ip","mac","vtep","host"}, under the owning host's lease
//   hosts/<host>                {"vtep"}, under the host's lease
//   attachments/<network>/<host> "docker": a Docker network on that host joins the overlay
//                               (Docker networks are per host; the overlay lives while one of
//                               them does), under the host's lease
//
// A host's lease (TTL a few seconds, kept alive by a thread) ties its endpoints and address claims
// to its life: when it dies, etcd deletes them and every other host's watch removes them from its
// tunnel tables. The watch starts from the revision of an initial full read and resumes from the
// last revision it saw after etcd restarts or partitions; if that revision was compacted away it
// re-reads everything, so no update is ever lost. A lease that expired meanwhile (partition longer
// than the TTL) is replaced and everything this host published is written again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "core/ipv4.h"
#include "core/model.h"
#include "core/result.h"

namespace bpfnet {

// VNIs bpfnet allocates itself (below 4096 is left to -o vxlanid_list and to VLAN-minded users).
inline constexpr uint32_t kOverlayVniMin = 4096;
inline constexpr uint32_t kOverlayVniMax = (1u << 24) - 1;

struct OverlayEndpoint {
    std::string network_id;
    std::string endpoint_id;
    std::string host;
    Ipv4 ip;
    MacAddr mac;
    Ipv4 vtep;
};

struct OverlayNetwork {
    Network network;  // driver "overlay"; options carry the VNI
    uint32_t vni = 0;
};

class OverlayRegistry {
  public:
    OverlayRegistry(std::unique_ptr<EtcdClient> etcd, std::string host_id, Ipv4 vtep,
                    int64_t lease_ttl_seconds = 10);
    ~OverlayRegistry();

    // Takes the host's lease, publishes the host, reads everything and starts the keep-alive and
    // watch threads. `on_change` runs (on the watch thread) after every batch of changes.
    Status start(std::function<void()> on_change);
    void stop();

    // ---- networks ----
    // Claims `requested` (taken: Conflict) or the lowest free VNI from kOverlayVniMin.
    Result<uint32_t> claim_vni(const std::string& network_id, std::optional<uint32_t> requested);
    Status release_vni(uint32_t vni, const std::string& network_id);
    // Conflict when another overlay holds exactly this subnet.
    Status claim_subnet(const Cidr& subnet, const std::string& network_id);
    Status release_subnet(const Cidr& subnet, const std::string& network_id);
    // Returns the revision of the write: the view includes the network once revision() reaches it.
    Result<int64_t> put_network(const OverlayNetwork& network);
    Status delete_network(const std::string& network_id);

    // ---- addresses (cluster-wide IPAM) ----
    // `requested`, or the lowest free address of the network's subnet (its ip_range first),
    // claimed for `endpoint_id` under this host's lease.
    Result<Ipv4> claim_address(const Network& network, std::optional<Ipv4> requested,
                               const std::string& endpoint_id);
    Status release_address(const std::string& network_id, Ipv4 ip, const std::string& endpoint_id);
    // Takes an address this host's endpoint already held (before an agent restart) under the
    // current lease; Conflict if another endpoint holds it now.
    Status reclaim_address(const std::string& network_id, Ipv4 ip, const std::string& endpoint_id);

    // ---- endpoints ----
    Status publish_endpoint(const OverlayEndpoint& endpoint);
    Status withdraw_endpoint(const std::string& network_id, const std::string& endpoint_id);

    // ---- Docker networks joined to an overlay ----
    Status attach(const std::string& network_id);
    Status detach(const std::string& network_id);

    // ---- the live view (from the watch) ----
    std::vector<OverlayNetwork> networks() const;
    std::optional<OverlayNetwork> network(const std::string& network_id) const;
    // Hosts whose Docker has a network joined to the overlay.
    std::vector<std::string> attached_hosts(const std::string& network_id) const;
    std::vector<OverlayEndpoint> endpoints(const std::string& network_id) const;
    const std::string& host_id() const { return host_id_; }
    Ipv4 vtep() const { return vtep_; }
    // Revision of the last change applied to the view; 0 before start.
    int64_t revision() const;

  private:
    Status take_lease_and_republish();
    void keepalive_loop();
    void watch_loop();
    Status resync();
    void apply(const EtcdKeyValue& kv, bool deleted);

    std::unique_ptr<EtcdClient> etcd_;
    std::string host_id_;
    Ipv4 vtep_;
    int64_t lease_ttl_;
    std::atomic<int64_t> lease_{0};
    std::function<void()> on_change_;

    mutable std::mutex mutex_;                        // guards everything below
    std::map<std::string, OverlayNetwork> networks_;  // by id
    std::map<std::string, std::map<std::string, OverlayEndpoint>> endpoints_;  // network -> ep
    std::map<std::string, std::set<std::string>> attachments_;                 // network -> hosts
    int64_t revision_ = 0;
    // What this host wrote under its lease, written again when the lease is replaced.
    std::map<std::string, std::string> leased_;  // key -> value

    std::atomic<bool> stop_{false};
    std::thread keepalive_thread_;
    std::thread watch_thread_;
};

}  // namespace bpfnet

// The state store: the one source of truth for networks, endpoints and sandboxes. Every write is a
// transaction, so a crash between two writes never leaves half an object; the reconciler brings the
// kernel in line with whatever the store holds.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace bpfnet {

class Store {
  public:
    virtual ~Store() = default;

    virtual Result<std::vector<Network>> networks() = 0;
    virtual Result<std::vector<Endpoint>> endpoints() = 0;
    virtual Result<std::vector<Sandbox>> sandboxes() = 0;
    virtual Result<std::vector<AddressPool>> pools() = 0;

    // Targeted reads, so that an operation on one endpoint costs the same on a host with thousands
    // of them (indexed; see the schema's version 3).
    // Sandboxes `ref` may name: exact id, exact name or id prefix (resolve_ref picks among them).
    virtual Result<std::vector<Sandbox>> sandboxes_matching(const std::string& ref) = 0;
    virtual Result<std::optional<Sandbox>> sandbox(const std::string& id) = 0;
    // The sandboxes recorded for a network namespace path (Docker's sandbox key).
    virtual Result<std::vector<Sandbox>> sandboxes_in_netns(const std::string& netns_path) = 0;
    virtual Result<std::optional<Endpoint>> endpoint(const std::string& id) = 0;
    virtual Result<std::vector<Endpoint>> endpoints_of_network(const std::string& network_id) = 0;
    virtual Result<std::vector<Endpoint>> endpoints_of_sandbox(const std::string& sandbox_id) = 0;
    // The addresses of the endpoints on a network (what IPAM must not hand out again).
    virtual Result<std::vector<Ipv4>> addresses_in_network(const std::string& network_id) = 0;
    // The published ports whose host port lies in [first, last] (any protocol and address), with
    // the id of the endpoint each belongs to.
    virtual Result<std::vector<std::pair<std::string, PortBinding>>> published_ports_in(
        uint16_t first, uint16_t last) = 0;

    // Upserts by id. A second object with the same name (networks, sandboxes) is a Conflict.
    virtual Status put_network(const Network& network) = 0;
    virtual Status put_endpoint(const Endpoint& endpoint) = 0;
    virtual Status put_sandbox(const Sandbox& sandbox) = 0;
    virtual Status put_pool(const AddressPool& pool) = 0;
    // Deleting an absent id is success.
    virtual Status delete_network(const std::string& id) = 0;
    virtual Status delete_endpoint(const std::string& id) = 0;
    virtual Status delete_sandbox(const std::string& id) = 0;
    virtual Status delete_pool(const std::string& id) = 0;

    // A new network's datapath ID (Network::datapath_id): 1, 2, 3, ... in this store's life, never
    // one given before, even to a network since deleted (stale BPF entries of a deleted network
    // can then never be mistaken for a new one's). Exhausted after 2^32 - 1 networks.
    virtual Result<uint32_t> allocate_datapath_id() = 0;

    // Small key/value facts about this agent (its instance id, schema version, ...).
    virtual Result<std::optional<std::string>> get_meta(const std::string& key) = 0;
    virtual Status put_meta(const std::string& key, const std::string& value) = 0;

    // Runs `body` as one atomic transaction: all of its writes land or none do (body failing rolls
    // back). Nested calls join the outer transaction.
    virtual Status transaction(const std::function<Status()>& body) = 0;
};

// Opens (creating if needed) the SQLite store at `path` (WAL, synchronous=FULL, foreign keys on).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace bpfnet

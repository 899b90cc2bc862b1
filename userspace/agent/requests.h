// What callers ask of the network service and what it answers beyond the model: the requests of
// `network create` and `network connect` (from the CLI or Docker), and which datapath serves a
// network. Shared by the service and the network drivers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ipam.h"
#include "core/model.h"
#include "core/ports.h"
#include "datapath/datapath_graph.h"

namespace bpfnet {

struct CreateNetworkRequest {
    std::string name;
    std::string driver = "bridge";
    bool internal = false;
    std::map<std::string, std::string> options;
    std::map<std::string, std::string> labels;
    IpamRequest ipam;
    // Networks Docker creates through the plugin protocol keep Docker's network ID.
    std::string id;
    Owner owner = Owner::Bpfnet;
    // The bpfnet IPAM pool Docker took the subnet from (`--ipam-driver bpfnet`), if any: the
    // network may overlap that pool, which exists for it, but nothing else.
    std::string pool_id;
};

struct ConnectRequest {
    std::string network;  // name, ID or ID prefix
    std::string sandbox;
    std::optional<Ipv4> ip;
    std::vector<std::string> aliases;
    std::vector<PortRequest> publish;  // --publish: host ports forwarded to the endpoint
    // --driver-opt: the endpoint's driver options (com.docker.network.endpoint.ifname).
    std::map<std::string, std::string> driver_opts;
};

// Which datapath serves a network, and why. `kind` is the layer of a bridge network (Kernel for
// the other drivers, whose `name` says what serves them).
struct DatapathChoice {
    std::string name;
    std::string reason;
    DatapathKind kind = DatapathKind::Kernel;
};

// Everything in the store, or the part of it an operation needs (see NetworkService::load_scope).
struct Snapshot {
    std::vector<Network> networks;
    std::vector<Endpoint> endpoints;
    std::vector<Sandbox> sandboxes;
};

}  // namespace bpfnet

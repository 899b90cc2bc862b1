// The kernel datapath: a Linux bridge per network holding the gateway address, a veth pair per
// endpoint, and nftables rules for isolation, icc, internal networks and masquerade. This is what
// Docker's bridge driver builds, and it is bpfnet's permanent fallback where BPF cannot be used.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "datapath/datapath.h"
#include "datapath/docker_user_chain.h"
#include "datapath/nft_ruleset.h"
#include "kernel/host_interfaces.h"
#include "kernel/netlink.h"

namespace bpfnet {

// "bn-" + the first 12 hex digits of the network ID: fits IFNAMSIZ and says who made it.
std::string default_bridge_name(const std::string& network_id);
// Host end of an endpoint's veth pair: "bnv-" + 11 hex digits of the endpoint ID.
std::string host_veth_name(const std::string& endpoint_id);
// Container end of a Docker endpoint's pair while it waits on the host for Docker to move it into
// the sandbox: "bnp-" + 11 hex digits of the endpoint ID.
std::string handover_veth_name(const std::string& endpoint_id);
// The interface group (IFLA_GROUP) of a network's routed endpoint ports: the first 8 hex digits of
// its ID, top bit cleared (never 0, the default group of every interface), so the firewall can
// match them.
uint32_t network_ifgroup(const std::string& network_id);

class KernelDatapath : public Datapath {
  public:
    // `instance` identifies this agent: it is written into the alias of every link the datapath
    // creates ("bpfnet:<instance>:...") and names its nftables tables, so several agents can share
    // a host and each only ever deletes what it made.
    // `uplinks`: --uplink's values (names, "auto"); see kernel/host_interfaces.h.
    explicit KernelDatapath(std::string instance, std::vector<std::string> uplinks = {});

    const char* name() const override { return "kernel"; }
    std::string forward_firewall_state() const override;
    std::string host_interfaces_state() const override;
    Status ensure_network(const NetworkSpec& spec) override;
    Status remove_network(const Network& network) override;
    Status ensure_endpoint(const NetworkSpec& spec, const Endpoint& endpoint,
                           const Sandbox& sandbox) override;
    Status remove_endpoint(const Endpoint& endpoint, const Sandbox& sandbox) override;
    Status sync_policy(const std::vector<NetworkSpec>& networks,
                       const std::vector<PublishedPort>& ports) override;
    Status publish_ports(const std::vector<PublishedPort>& ports) override;
    Status unpublish_ports(const std::vector<PublishedPort>& ports) override;
    Status remove_policy() override;
    Result<bool> refresh_host() override;
    Result<std::vector<std::string>> collect_garbage(const std::set<std::string>& keep) override;

    std::string owner_alias(const std::string& what, const std::string& id) const;
    // Whether a link alias is this agent's ownership marker.
    bool owned_by_us(const std::string& alias) const;
    const std::string& nft_table() const { return nft_table_; }
    // The host's uplinks and other bridges as the last survey found them (the first call
    // surveys; refresh_host() surveys again when the host watch reports a change). Policy syncs
    // use this, so their cost does not grow with the number of links on the host.
    Result<kernel::HostInterfaces> host_interfaces();

  private:
    Status ensure_docker_endpoint(const NetworkSpec& spec, const Endpoint& endpoint);
    Status change_ports(const std::vector<PublishedPort>& ports, bool add);
    // route_localnet on the bridges of non-routed published ports (see sync_policy).
    Status allow_loopback_dnat(const std::vector<PublishedPort>& ports);
    Status attach_host_end(kernel::NlSocket& host, const NetworkSpec& spec,
                           const Endpoint& endpoint);

    std::string instance_;
    std::vector<std::string> uplinks_;
    std::string nft_table_;
    Result<kernel::HostInterfaces> survey_host() const;
    // Whether the kernel logs to NFLOG (asked once, at the first policy sync).
    bool drops_logged();
    std::optional<bool> log_drops_;
    std::string log_state_;            // for status; written once, before anything reads it
    mutable std::mutex survey_mutex_;  // status reads last_survey_ while a sync writes it
    // Mutable: status surveys on demand when nothing has yet (an agent without networks).
    mutable kernel::HostInterfaces last_survey_;
    mutable bool surveyed_ = false;
    NftRunner nft_;
    // What the tables hold since the last successful sync_policy or port change (none: unknown,
    // or no tables): port changes are applied as element edits against it.
    std::optional<FirewallSpec> applied_;
    DockerUserChain docker_user_;
};

}  // namespace bpfnet

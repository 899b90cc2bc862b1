// RAII wrappers over libnl-3 route objects: links (bridge, veth), addresses, routes. Every call
// checks the kernel's ACK and turns errno into a Result with a message naming the object.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ipv4.h"
#include "core/result.h"

struct nl_sock;

namespace bpfnet::kernel {

// A Linux bridge's port numbers are 10 bits (BR_MAX_PORTS 1024, port 0 unused).
inline constexpr int kMaxBridgePorts = 1023;

// A NETLINK_ROUTE socket. Bound to the network namespace it was opened in: open_in_netns() switches
// the calling thread into the namespace just long enough to create the socket.
class NlSocket {
  public:
    static Result<NlSocket> open();
    static Result<NlSocket> open_in_netns(const std::string& netns_path);

    NlSocket(NlSocket&&) noexcept = default;
    NlSocket& operator=(NlSocket&&) noexcept = default;
    ~NlSocket();

    nl_sock* get() const { return sock_.get(); }

  private:
    struct Deleter {
        void operator()(nl_sock* s) const;
    };
    explicit NlSocket(nl_sock* s) : sock_(s) {}
    std::unique_ptr<nl_sock, Deleter> sock_;
};

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::string kind;   // "bridge", "veth", ... (empty for devices without link info)
    std::string alias;  // IFLA_IFALIAS; bpfnet marks what it owns here
    int master_ifindex = 0;
    uint32_t group = 0;  // IFLA_GROUP: the interface group, 0 by default
    bool up = false;
    unsigned mtu = 0;
    unsigned arptype = 0;  // ARPHRD_*: 1 (ARPHRD_ETHER) for devices with Ethernet headers
    bool loopback = false;
    MacAddr mac;
};

Result<std::vector<LinkInfo>> list_links(NlSocket& sock);
// nullopt when no link has that name.
Result<std::optional<LinkInfo>> find_link(NlSocket& sock, const std::string& name);

// Creates a bridge (down, no ports) with MTU and alias, then brings it up.
Status create_bridge(NlSocket& sock, const std::string& name, unsigned mtu,
                     const std::string& alias);

struct VethSpec {
    std::string host_name;        // host end, stays in the socket's namespace
    std::string host_alias;       // ownership marker
    std::string bridge_name;      // host end is enslaved here (empty: not enslaved)
    std::string peer_name;        // final name of the sandbox end (eth0, eth1, ...)
    std::string peer_netns_path;  // the peer is created directly inside this namespace (empty: on
                                  // the host, for a runtime like Docker to move it itself)
    MacAddr peer_mac;
    unsigned mtu = 1500;
    // false: IPv6 off on the host end before it goes up (see create_veth). A sysctl, which acts
    // in the caller's namespace: only for a `host` socket of the caller's own namespace.
    bool host_ipv6 = true;
};
// Creates the pair with the peer already inside its namespace (never visible on the host), sets the
// host end's alias and master and brings the host end up. The peer is left down for the caller to
// configure through a socket in its namespace.
Status create_veth(NlSocket& host, const VethSpec& spec);

// Deleting a link that does not exist is success (idempotent teardown).
Status delete_link(NlSocket& sock, const std::string& name);
Status set_link_up(NlSocket& sock, const std::string& name);
Status set_link_alias(NlSocket& sock, const std::string& name, const std::string& alias);
Status set_link_master(NlSocket& sock, const std::string& name, const std::string& master);
// Puts a bridge port in hairpin mode (frames may leave through the port they came in on), as
// `bridge link set dev NAME hairpin on` does: over netlink, because sysfs shows the devices of
// the namespace it was mounted in, not those of the caller's.
Status set_bridge_port_hairpin(NlSocket& sock, const std::string& name);
// The bridge's forward delay to 0 (`ip link set NAME type bridge forward_delay 0`), which
// create_bridge sets on every bridge it makes: for bridges made before it did.
Status zero_bridge_forward_delay(NlSocket& sock, const std::string& name);

// Adds addr (address/prefix) to the interface; an existing identical address is success.
Status add_address(NlSocket& sock, const std::string& ifname, const Cidr& addr);
Result<std::vector<Cidr>> list_addresses(NlSocket& sock, const std::string& ifname);
struct InterfaceAddress {
    int ifindex = 0;
    Cidr address;
    bool global = false;  // scope global (not host- or link-local)
};
// Every IPv4 address of the namespace, in one dump (a host may have thousands of links: asking
// link by link would dump all addresses once per link).
Result<std::vector<InterfaceAddress>> list_all_ipv4_addresses(NlSocket& sock);

// Default route (main table) via `gateway` on `ifname`; replaces an existing default route.
Status replace_default_route(NlSocket& sock, const std::string& ifname, Ipv4 gateway);
// Removes the IPv4 default route if there is one.
Status delete_default_route(NlSocket& sock);
// Nullopt when the namespace has no IPv4 default route; else the outgoing interface name.
Result<std::optional<std::string>> default_route_ifname(NlSocket& sock);
// Interfaces that IPv4 unicast routes of the main table (default route included) lead out of.
Result<std::vector<int>> ipv4_route_ifindexes(NlSocket& sock);
// Destinations of the IPv4 main table (for IPAM overlap checks), default route excluded.
Result<std::vector<Cidr>> list_ipv4_route_destinations(NlSocket& sock);

}  // namespace bpfnet::kernel

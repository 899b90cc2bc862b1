/* The one header shared by the BPF programs (C, clang -target bpf) and the C++ agent: map keys and
 * values, enums and limits. Everything a map holds is defined here exactly once, so the kernel and
 * user space can never disagree about a layout; the C++ side checks sizes and offsets at compile
 * time below. Later datapath features (endpoints, conntrack, NAT, overlay) add their keys/values
 * here too.
 *
 * Rules that keep the layouts identical for both compilers:
 *  - only fixed-width kernel types (__u8.. __u64, __be16, __be32) from <linux/types.h>;
 *  - fields ordered largest first, explicit padding fields instead of implicit holes (the verifier
 *    rejects reads of uninitialised stack padding, and the kernel copies holes verbatim);
 *  - no bool, no enums as field types (their size is the compiler's choice); store them as __u32.
 *
 * C, not C++, syntax throughout: this file is compiled by clang for the BPF target as plain C. */
#ifndef BPFNET_ABI_H
#define BPFNET_ABI_H

#include <linux/types.h>

/* Verdicts a TC program returns. The values are the kernel's TC_ACT_* ABI (linux/pkt_cls.h),
 * mirrored here so user space (tests, knobs, the CLI's drop reasons) can name them without the
 * kernel header; the C++ block below checks the mirror against the kernel's values. */
enum bpfnet_tc_verdict {
    BPFNET_TC_OK = 0,       /* TC_ACT_OK: hand the packet on to the stack */
    BPFNET_TC_SHOT = 2,     /* TC_ACT_SHOT: drop it */
    BPFNET_TC_REDIRECT = 7, /* TC_ACT_REDIRECT: bpf_redirect*() chose another device */
};

/* ---- pipeline: the build-pipeline proof and datapath probe program (bpf/pipeline.bpf.c) ---- */

/* bpfnet_pl_stats is an ARRAY with a single slot; its value counts what the program saw. */
#define BPFNET_PIPELINE_STATS_KEY 0
#define BPFNET_PIPELINE_STATS_ENTRIES 1

struct bpfnet_pipeline_stats {
    __u64 packets; /* every skb the program ran on */
    __u64 bytes;   /* sum of skb->len, including the Ethernet header */
};

/* ---- endpoint: TC ingress on the host end of each endpoint veth (bpf/endpoint.bpf.c) ---- */

/* Map sizes (max_entries). An endpoint or network beyond these is refused ("the BPF map is full",
 * an exhausted resource) and its connect or create rolled back. */
#define BPFNET_MAX_ENDPOINTS 16384
#define BPFNET_MAX_NETWORKS 1024
#define BPFNET_EVENTS_RINGBUF_BYTES (256 * 1024)

/* A network is keyed by its datapath ID: a number the agent gives it once, when it is recorded, and
 * keeps in its store (Network::datapath_id). It never changes for the network's life, so a bridge
 * re-created at reconcile changes one bpfnet_net value (its bridge_ifindex) and no key anywhere.
 * 0 is never a network's ID. */
#define BPFNET_NET_ICC (1u << 0)      /* endpoints of the network may reach each other */
#define BPFNET_NET_INTERNAL (1u << 1) /* nothing but the network's own subnet is reachable */
/* Outside may route to the endpoints' own addresses (gateway modes nat-unprotected and routed, or
 * trusted host interfaces): the uplink program leaves such packets to the host's firewall, which
 * knows what the mode opens, instead of dropping them. */
#define BPFNET_NET_DIRECT_ROUTING (1u << 2)
/* Egress (a packet to a destination outside every bpfnet network, routed out of an uplink) is
 * source-NATed to the uplink's address in BPF (enable_ip_masquerade, gateway mode nat). Without
 * it the endpoint program routes egress untranslated (enable_ip_masquerade=false, routed). */
#define BPFNET_NET_MASQUERADE (1u << 3)
/* The network reaches the outside through its gateway (a bridge network that is neither internal
 * nor isolated), so the endpoint program may route its egress. Overlay networks have none. */
#define BPFNET_NET_EGRESS (1u << 4)

/* bpfnet_subnets value for the subnet of another container network on the host (the addresses of
 * a bridge that is not bpfnet's): never a network key, since no network has ID 0. */
#define BPFNET_SUBNET_OTHER_BRIDGE 0u

/* bpfnet_net: HASH, key __u32 network (datapath ID) -> struct bpfnet_net_info */
struct bpfnet_net_info {
    __be32 subnet;        /* network address, network byte order */
    __be32 gateway;       /* gateway (bridge) address, network byte order */
    __u32 flags;          /* BPFNET_NET_* */
    __u32 prefix_len;     /* of subnet, 0..32 */
    __u32 bridge_ifindex; /* the network's Linux bridge; for inspection, no program reads it */
    __u8 gateway_mac[6];  /* the bridge's MAC: what ARP for the gateway is answered with */
    __u8 pad[2];
};

/* bpfnet_ep_by_if: HASH, key __u32 ifindex of the endpoint's host-side veth -> the endpoint as its
 * traffic source: the addresses it may send from (anti-spoofing) and its network. */
struct bpfnet_endpoint {
    __be32 ip;     /* network byte order */
    __u32 network; /* its network's datapath ID */
    __u8 mac[6];
    __u8 pad[2];
};

/* bpfnet_ep_by_ip: HASH, key struct bpfnet_ep_key -> struct bpfnet_ep_dest: where to deliver
 * traffic for an address of a network. */
struct bpfnet_ep_key {
    __u32 network; /* datapath ID */
    __be32 ip;     /* network byte order */
};
struct bpfnet_ep_dest {
    __u32 ifindex; /* host-side veth: bpf_redirect_peer(ifindex) delivers into the sandbox */
    __u8 mac[6];   /* the endpoint's MAC (answers ARP, fixes up the destination MAC) */
    __u8 flags;    /* BPFNET_EP_F_* */
    __u8 pad;
};
/* The sandbox end of the veth has NAPI (GRO on), which the veth driver needs to accept frames
 * redirected from XDP: only such endpoints are reached from the uplink's XDP program. */
#define BPFNET_EP_F_XDP_TARGET (1u << 0)

/* bpfnet_subnets: LPM_TRIE (BPF_F_NO_PREALLOC), key struct bpfnet_lpm_v4 -> __u32 network: every
 * bpfnet network's subnet, so traffic aimed at another network is recognised and dropped. */
struct bpfnet_lpm_v4 {
    __u32 prefix_len; /* LPM trie keys start with the prefix length */
    __be32 addr;
};

/* bpfnet_ep_stats: PERCPU_HASH, key __u32 host-side veth ifindex -> struct bpfnet_ep_stats. */
struct bpfnet_ep_stats {
    __u64 from_packets; /* sent by the endpoint (seen at its TC ingress) */
    __u64 from_bytes;
    __u64 to_packets; /* delivered to the endpoint by bpf_redirect_peer from another endpoint */
    __u64 to_bytes;
};

/* Why a packet was dropped: index of bpfnet_drops (PERCPU_ARRAY of struct bpfnet_drop_stats) and
 * the reason field of drop events. Append only: the numbers are part of the pinned-map ABI. */
enum bpfnet_drop_reason {
    BPFNET_DROP_UNKNOWN_ENDPOINT = 1, /* program ran on a veth with no endpoint entry */
    BPFNET_DROP_MALFORMED = 2,        /* truncated Ethernet/ARP/IPv4 header, bad IHL */
    BPFNET_DROP_SPOOFED_MAC = 3,      /* source MAC (or ARP sender MAC) not the endpoint's */
    BPFNET_DROP_SPOOFED_IP = 4,       /* source IPv4 (or ARP sender IP) not the endpoint's */
    BPFNET_DROP_CROSS_NETWORK = 5,    /* destination is another bpfnet network */
    BPFNET_DROP_ICC_DISABLED = 6,     /* endpoint-to-endpoint with enable_icc=false */
    BPFNET_DROP_INTERNAL = 7,         /* leaving an --internal network */
    BPFNET_DROP_VLAN_TAGGED = 8,      /* endpoints may not send 802.1Q/802.1ad frames */
    BPFNET_DROP_UNKNOWN_VNI = 9,      /* VXLAN traffic for a VNI no overlay network here has */
    BPFNET_DROP_UNPUBLISHED = 10,     /* from an uplink straight to a container's address: only
                                         published ports reach containers from outside */
    BPFNET_DROP_OTHER_BRIDGE = 11,    /* destination is another container network on the host (a
                                         bridge that is not bpfnet's: docker0, virbr0, ...) */
    BPFNET_DROP_REASON_MAX = 12,      /* number of slots in bpfnet_drops */
};

struct bpfnet_drop_stats {
    __u64 packets;
    __u64 bytes;
};

/* bpfnet_events: RINGBUF of struct bpfnet_event: every drop, and while `bpfnet monitor` asks for
 * them (bpfnet_mon_cfg), a trace of every packet an endpoint sends with the program's verdict. */
#define BPFNET_EVENT_DROP 1
#define BPFNET_EVENT_TRACE 2
struct bpfnet_event {
    __u64 timestamp_ns; /* bpf_ktime_get_ns() */
    __u32 type;         /* BPFNET_EVENT_* */
    __u32 reason;       /* drops: enum bpfnet_drop_reason; traces: the TC verdict */
    __u32 ifindex;      /* host-side veth the packet came from */
    __u32 len;          /* skb->len */
    __be32 saddr;       /* IPv4 addresses, 0 when not IPv4 (ARP: sender/target protocol addr) */
    __be32 daddr;
    __be16 sport; /* TCP/UDP ports, 0 otherwise */
    __be16 dport;
    __be16 eth_proto; /* outer EtherType */
    __u8 protocol;    /* IPv4 protocol number, 0 when not IPv4 */
    __u8 pad;
    __u8 smac[6];
    __u8 dmac[6];
    __u8 pad2[4];
};

/* bpfnet_mon_cfg: ARRAY[1] of struct bpfnet_monitor_cfg, written by `bpfnet monitor`. */
struct bpfnet_monitor_cfg {
    __u32 trace; /* non-zero: the endpoint program reports every packet, not only drops */
    __u32 pad;
};

/* ---- overlay: VXLAN in BPF (encap in the endpoint program, decap in bpf/overlay.bpf.c) ----
 * One collect_md VXLAN device per host; the endpoint program sends traffic for other hosts'
 * endpoints to it with bpf_skb_set_tunnel_key, and the program on its ingress delivers what
 * arrives to local endpoints with bpf_redirect_peer. */
#define BPFNET_MAX_TUNNEL_ENDPOINTS 65536

/* bpfnet_tunnel: HASH, struct bpfnet_ep_key {network, ip} -> struct bpfnet_tunnel_dest: an
 * endpoint of an overlay network on another host. */
struct bpfnet_tunnel_dest {
    __be32 vtep; /* the other host's underlay address */
    __u32 vni;
    __u8 mac[6]; /* the endpoint's MAC (ARP answers, inner destination MAC) */
    __u8 pad[2];
};

/* bpfnet_vni: HASH, __u32 VNI -> __u32 network (datapath ID): what decapsulated traffic is for. */
/* bpfnet_vx_cfg: ARRAY[1] of struct bpfnet_vx_cfg. With local_vtep set, the endpoint program
 * encapsulates itself (outer headers written in place, routed with bpf_fib_lookup, sent out of the
 * underlay device) and the underlay program on the device holding local_vtep decapsulates; the
 * collect_md device takes what they leave (lib/encap.h, lib/decap.h). */
struct bpfnet_vx_cfg {
    __u32 vxlan_ifindex; /* the collect_md VXLAN device; 0: no overlay on this host */
    __be32 local_vtep;   /* this host's underlay address; 0: the device does it all */
    __be16 port;         /* the VXLAN UDP port */
    __u16 pad;
    __u32 underlay_ifindex; /* the device holding local_vtep */
};

/* The outer headers of a VXLAN frame: IPv4 (no options), UDP, VXLAN, inner Ethernet. */
#define BPFNET_VXLAN_ENCAP_LEN (20 + 8 + 8 + 14)
/* The outer UDP source port: hashed from the inner flow into the kernel's default ephemeral
 * range, as the kernel's VXLAN device does (udp_flow_src_port), for the underlay's ECMP/RSS. */
#define BPFNET_VXLAN_SPORT_MIN 32768
#define BPFNET_VXLAN_SPORT_MAX 60999

/* ---- egress: endpoints reaching the outside through an uplink, routed in BPF ---------------
 * The endpoint program routes a packet leaving every bpfnet network with bpf_fib_lookup; when the
 * route leads out of an uplink it source-NATs it (BPFNET_NET_MASQUERADE) to the uplink's address
 * and a port of the uplink's range, records the flow in bpfnet_ct (BPFNET_CT_F_SNAT) and sends it
 * out of the uplink; the uplink program translates the answers back. */
#define BPFNET_MAX_UPLINKS 256
#define BPFNET_SNAT_PORT_MIN_DEFAULT 61000 /* above Linux's default ip_local_port_range */
#define BPFNET_SNAT_PORT_MAX_DEFAULT 65535

/* bpfnet_uplinks: HASH, __u32 ifindex -> struct bpfnet_uplink: the devices egress may leave
 * through in BPF (the uplink program runs on them, so the answers are translated back). */
struct bpfnet_uplink {
    __be32 snat_addr; /* the address egress is translated to: the uplink's first global IPv4 */
    __u16 port_min;   /* SNAT ports (and ICMP echo identifiers), host byte order, inclusive */
    __u16 port_max;
};

/* ---- socket NAT (bpf/sock.bpf.c): published ports reached from the host itself ------------ */

#define BPFNET_MAX_PUBLISHED 65536
#define BPFNET_MAX_LOCAL_IPS 1024
#define BPFNET_MAX_SOCK_ORIG 65536

/* bpfnet_pub_port: HASH, published port -> endpoint. All fields in network byte order except
 * proto (IPPROTO_TCP/UDP/SCTP). host_ip 0 means "any of the host's addresses". */
struct bpfnet_svc_key {
    __u32 host_ip;
    __u16 port;
    __u8 proto;
    __u8 pad;
};
struct bpfnet_svc_target {
    __u32 ip;      /* the endpoint's address */
    __u32 network; /* its network (datapath ID): where the uplink program finds its veth */
    __u16 port;
    __u16 pad;
};

/* bpfnet_sk_orig: LRU_HASH, socket cookie -> the address a socket asked for and what it was
 * rewritten to, so replies (recvmsg4) and getpeername4 show the address the application used. */
struct bpfnet_sock_orig {
    __u32 ip;
    __u16 port;
    __u16 pad;
    __u32 target_ip;
    __u16 target_port;
    __u16 pad2;
};

/* bpfnet_sock_cfg: ARRAY[1]. Only sockets of the host's network namespace are rewritten: a
 * sandbox reaching a host address goes through the network like any client. */
struct bpfnet_sock_cfg {
    __u64 host_netns_cookie; /* 0: rewrite nothing */
};

/* bpfnet_sk_netns: HASH, (sandbox netns cookie, network) -> __u8. A sandbox's socket reaching a
 * published port through a host address (hairpin) is rewritten only when the sandbox is on the
 * endpoint's network: anywhere else the rewritten connection would cross networks, which the
 * isolation drops, so those go through the kernel NAT as from any client. */
struct bpfnet_sk_netns_key {
    __u64 netns_cookie;
    __u32 network; /* datapath ID */
    __u32 pad;
};

/* bpfnet_sock_stats: PERCPU_ARRAY[1]: connect/sendmsg destinations rewritten. */
struct bpfnet_sock_stats {
    __u64 rewrites;
};

/* ---- conntrack and NAT of published ports reached from outside ---------------------------
 * bpf/uplink.bpf.c runs at TC ingress of each uplink: a new connection to a published port (same
 * bpfnet_pub_port map as the socket NAT) gets two conntrack entries, is DNATed to the endpoint and
 * redirected into its sandbox; the endpoint program (bpf/endpoint.bpf.c) finds the REPLY entry for
 * the endpoint's answers, reverses the NAT and sends them out of the uplink they came in on. */

/* bpfnet_ct: LRU_HASH of struct bpfnet_ct_key -> struct bpfnet_ct_entry. The agent sizes it
 * (bpfnetd --ct-max); when full the least recently used flow is evicted, never a new one refused.
 */
#define BPFNET_CT_DEFAULT_ENTRIES 262144

/* How long an idle flow lives (seconds), by what was seen of it. */
#define BPFNET_CT_TCP_SYN_TIMEOUT 60 /* the endpoint has not answered yet */
#define BPFNET_CT_TCP_ESTABLISHED_TIMEOUT 21600
#define BPFNET_CT_TCP_CLOSE_TIMEOUT 10 /* after an RST, or a FIN each way */
#define BPFNET_CT_UDP_TIMEOUT 60
#define BPFNET_CT_ICMP_TIMEOUT 30   /* an echo and its answer */
#define BPFNET_CT_OTHER_TIMEOUT 300 /* SCTP */

enum bpfnet_ct_dir {
    BPFNET_CT_DIR_IN = 0,    /* keyed as it arrives on the uplink: client -> host address:port */
    BPFNET_CT_DIR_REPLY = 1, /* keyed as the endpoint answers: endpoint:port -> client */
};
/* An ICMP echo flow (egress ping) is keyed by its identifier: as the endpoint sends it the
 * identifier is the source port and the destination port is 0, as the answer arrives it is the
 * destination port and the source port is 0. */

struct bpfnet_ct_key {
    __be32 saddr;
    __be32 daddr;
    __be16 sport;
    __be16 dport;
    __u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
    __u8 dir;   /* enum bpfnet_ct_dir */
    __u8 pad[2];
};

/* Flow flags, kept the same in both entries of a flow. */
#define BPFNET_CT_F_SYN (1u << 0)     /* the flow began with a SYN */
#define BPFNET_CT_F_REPLIED (1u << 1) /* the endpoint has answered */
#define BPFNET_CT_F_FIN_IN (1u << 2)  /* the client sent a FIN */
#define BPFNET_CT_F_FIN_OUT (1u << 3) /* the endpoint sent a FIN */
#define BPFNET_CT_F_RST (1u << 4)     /* either side sent an RST */
#define BPFNET_CT_F_XDP \
    (1u << 5) /* the endpoint can be reached from XDP (BPFNET_EP_F_XDP_TARGET) */
/* An egress flow: the endpoint started it (REPLIED means the remote side answered), translated
 * (masquerade) or not (routed: the entries translate to the addresses the packets already
 * carry). Its REPLY entry is keyed as the endpoint sends, its IN entry as the answers arrive on
 * the uplink, so both directions take the published ports' code paths. */
#define BPFNET_CT_F_EGRESS (1u << 6)
/* The REPLY entry has no MACs: the next hop had no neighbour entry when the flow began, so its
 * packets leave with bpf_redirect_neigh(ifindex, nexthop), which resolves it. */
#define BPFNET_CT_F_NEIGH (1u << 7)

struct bpfnet_ct_entry {
    __u64 expires_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) after which the entry is dead */
    __u64 packets;    /* in this entry's direction */
    __u64 bytes;
    __be32 nat_addr; /* IN: the endpoint's address; REPLY: the host address the client used */
    __be16 nat_port; /* IN: the container port; REPLY: the published host port */
    __u16 flags;     /* BPFNET_CT_F_* */
    __u32 ifindex;   /* IN: the endpoint's host veth (bpf_redirect_peer); REPLY: the uplink */
    __u32 network;   /* IN: the endpoint's network (datapath ID); REPLY: the same */
    __u8 smac[6];    /* source MAC of the rewritten frame: the gateway's / the uplink's */
    __u8 dmac[6];    /* destination MAC: the endpoint's / the next hop the request came from */
    __be32 nexthop;  /* REPLY of a BPFNET_CT_F_NEIGH flow: the next hop's IPv4 address */
};

/* bpfnet_frag: LRU_HASH, struct bpfnet_frag_key -> struct bpfnet_frag_ports, private to the
 * endpoint program (not pinned): the ports of a datagram whose first fragment an endpoint sent on
 * a known flow, so its later fragments (no L4 header) find the flow too (lib/fragments.h). */
#define BPFNET_MAX_FRAG_DATAGRAMS 8192
struct bpfnet_frag_key {
    __be32 saddr;
    __be32 daddr;
    __be16 id; /* the IPv4 identification the fragments share */
    __u8 proto;
    __u8 pad;
};
struct bpfnet_frag_ports {
    __be16 sport;
    __be16 dport;
};

/* bpfnet_nat_cnt: PERCPU_ARRAY of struct bpfnet_nat_stats indexed by this. Append only. */
enum bpfnet_nat_counter {
    BPFNET_NAT_DNAT_NEW = 0,  /* new flows to published ports (two entries created) */
    BPFNET_NAT_DNAT = 1,      /* packets DNATed and redirected to an endpoint */
    BPFNET_NAT_REPLY = 2,     /* endpoint replies reverse-NATed onto the uplink */
    BPFNET_NAT_ICMP_IN = 3,   /* ICMP errors about replies, translated to the endpoint */
    BPFNET_NAT_ICMP_OUT = 4,  /* ICMP errors from endpoints, translated to the host address */
    BPFNET_NAT_PASS_FRAG = 5, /* IPv4 fragments left to the kernel NAT (it reassembles) */
    BPFNET_NAT_PASS_SCTP = 6, /* SCTP to a different container port: the kernel NAT fixes CRC32c */
    BPFNET_NAT_CT_FAILED = 7, /* conntrack insert failed: left to the kernel NAT */
    BPFNET_NAT_TTL_EXPIRED = 8, /* TTL 1: left to the stack, which answers time exceeded */
    BPFNET_NAT_DNAT_XDP = 9,    /* of DNAT and EGRESS_REPLY, those translated by the XDP program */
    BPFNET_NAT_SNAT_NEW = 10,   /* new egress flows source-NATed in BPF (two entries) */
    BPFNET_NAT_SNAT = 11,       /* egress packets source-NATed and sent out of an uplink */
    BPFNET_NAT_EGRESS_REPLY = 12, /* answers to egress flows taken to the endpoint at the uplink */
    BPFNET_NAT_SNAT_EXHAUSTED = 13,  /* no free SNAT port: left to the kernel's masquerade */
    BPFNET_NAT_EGRESS_NEW = 14,      /* new egress flows routed in BPF without translation */
    BPFNET_NAT_EGRESS_ROUTED = 15,   /* egress packets routed in BPF without translation */
    BPFNET_NAT_EGRESS_STACK = 16,    /* egress left to the host's stack: no route out of an uplink,
                                        fragment, other protocol, TTL 1, MTU, TCP without a flow */
    BPFNET_NAT_VX_ENCAP = 17,        /* overlay frames encapsulated in BPF, out of the underlay */
    BPFNET_NAT_VX_ENCAP_DEVICE = 18, /* overlay frames left to the VXLAN device to encapsulate */
    BPFNET_NAT_VX_DECAP = 19,        /* VXLAN decapsulated in BPF at the underlay, to an endpoint */
    BPFNET_NAT_VX_DECAP_DEVICE = 20, /* VXLAN for an overlay here left to the VXLAN device */
    BPFNET_NAT_FRAG_OUT = 21, /* fragments an endpoint sent on a known flow, translated in BPF */
    BPFNET_NAT_PASS_HOST_FLOW = 22, /* to a published port, but answering a flow the host's own
                                     * conntrack has (the host's or a masqueraded connection) */
    BPFNET_NAT_VX_DECAP_XDP = 23, /* of VX_DECAP, those decapsulated by the uplink's XDP program */
    BPFNET_NAT_COUNTER_MAX = 24,
};

struct bpfnet_nat_stats {
    __u64 packets;
    __u64 bytes;
};

#ifdef __cplusplus
#include <linux/pkt_cls.h>

#include <cstddef>

static_assert(BPFNET_TC_OK == TC_ACT_OK);
static_assert(BPFNET_TC_SHOT == TC_ACT_SHOT);
static_assert(BPFNET_TC_REDIRECT == TC_ACT_REDIRECT);

static_assert(sizeof(struct bpfnet_pipeline_stats) == 16);
static_assert(offsetof(struct bpfnet_pipeline_stats, bytes) == 8);
static_assert(sizeof(struct bpfnet_net_info) == 28);
static_assert(sizeof(struct bpfnet_endpoint) == 16);
static_assert(sizeof(struct bpfnet_ep_key) == 8);
static_assert(sizeof(struct bpfnet_ep_dest) == 12);
static_assert(sizeof(struct bpfnet_lpm_v4) == 8);
static_assert(sizeof(struct bpfnet_ep_stats) == 32);
static_assert(sizeof(struct bpfnet_drop_stats) == 16);
static_assert(sizeof(struct bpfnet_event) == 56);
static_assert(sizeof(struct bpfnet_monitor_cfg) == 8);
static_assert(offsetof(struct bpfnet_event, smac) == 40);
static_assert(sizeof(struct bpfnet_svc_key) == 8);
static_assert(sizeof(struct bpfnet_svc_target) == 12);
static_assert(sizeof(struct bpfnet_ct_key) == 16);
static_assert(sizeof(struct bpfnet_ct_entry) == 56);
static_assert(offsetof(struct bpfnet_ct_entry, smac) == 40);
static_assert(sizeof(struct bpfnet_nat_stats) == 16);
static_assert(sizeof(struct bpfnet_sock_orig) == 16);
static_assert(sizeof(struct bpfnet_sock_cfg) == 8);
static_assert(sizeof(struct bpfnet_tunnel_dest) == 16);
static_assert(sizeof(struct bpfnet_vx_cfg) == 16);
static_assert(sizeof(struct bpfnet_frag_key) == 12);
static_assert(sizeof(struct bpfnet_sk_netns_key) == 16);
static_assert(sizeof(struct bpfnet_uplink) == 8);
static_assert(offsetof(struct bpfnet_ct_entry, nexthop) == 52);
#endif /* __cplusplus */

#endif /* BPFNET_ABI_H */

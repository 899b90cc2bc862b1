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

/* Map sizes (max_entries). The agent refuses an endpoint or network beyond these with a clear
 * error before it touches the maps. */
#define BPFNET_MAX_ENDPOINTS 16384
#define BPFNET_MAX_NETWORKS 1024
#define BPFNET_EVENTS_RINGBUF_BYTES (256 * 1024)

/* A network is keyed by the ifindex of its Linux bridge (unique on the host, and the agent rewrites
 * every entry when it re-creates a bridge). */
#define BPFNET_NET_ICC (1u << 0)      /* endpoints of the network may reach each other */
#define BPFNET_NET_INTERNAL (1u << 1) /* nothing but the network's own subnet is reachable */

/* bpfnet_net: HASH, key __u32 network (bridge ifindex) -> struct bpfnet_net_info */
struct bpfnet_net_info {
    __be32 subnet;       /* network address, network byte order */
    __be32 gateway;      /* gateway (bridge) address, network byte order */
    __u32 flags;         /* BPFNET_NET_* */
    __u32 prefix_len;    /* of subnet, 0..32 */
    __u8 gateway_mac[6]; /* the bridge's MAC: what ARP for the gateway is answered with */
    __u8 pad[2];
};

/* bpfnet_ep_by_if: HASH, key __u32 ifindex of the endpoint's host-side veth -> the endpoint as its
 * traffic source: the addresses it may send from (anti-spoofing) and its network. */
struct bpfnet_endpoint {
    __be32 ip;     /* network byte order */
    __u32 network; /* bridge ifindex of its network */
    __u8 mac[6];
    __u8 pad[2];
};

/* bpfnet_ep_by_ip: HASH, key struct bpfnet_ep_key -> struct bpfnet_ep_dest: where to deliver
 * traffic for an address of a network. */
struct bpfnet_ep_key {
    __u32 network; /* bridge ifindex */
    __be32 ip;     /* network byte order */
};
struct bpfnet_ep_dest {
    __u32 ifindex; /* host-side veth: bpf_redirect_peer(ifindex) delivers into the sandbox */
    __u8 mac[6];   /* the endpoint's MAC (answers ARP, fixes up the destination MAC) */
    __u8 pad[2];
};

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
    BPFNET_DROP_REASON_MAX = 9,       /* number of slots in bpfnet_drops */
};

struct bpfnet_drop_stats {
    __u64 packets;
    __u64 bytes;
};

/* bpfnet_events: RINGBUF of struct bpfnet_event (drops today; traces later). */
#define BPFNET_EVENT_DROP 1
struct bpfnet_event {
    __u64 timestamp_ns; /* bpf_ktime_get_ns() */
    __u32 type;         /* BPFNET_EVENT_* */
    __u32 reason;       /* enum bpfnet_drop_reason for drops */
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
    __u32 ip;
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

/* bpfnet_sock_stats: PERCPU_ARRAY[1]: connect/sendmsg destinations rewritten. */
struct bpfnet_sock_stats {
    __u64 rewrites;
};

#ifdef __cplusplus
#include <linux/pkt_cls.h>

#include <cstddef>

static_assert(BPFNET_TC_OK == TC_ACT_OK);
static_assert(BPFNET_TC_SHOT == TC_ACT_SHOT);
static_assert(BPFNET_TC_REDIRECT == TC_ACT_REDIRECT);

static_assert(sizeof(struct bpfnet_pipeline_stats) == 16);
static_assert(offsetof(struct bpfnet_pipeline_stats, bytes) == 8);
static_assert(sizeof(struct bpfnet_net_info) == 24);
static_assert(sizeof(struct bpfnet_endpoint) == 16);
static_assert(sizeof(struct bpfnet_ep_key) == 8);
static_assert(sizeof(struct bpfnet_ep_dest) == 12);
static_assert(sizeof(struct bpfnet_lpm_v4) == 8);
static_assert(sizeof(struct bpfnet_ep_stats) == 32);
static_assert(sizeof(struct bpfnet_drop_stats) == 16);
static_assert(sizeof(struct bpfnet_event) == 56);
static_assert(offsetof(struct bpfnet_event, smac) == 40);
static_assert(sizeof(struct bpfnet_svc_key) == 8);
static_assert(sizeof(struct bpfnet_svc_target) == 8);
static_assert(sizeof(struct bpfnet_sock_orig) == 16);
static_assert(sizeof(struct bpfnet_sock_cfg) == 8);
#endif /* __cplusplus */

#endif /* BPFNET_ABI_H */

/* Conntrack for published ports: lifetimes from TCP flags, refreshing and closing flows.
 *
 * A flow has two entries, IN (as the client's packets arrive on the uplink) and REPLY (as the
 * endpoint answers), which carry the same flow flags. An entry is alive until expires_ns; a dead
 * entry is treated as absent (and overwritten by the next flow with its key), so closed and idle
 * flows age out without a sweeper, and the LRU reclaims their slots under pressure.
 *
 * Hot-path cost: one lookup per packet plus two atomic counter adds. expires_ns (of both
 * entries) is written at most once a second per direction unless the flow's state changes, so busy
 * flows do not bounce the entries' cache lines between CPUs on every packet. */
#ifndef BPFNET_BPF_LIB_CONNTRACK_H
#define BPFNET_BPF_LIB_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"
#include "lib/ct_maps.h"
#include "lib/eth.h"

#define BPFNET_NS_PER_SEC 1000000000ull

/* TCP flag bits (byte 13 of the TCP header). */
#define BPFNET_TCP_FIN 0x01
#define BPFNET_TCP_SYN 0x02
#define BPFNET_TCP_RST 0x04
#define BPFNET_TCP_ACK 0x10

static __always_inline struct bpfnet_ct_key bpfnet_ct_key_of(__be32 saddr, __be32 daddr,
                                                             __be16 sport, __be16 dport, __u8 proto,
                                                             __u8 dir) {
    struct bpfnet_ct_key key = {
        .saddr = saddr, .daddr = daddr, .sport = sport, .dport = dport, .proto = proto, .dir = dir};
    return key;
}

/* What a translation takes from an entry, copied out while it is at hand (another CPU may update
 * the entry, the LRU may reuse it). */
struct bpfnet_ct_nat {
    __be32 addr;
    __be16 port;
    __u16 flags;
    __u32 ifindex;
    __be32 nexthop;
    __u8 smac[ETH_ALEN];
    __u8 dmac[ETH_ALEN];
};

static __always_inline void bpfnet_ct_nat_of(const struct bpfnet_ct_entry* e,
                                             struct bpfnet_ct_nat* nat) {
    nat->addr = e->nat_addr;
    nat->port = e->nat_port;
    nat->flags = e->flags;
    nat->ifindex = e->ifindex;
    nat->nexthop = e->nexthop;
    bpfnet_mac_copy(nat->smac, e->smac);
    bpfnet_mac_copy(nat->dmac, e->dmac);
}

static __always_inline void bpfnet_nat_count(__u32 counter, __u32 bytes) {
    struct bpfnet_nat_stats* stats = bpf_map_lookup_elem(&bpfnet_nat_cnt, &counter);
    if (stats) {
        stats->packets++;
        stats->bytes += bytes;
    }
}

static __always_inline __u64 bpfnet_ct_lifetime_ns(__u8 proto, __u16 flags) {
    __u64 seconds = BPFNET_CT_OTHER_TIMEOUT;
    if (proto == IPPROTO_TCP) {
        const __u16 both_fin = BPFNET_CT_F_FIN_IN | BPFNET_CT_F_FIN_OUT;
        if ((flags & BPFNET_CT_F_RST) || (flags & both_fin) == both_fin)
            seconds = BPFNET_CT_TCP_CLOSE_TIMEOUT;
        else if (!(flags & BPFNET_CT_F_REPLIED))
            seconds = BPFNET_CT_TCP_SYN_TIMEOUT;
        else
            seconds = BPFNET_CT_TCP_ESTABLISHED_TIMEOUT;
    } else if (proto == IPPROTO_UDP) {
        seconds = BPFNET_CT_UDP_TIMEOUT;
    } else if (proto == IPPROTO_ICMP) {
        seconds = BPFNET_CT_ICMP_TIMEOUT;
    }
    return seconds * BPFNET_NS_PER_SEC;
}

static __always_inline int bpfnet_ct_alive(const struct bpfnet_ct_entry* e, __u64 now) {
    return e->expires_ns > now;
}

/* Whether a TCP flow is over: a new SYN with its key starts a new flow instead of reusing it. */
static __always_inline int bpfnet_ct_closed(const struct bpfnet_ct_entry* e) {
    const __u16 both_fin = BPFNET_CT_F_FIN_IN | BPFNET_CT_F_FIN_OUT;
    return (e->flags & BPFNET_CT_F_RST) || (e->flags & both_fin) == both_fin;
}

/* The flow flags a TCP segment adds. `from_client`: it travels in the IN direction. */
static __always_inline __u16 bpfnet_ct_tcp_flags(__u8 tcp_flags, int from_client) {
    __u16 flags = 0;
    if (tcp_flags & BPFNET_TCP_RST) flags |= BPFNET_CT_F_RST;
    if (tcp_flags & BPFNET_TCP_FIN) flags |= from_client ? BPFNET_CT_F_FIN_IN : BPFNET_CT_F_FIN_OUT;
    return flags;
}

/* The flow flags a packet of the flow `e` adds: TCP's FIN and RST, and REPLIED when the side that
 * did not start the flow speaks (the endpoint of a published port, the remote side of an egress
 * flow). `from_uplink`: the packet travels in the IN direction. */
static __always_inline __u16 bpfnet_ct_packet_flags(const struct bpfnet_ct_entry* e, __u8 proto,
                                                    __u8 tcp_flags, int from_uplink) {
    __u16 flags = proto == IPPROTO_TCP ? bpfnet_ct_tcp_flags(tcp_flags, from_uplink) : 0;
    const int egress = (e->flags & BPFNET_CT_F_EGRESS) != 0;
    if (from_uplink == egress) flags |= BPFNET_CT_F_REPLIED;
    return flags;
}

/* The key of the other entry of the flow `e` (found under `key`) belongs to. */
static __always_inline void bpfnet_ct_peer_key(const struct bpfnet_ct_key* key,
                                               const struct bpfnet_ct_entry* e,
                                               struct bpfnet_ct_key* peer) {
    peer->proto = key->proto;
    peer->pad[0] = 0;
    peer->pad[1] = 0;
    if (key->dir == BPFNET_CT_DIR_IN) {
        /* IN: client -> host:hport; REPLY: endpoint:cport -> client */
        peer->dir = BPFNET_CT_DIR_REPLY;
        peer->saddr = e->nat_addr;
        peer->sport = e->nat_port;
        peer->daddr = key->saddr;
        peer->dport = key->sport;
    } else {
        peer->dir = BPFNET_CT_DIR_IN;
        peer->saddr = key->daddr;
        peer->sport = key->dport;
        peer->daddr = e->nat_addr;
        peer->dport = e->nat_port;
    }
}

/* Accounts a packet to an alive entry, merges the flow flags it adds and extends the lifetime.
 * A change of flags is written to the peer entry too, so both directions age alike. Returns 1 if
 * it wrote and the peer entry was gone (the LRU evicts entries, not flows), else 0. */
static __always_inline int bpfnet_ct_touch(const struct bpfnet_ct_key* key,
                                           struct bpfnet_ct_entry* e, __u16 add_flags, __u32 bytes,
                                           __u64 now) {
    __sync_fetch_and_add(&e->packets, 1);
    __sync_fetch_and_add(&e->bytes, bytes);

    const __u16 flags = e->flags | add_flags;
    const __u64 expires = now + bpfnet_ct_lifetime_ns(key->proto, flags);
    const int changed = flags != e->flags;
    /* Nothing new and refreshed less than a second ago: no write, no shared cache line. */
    if (!changed && expires <= e->expires_ns + BPFNET_NS_PER_SEC) return 0;
    e->flags = flags;
    e->expires_ns = expires;
    /* The other direction ages with this one: a flow whose traffic is one-way for a while (a
     * client streaming UDP) must not lose the entry its answers need. */
    struct bpfnet_ct_key peer_key;
    bpfnet_ct_peer_key(key, e, &peer_key);
    struct bpfnet_ct_entry* peer = bpf_map_lookup_elem(&bpfnet_ct, &peer_key);
    if (!peer) return 1;
    peer->flags |= flags;
    peer->expires_ns = expires;
    return 0;
}

#endif /* BPFNET_BPF_LIB_CONNTRACK_H */

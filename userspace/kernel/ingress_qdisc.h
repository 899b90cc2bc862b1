// The `ingress` qdisc: the one hook an endpoint veth's program needs. Every tc block the kernel
// binds (clsact has two, ingress one) is also recorded in a host-wide list of indirect offload
// blocks (flow_indr_dev_setup_offload) that each bind and unbind searches linearly, so a clsact
// per veth costs each connect and disconnect twice the search over twice the entries.
#pragma once

#include "core/result.h"
#include "kernel/netlink.h"

namespace bpfnet::kernel {

// `tc qdisc add dev IFINDEX ingress`. A device that already has an ingress-side qdisc (this one,
// or a clsact another program or an earlier bpfnet made) answers with success: filters for
// ffff:fff2 attach to either.
Status add_ingress_qdisc(NlSocket& sock, int ifindex);

}  // namespace bpfnet::kernel

#include "kernel/ingress_qdisc.h"

#include <linux/pkt_sched.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include <memory>

#include <fmt/format.h>

#include "kernel/nl_util.h"

namespace bpfnet::kernel {

namespace {

struct QdiscDeleter {
    void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};

}  // namespace

Status add_ingress_qdisc(NlSocket& sock, int ifindex) {
    const std::string what = fmt::format("add ingress qdisc on ifindex {}", ifindex);
    std::unique_ptr<rtnl_qdisc, QdiscDeleter> qdisc(rtnl_qdisc_alloc());
    if (!qdisc) return out_of_memory(what);
    rtnl_tc* tc = TC_CAST(qdisc.get());
    rtnl_tc_set_ifindex(tc, ifindex);
    rtnl_tc_set_parent(tc, TC_H_INGRESS);
    rtnl_tc_set_handle(tc, TC_H_MAKE(TC_H_INGRESS, 0));
    if (int err = rtnl_tc_set_kind(tc, "ingress"); err < 0) return nl_failure(err, what);
    int err =
        nl_call([&] { return rtnl_qdisc_add(sock.get(), qdisc.get(), NLM_F_CREATE | NLM_F_EXCL); });
    if (err < 0 && err != -NLE_EXIST) return nl_failure(err, what);
    return {};
}

}  // namespace bpfnet::kernel

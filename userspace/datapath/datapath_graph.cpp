#include "datapath/datapath_graph.h"

#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/pin_layout.h"
#include "datapath/bpf_datapath.h"
#include "datapath/child_link_datapath.h"
#include "datapath/kernel_datapath.h"
#include "datapath/null_datapath.h"
#include "datapath/overlay_datapath.h"
#include "datapath/tc_attach.h"
#include "kernel/netlink.h"

namespace bpfnet {

const char* to_string(DatapathKind kind) {
    return kind == DatapathKind::Bpf ? "bpf" : "kernel";
}

std::unique_ptr<DatapathGraph> DatapathGraph::build(const std::string& instance,
                                                    const std::string& bpffs_root, bool tcx,
                                                    const BpfDatapathOptions& bpf_options,
                                                    std::string bpf_unavailable) {
    std::unique_ptr<DatapathGraph> graph(new DatapathGraph());
    auto kernel = std::make_unique<KernelDatapath>(instance, bpf_options.uplinks);
    graph->kernel_typed_ = kernel.get();
    if (bpf_unavailable.empty()) {
        auto opened = BpfDatapath::open(*kernel, bpffs_root, tcx, bpf_options);
        if (opened) {
            graph->bpf_typed_ = opened->get();
            graph->bpf_ = std::move(opened).value();
        } else {
            bpf_unavailable = "loading the BPF programs failed: " + opened.error().message;
        }
    }
    graph->bpf_unavailable_ = std::move(bpf_unavailable);
    graph->child_links_ = std::make_unique<ChildLinkDatapath>(*kernel);
    graph->kernel_ = std::move(kernel);
    graph->none_ = std::make_unique<NullDatapath>();
    return graph;
}

DatapathGraph::DatapathGraph(std::unique_ptr<Datapath> kernel, std::unique_ptr<Datapath> bpf,
                             std::string bpf_unavailable, std::unique_ptr<Datapath> child_links)
    : kernel_(std::move(kernel)),
      bpf_(std::move(bpf)),
      bpf_unavailable_(std::move(bpf_unavailable)),
      child_links_(std::move(child_links)),
      none_(std::make_unique<NullDatapath>()) {}

DatapathGraph::~DatapathGraph() {
    overlay_.reset();
    child_links_.reset();
    bpf_.reset();
    kernel_.reset();
}

Status DatapathGraph::enable_overlay(Ipv4 vtep, uint16_t vxlan_port) {
    if (!kernel_typed_)
        return fail(ErrorKind::Unsupported, "overlay networks need the kernel datapath");
    auto overlay = std::make_unique<OverlayDatapath>(*kernel_typed_, bpf_typed_, vtep, vxlan_port);
    overlay_typed_ = overlay.get();
    overlay_ = std::move(overlay);
    return {};
}

const char* DatapathGraph::overlay_name() const {
    return overlay_ ? overlay_->name() : "none";
}

Datapath& DatapathGraph::bridge(DatapathKind kind) {
    return kind == DatapathKind::Bpf && bpf_ ? *bpf_ : *kernel_;
}

Datapath& DatapathGraph::overlay_or_none() {
    return overlay_ ? *overlay_ : *none_;
}

Status DatapathGraph::sync_policy(const std::vector<PolicyNetwork>& networks,
                                  const std::vector<PublishedPort>& ports) {
    std::vector<NetworkSpec> all;
    std::vector<NetworkSpec> in_bpf;
    std::set<std::string> bpf_bridges;
    for (const auto& n : networks) {
        all.push_back(n.spec);
        if (n.kind != DatapathKind::Bpf) continue;
        in_bpf.push_back(n.spec);
        bpf_bridges.insert(n.spec.network.bridge_name);
    }
    BPFNET_TRY(kernel_->sync_policy(all, ports));
    if (!bpf_) return {};
    std::vector<PublishedPort> bpf_ports;
    for (const auto& p : ports)
        if (bpf_bridges.count(p.bridge)) bpf_ports.push_back(p);
    return bpf_->sync_policy(in_bpf, bpf_ports);
}

Status DatapathGraph::change_ports(DatapathKind kind, const std::vector<PublishedPort>& ports,
                                   bool publish) {
    std::vector<Datapath*> layers{kernel_.get()};
    if (kind == DatapathKind::Bpf && bpf_) layers.push_back(bpf_.get());
    for (Datapath* layer : layers) {
        Status changed = publish ? layer->publish_ports(ports) : layer->unpublish_ports(ports);
        if (!changed) {
            return fail(changed.error().kind,
                        fmt::format("{} datapath: {}", layer->name(), changed.error().message));
        }
    }
    return {};
}

Result<bool> DatapathGraph::refresh_host() {
    bool resync = false;
    for (Datapath* layer : {kernel_.get(), bpf_.get()}) {
        if (!layer) continue;
        // One layer failing does not keep the other from catching up.
        auto changed = layer->refresh_host();
        if (!changed) {
            spdlog::warn("host interfaces changed: {} datapath: {}", layer->name(),
                         changed.error().message);
            continue;
        }
        resync = resync || *changed;
    }
    return resync;
}

// An endpoint program left on a veth of ours that is no BPF endpoint (its network moved to the
// kernel datapath, or BPF cannot be used since the last start) would act on maps that no longer
// describe it. Costs one query per such veth, at start and reconcile only.
Result<std::vector<std::string>> DatapathGraph::detach_stray_endpoint_programs(
    const std::set<std::string>& bpf_endpoints) {
    std::vector<std::string> detached;
    const TcIngressHook endpoint_filter = endpoint_veth_hook();
    BPFNET_ASSIGN_OR_RETURN(auto sock, kernel::NlSocket::open());
    BPFNET_ASSIGN_OR_RETURN(auto links, kernel::list_links(sock));
    for (const auto& link : links) {
        if (link.kind != "veth" || bpf_endpoints.count(link.name) ||
            !kernel_typed_->owned_by_us(link.alias) ||
            !clsact_filter_present(link.ifindex, endpoint_filter.clsact_handle))
            continue;
        BPFNET_TRY(detach_tc_ingress(endpoint_filter, link.name));
        detached.push_back("endpoint program on " + link.name);
    }
    return detached;
}

Result<std::vector<std::string>> DatapathGraph::collect_garbage(const LiveObjects& live) {
    BPFNET_ASSIGN_OR_RETURN(auto removed, kernel_->collect_garbage(live.links));
    BPFNET_ASSIGN_OR_RETURN(auto stray, detach_stray_endpoint_programs(live.bpf_attached));
    removed.insert(removed.end(), stray.begin(), stray.end());
    if (bpf_typed_) {
        BPFNET_ASSIGN_OR_RETURN(auto detached, bpf_typed_->collect_garbage(live.bpf_attached));
        removed.insert(removed.end(), detached.begin(), detached.end());
        bpf_typed_->forget_networks_except(live.networks);
    }
    return removed;
}

std::string DatapathGraph::bpf_egress_path() const {
    return bpf_ ? bpf_->egress_path() : std::string();
}

std::string DatapathGraph::bpf_overlay_path() const {
    return bpf_typed_ ? bpf_typed_->overlay_path() : std::string();
}

std::map<std::string, std::string> DatapathGraph::published_ports_paths() const {
    std::map<std::string, std::string> paths{{"kernel", kernel_->published_ports_path()}};
    if (bpf_) paths["bpf"] = bpf_->published_ports_path();
    return paths;
}

std::string DatapathGraph::forward_firewall_state() const {
    // The kernel layer applies the firewall for every bridge network, BPF ones included.
    return kernel_->forward_firewall_state();
}

std::string DatapathGraph::host_interfaces_state() const {
    return kernel_->host_interfaces_state();
}

}  // namespace bpfnet

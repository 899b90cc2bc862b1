"""Statistics, report.md and results.json."""

import json
import os
import statistics

from measure import METRICS

VARIANTS = ["direct", "bridge", "bpfnet"]
# (metric, reference variant, operator, bound): bpfnet's median / the reference's median
TARGETS = [
    ("udp_pps", "bridge", ">=", 1.5),
    ("udp_pps", "direct", ">=", 0.95),
    ("tcp_gbps", "direct", ">=", 0.97),
    ("lat_p50_us", "bridge", "<=", 0.9),
]
# Section headings of report.md, in order (tests/e2e/e2e_bench_smoke.sh checks them).
SECTIONS = ["## Variants", "## TCP throughput", "## UDP 64-byte packet rate", "## TCP latency p50",
            "## TCP latency p99", "## Targets", "## Samples", "## Method"]
SCHEMA = 1


def summarize(xs):
    xs = sorted(xs)
    s = {"n": len(xs), "median": statistics.median(xs), "min": xs[0], "max": xs[-1]}
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        s.update(q1=q1, q3=q3)
    else:
        s.update(q1=xs[0], q3=xs[0])
    return s


def build_summary(samples):
    summary = {}
    for metric, per in samples.items():
        summary[metric] = {v: summarize(xs) for v, xs in per.items() if xs}
        for v, s in summary[metric].items():
            for ref in ("bridge", "direct"):
                ref_s = summary[metric].get(ref)
                s[f"vs_{ref}"] = s["median"] / ref_s["median"] if ref_s and ref_s["median"] else None
    return summary


def evaluate_targets(summary, bpfnet_datapath):
    verdicts = []
    for metric, ref, op, bound in TARGETS:
        per = summary.get(metric, {})
        ratio = per["bpfnet"]["median"] / per[ref]["median"] if "bpfnet" in per and per.get(ref) else None
        if ratio is None:
            met = None
        else:
            met = ratio >= bound if op == ">=" else ratio <= bound
        verdicts.append({"metric": metric, "reference": ref, "target": f"{op} {bound}", "ratio": ratio,
                         "met": met, "datapath": bpfnet_datapath})
    return verdicts


def fmt(x, metric=None):
    if x is None:
        return "-"
    if metric == "udp_pps":
        return f"{x:.3f}"
    if metric == "tcp_gbps":
        return f"{x:.2f}"
    return f"{x:.1f}"


def ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def write(out_dir, meta, variants, samples, details):
    """variants: name -> Variant.as_json(); samples: metric -> variant -> [values];
    details: one dict per sample (run, group, variant, values, extra, seconds, foreign_cpu_pct)."""
    os.makedirs(out_dir, exist_ok=True)
    summary = build_summary(samples)
    bpf_dp = variants.get("bpfnet", {}).get("datapath")
    targets = evaluate_targets(summary, bpf_dp)
    doc = {"schema": SCHEMA, **meta, "variants": variants,
           "metrics": {m: {"title": t, "unit": u, "higher_is_better": h} for m, (t, u, h, _) in METRICS.items()},
           "samples": samples, "summary": summary, "targets": targets, "details": details}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    text = render(meta, variants, summary, targets, details)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    return text, targets


def render(meta, variants, summary, targets, details):
    order = [v for v in VARIANTS if v in variants]
    env = meta["environment"]
    L = ["# Same-host datapath benchmark", "",
         f"{meta['date']} on `{meta['host']}`: {env['cpus']} CPUs, kernel {env['kernel']}, "
         f"load average {env['loadavg_start']} at start. {meta['runs']} interleaved runs "
         f"(direct, bridge, bpfnet, direct, ...); per sample: TCP {meta['durations']['tcp']} s, "
         f"UDP {meta['durations']['udp']} s, latency {meta['durations']['latency']} s"
         f"{' (--quick)' if meta['quick'] else ''}. Medians; spread as [min, max] and the interquartile range "
         "(IQR, q1-q3).", ""]
    if meta.get("interrupted"):
        L += [f"**Interrupted** ({meta['interrupted']}): only the samples taken so far.", ""]
    L += ["## Variants", "", "| variant | what it is | datapath |", "|---|---|---|"]
    for v in order:
        info = variants[v]
        dp = info.get("datapath", "")
        if info.get("datapath_reason"):
            dp += f" ({info['datapath_reason']})"
        L.append(f"| {info['label']} | {info['description']} | {dp} |")
    L.append("")
    for metric, (title, unit, higher, group) in METRICS.items():
        tool = {"tcp": "iperf3, one stream", "udp": f"{meta['udp_tool']}, receiver side",
                "latency": "sockperf ping-pong, round trip"}[group]
        better = "higher is better" if higher else "lower is better"
        L += [f"## {title}", "", f"{unit}, {tool}; {better}.", "",
              f"| variant | median | min | max | IQR | vs bridge | vs direct | n |", "|---|---|---|---|---|---|---|---|"]
        per = summary.get(metric, {})
        if not per:
            L += ["| (not measured) | | | | | | | |", ""]
            continue
        for v in order:
            s = per.get(v)
            if not s:
                continue
            L.append(f"| {variants[v]['label']} | **{fmt(s['median'], metric)}** | {fmt(s['min'], metric)} | "
                     f"{fmt(s['max'], metric)} | {fmt(s['q1'], metric)}-{fmt(s['q3'], metric)} | "
                     f"{ratio(s['vs_bridge'])} | {ratio(s['vs_direct'])} | {s['n']} |")
        L.append("")
    L += ["## Targets", "", "Ratios of medians, bpfnet / reference."
          + ("" if variants.get("bpfnet", {}).get("datapath") == "bpf" else
             " The bpfnet variant did not run on its BPF datapath, so these verdicts are about its kernel "
             "fallback, not about the targets' subject."), "",
          "| metric | reference | target | measured | result |", "|---|---|---|---|---|"]
    for t in targets:
        result = "n/a (not measured)" if t["met"] is None else ("pass" if t["met"] else "**miss**")
        L.append(f"| {METRICS[t['metric']][0]} | {t['reference']} | {t['target']}x | "
                 f"{ratio(t['ratio'])} | {result} |")
    L += ["", "## Samples", "",
          "Every sample in the order taken. Other CPU = CPU used meanwhile by processes outside the bench, "
          "in percent of one CPU; steal = CPU time the hypervisor gave to other guests, in percent of all "
          "CPUs (a busy shared machine explains outliers).", "",
          "| # | run | variant | metric | value | details | wall s | other CPU % | steal % |",
          "|---|---|---|---|---|---|---|---|---|"]
    for i, d in enumerate(details, 1):
        vals = ", ".join(f"{k}={fmt(x, k)}" for k, x in d["values"].items()) or f"FAILED: {d['error']}"
        extra = ", ".join(f"{k}={x}" for k, x in d["extra"].items() if x is not None and k != "tool")
        L.append(f"| {i} | {d['run']} | {d['variant']} | {d['group']} | {vals} | {extra} | {d['seconds']:.1f} | "
                 f"{d['foreign_cpu_pct']} | {d.get('steal_pct', '-')} |")
    busy = [d["foreign_cpu_pct"] for d in details]
    steal = [d.get("steal_pct", 0) for d in details]
    L += ["", "## Method", "",
          f"- Tools: {', '.join(f'{k} `{v}`' for k, v in meta['tools'].items())}.",
          f"- CPU placement: {meta['pinning']}.",
          "- TCP throughput: `iperf3 -c SERVER -t N -J`, one stream, server `iperf3 -s -1`; receiver's bits/s.",
          ("- UDP packet rate: `udpflood` (bench/lib/udpflood.c, built by the bench): 64-byte datagrams with "
           "sendmmsg/recvmmsg in batches of 64, sender flat out for N s; datagrams the receiving socket got "
           "per second. iperf3 `-u -l 64 -b 0` (available as `--udp-tool iperf3`) measures its own receiver "
           "instead: it reads one datagram per select() wakeup and overflows its socket buffer at ~65 kpps "
           "on this kind of VM, whatever the datapath."
           if meta["udp_tool"] == "udpflood" else
           "- UDP packet rate: `iperf3 -u -l 64 -b 0`; received = packets - lost, per second "
           "(iperf3's receiver is the bottleneck with 64-byte datagrams; see bench/README.md)."),
          "- Latency: `sockperf ping-pong --tcp --full-rtt --no-rdtsc`, 14-byte messages, one in flight; "
          "sockperf drops the first and last part of the run (warm-up), so observations cover N - ~1.1 s.",
          "- Checksum offload: " + ("TX checksum offload turned off on every sandbox's eth0 (`--tx-offload-off`)."
                                    if meta["tx_offload_off"] else
                                    "left at the veth defaults on every variant (TX checksum offload on); "
                                    "bpfnet's TC-attached `bpf_redirect_peer` keeps the skb's checksum state, "
                                    "so nothing needs turning off (only XDP redirection between veths would)."),
          f"- Host netfilter: net.bridge.bridge-nf-call-iptables = {env['bridge_nf_call_iptables']} "
          f"(bridged IPv4 frames traverse the host's IPv4 hooks, as on a docker host); nftables tables on the "
          f"host at start: {env['nft_tables'] or 'none'}. These cost the bridge variant (and bpfnet's kernel "
          "fallback), never direct, nor bpfnet's BPF path, which skips the bridge.",
          f"- Other load: CPU used by other processes during samples, median {statistics.median(busy) if busy else 0}%"
          f", max {max(busy) if busy else 0}% of one CPU; hypervisor steal median "
          f"{statistics.median(steal) if steal else 0}%, max {max(steal) if steal else 0}%; load average "
          f"{env['loadavg_start']} at start, {env.get('loadavg_end', '?')} at the end.",
          "- Compare ratios within one report; absolute numbers move with the machine and its neighbours.", ""]
    return "\n".join(L)

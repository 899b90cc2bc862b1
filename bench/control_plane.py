"""Control plane: how long the operations take that `docker run` waits for.
  endpoints  creating N endpoints (a namespace, a veth into the network, addresses, routes):
             bpfnet's API (sandbox create + connect) vs the ip commands Docker's bridge driver's
             steps amount to, one process each, as a shell script would run them;
  ports      publishing N ports on one endpoint: one bpfnet connect with N ports vs Docker's two
             iptables calls per port (DNAT in the nat table, ACCEPT in the filter table);
  connect    p50/p99 of one `network connect` (and its disconnect) through the API;
  scaling    (control_plane_scaling.py, issue 18) one `connect -p` / `disconnect` vs ports already
             published (0 .. 10,000, beside iptables' per-port calls) and one `connect` /
             `disconnect` vs endpoints on the host (0 .. 4,000), with the 1.25x targets.
Everything it creates lives in namespaces and chains of its own and is removed on exit."""

import os
import signal
import statistics
import subprocess
import tempfile
import time

import control_plane_scaling
from benchlib import PID, Api, log, sh, unmount_agent_dirs

NAME = "control_plane"
TITLE = "Control plane: creating endpoints, publishing ports, one network connect and how it scales"


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def run(opts):
    n_endpoints = 20 if opts.quick else 100
    n_ports = 100 if opts.quick else 1000
    n_connects = 10 if opts.quick else 50
    work = tempfile.mkdtemp(prefix="bnb-cp.")
    run_dir = os.path.join(work, "run")
    bridge, chain = f"bnbc{PID}"[:15], f"BNBC_{PID}"
    log_file = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen(
        [os.path.join(opts.bin_dir, "bpfnetd"), "--state-dir", f"{work}/state", "--run-dir", run_dir,
         "--bpffs-root", f"{work}/bpffs", "--netns-dir", f"{work}/netns", "--plugin-socket", "",
         "--uplink", "none", "--default-bridge", "none"], stdout=log_file, stderr=log_file)
    net = f"bnbc{PID}"
    samples = {"endpoints_bpfnet_s": [], "endpoints_ip_s": [], "ports_bpfnet_s": [], "ports_iptables_s": []}
    connect_ms = []
    made_ns = []
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(run_dir, "bpfnetd.sock")):
                break
            time.sleep(0.1)
        api = Api(run_dir)
        api.call("POST", "/networks/create", {"Name": net, "IPAM": {"Config": [{"Subnet": "10.247.0.0/20"}]}})
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "addr", "add", "10.248.0.1/20", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        sh("iptables", "-t", "nat", "-N", chain)
        sh("iptables", "-N", chain)
        for run_no in range(opts.runs):
            # Endpoints through the API.
            names = [f"e{run_no}-{i}" for i in range(n_endpoints)]

            def make_bpfnet():
                for name in names:
                    api.call("POST", "/sandboxes/create", {"Name": name})
                    api.call("POST", f"/networks/{net}/connect", {"Container": name})
            samples["endpoints_bpfnet_s"].append(timed(make_bpfnet))
            # The same with ip commands, as Docker's steps.
            def make_ip():
                for i in range(n_endpoints):
                    ns, host = f"bnbc{PID}r{run_no}x{i}", f"bnbc{PID}{run_no}v{i}"[:15]
                    made_ns.append(ns)
                    ip = f"10.248.{(i + 2) // 250}.{(i + 2) % 250 + 1}"
                    for cmd in (("ip", "netns", "add", ns),
                                ("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns),
                                ("ip", "link", "set", host, "master", bridge, "up"),
                                ("ip", "-n", ns, "addr", "add", f"{ip}/20", "dev", "eth0"),
                                ("ip", "-n", ns, "link", "set", "eth0", "up"),
                                ("ip", "-n", ns, "link", "set", "lo", "up"),
                                ("ip", "-n", ns, "route", "add", "default", "via", "10.248.0.1")):
                        sh(*cmd)
            samples["endpoints_ip_s"].append(timed(make_ip))
            log(f"control_plane run {run_no + 1}: {n_endpoints} endpoints: bpfnet "
                f"{samples['endpoints_bpfnet_s'][-1]:.2f}s, ip {samples['endpoints_ip_s'][-1]:.2f}s")
            # Ports on the first endpoint: one connect with all of them, against iptables.
            api.call("POST", f"/networks/{net}/disconnect", {"Container": names[0]})
            first = 30000 + run_no * n_ports
            spec = f"{first}-{first + n_ports - 1}:{first}-{first + n_ports - 1}"
            samples["ports_bpfnet_s"].append(timed(lambda: api.call(
                "POST", f"/networks/{net}/connect", {"Container": names[0], "EndpointConfig": {"Publish": [spec]}})))

            def iptables_ports():
                for p in range(first, first + n_ports):
                    sh("iptables", "-t", "nat", "-A", chain, "-p", "tcp", "--dport", str(p), "-j", "DNAT",
                       "--to-destination", f"10.248.0.2:{p}")
                    sh("iptables", "-A", chain, "-d", "10.248.0.2/32", "-p", "tcp", "--dport", str(p),
                       "-j", "ACCEPT")
            samples["ports_iptables_s"].append(timed(iptables_ports))
            sh("iptables", "-t", "nat", "-F", chain)
            sh("iptables", "-F", chain)
            log(f"control_plane run {run_no + 1}: {n_ports} ports: bpfnet {samples['ports_bpfnet_s'][-1]:.2f}s, "
                f"iptables {samples['ports_iptables_s'][-1]:.2f}s")
            # One connect, many times: the latency a `docker network connect` adds.
            api.call("POST", "/sandboxes/create", {"Name": f"c{run_no}"})
            for _ in range(n_connects):
                start = time.monotonic()
                api.call("POST", f"/networks/{net}/connect", {"Container": f"c{run_no}"})
                connect_ms.append((time.monotonic() - start) * 1000)
                api.call("POST", f"/networks/{net}/disconnect", {"Container": f"c{run_no}"})
            for name in names + [f"c{run_no}"]:
                api.call("DELETE", f"/sandboxes/{name}")
            for ns in made_ns:
                sh("ip", "netns", "del", ns, check=False)
            made_ns.clear()
    finally:
        for ns in made_ns:
            sh("ip", "netns", "del", ns, check=False)
        sh("iptables", "-t", "nat", "-F", chain, check=False)
        sh("iptables", "-t", "nat", "-X", chain, check=False)
        sh("iptables", "-F", chain, check=False)
        sh("iptables", "-X", chain, check=False)
        sh("ip", "link", "del", bridge, check=False)
        bn = [os.path.join(opts.bin_dir, "bpfnet"), "--run-dir", run_dir]
        for sb in subprocess.run(bn + ["sandbox", "ls", "-q"], capture_output=True, text=True).stdout.split():
            sh(*bn, "sandbox", "rm", sb, check=False)
        sh(*bn, "network", "rm", net, check=False)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        unmount_agent_dirs(work)
        sh("rm", "-rf", work, check=False)
    med = {k: statistics.median(v) for k, v in samples.items()}
    connect_ms.sort()
    p50 = statistics.median(connect_ms)
    p99 = connect_ms[min(len(connect_ms) - 1, int(len(connect_ms) * 0.99))]
    text = ["| operation | bpfnet (s) | stock (s) | bpfnet / stock |", "|---|---|---|---|",
            f"| create {n_endpoints} endpoints (API vs ip commands) | {med['endpoints_bpfnet_s']:.2f} | "
            f"{med['endpoints_ip_s']:.2f} | {med['endpoints_bpfnet_s'] / med['endpoints_ip_s']:.2f}x |",
            f"| publish {n_ports} ports (one connect vs 2 iptables calls per port) | {med['ports_bpfnet_s']:.2f} | "
            f"{med['ports_iptables_s']:.2f} | {med['ports_bpfnet_s'] / med['ports_iptables_s']:.3f}x |",
            "", f"One `network connect` through the API ({len(connect_ms)} times): p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms.", ""]
    targets = []  # no issue set targets for these: the table gives the ratios
    # Issue 18's curves, with an agent of their own (after this one has stopped).
    curve_text, curve_plots, curve_targets, curve_data = control_plane_scaling.run(opts)
    text += curve_text
    targets += curve_targets
    plots = [{"file": "control-plane.png", "title": "Control-plane operations (seconds, lower is better)",
              "ylabel": "seconds", "kind": "bars",
              "series": {label: [med[k], min(samples[k]), max(samples[k])] for label, k in (
                  (f"{n_endpoints} endpoints: bpfnet", "endpoints_bpfnet_s"),
                  (f"{n_endpoints} endpoints: ip", "endpoints_ip_s"),
                  (f"{n_ports} ports: bpfnet", "ports_bpfnet_s"),
                  (f"{n_ports} ports: iptables", "ports_iptables_s"))}}] + curve_plots
    return {"title": TITLE, "text": text, "plots": plots, "targets": targets,
            "data": {"samples": samples, "medians": med, "connect_ms": {"p50": p50, "p99": p99, "samples": connect_ms},
                     "scaling": curve_data}}

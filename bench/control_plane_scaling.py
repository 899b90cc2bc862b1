"""Control-plane scaling curves (issue 18), part of the control_plane section: does one operation
cost the same on a full host as on an empty one?
  ports      one `network connect -p 40000:80` (one published port) and the `disconnect` that
             removes it, while 0, 100, 1,000 and 10,000 ports are already published on the host
             (by another endpoint of the same network, one connect with a port range); beside it
             Docker's per-port cost: the two iptables calls its bridge driver makes to publish one
             port (a DNAT rule in a nat chain, an ACCEPT rule in a filter chain; chains of this
             benchmark's own, never jumped to) and the two that remove them, while the chains
             already hold 0 .. 10,000 such rules; and the `bpfnet network connect -p` command's
             own time (a process per call) next to the API's;
  endpoints  one `network connect` (no ports) and its `disconnect` while 0, 500, 2,000 and 4,000
             endpoints are on the host. An endpoint is a (network, sandbox) pair, so 4,000 take
             100 sandboxes connected to 40 networks, not 4,000 namespaces; the sandboxes and the
             networks exist at every point (only the endpoints change), and the measured sandbox
             connects to a network of its own.
Everything goes through the agent's API on one keep-alive connection (the client is no
bottleneck). Each of --runs rounds visits every point (ascending, then descending in the next
round, so the population changes step by step) and times REPS operations at each: a round's p50
is one run, and the targets are ratios of the rounds' p50s (largest point / 0) with the paired
bootstrap interval of stats.py, like every other section's. The tables give each point's p50 over
all its repetitions with the bootstrap interval of that median (stats.median_ci).
--quick: ports at 0 and 1,000, endpoints at 0 and 100 (25 sandboxes on 4 networks), few
repetitions: removing the endpoints again costs as much as making them, and CI waits for both.
No traffic. The agent, its sandboxes and networks, and the iptables chains are this run's own
(names with the PID) and are removed on exit, failure or interruption."""

import math
import os
import statistics
import time

import stats
from benchlib import PID, PrivateAgent, log, sh

PORT_POINTS = [0, 100, 1000, 10000]
QUICK_PORT_POINTS = [0, 1000]
ENDPOINT_POINTS = [0, 500, 2000, 4000]
QUICK_ENDPOINT_POINTS = [0, 100]
SANDBOXES = 100          # the endpoints' sandboxes; networks = largest point / SANDBOXES
QUICK_SANDBOXES = 25
REPS = 20                # operations timed per point per round
QUICK_REPS = 3
CLI_REPS = 3             # `bpfnet network connect -p` processes per point per round
QUICK_CLI_REPS = 1
TARGET = 1.25            # issue 18: the largest point <= 1.25x the empty host

FILLER_FIRST_PORT = 30000  # the ports already published: 30000 .. 30000 + n - 1
MEASURED_PORT = 40000      # the one the measured connect publishes (-p 40000:80)
CLI_PORT = 40001
# Subnets (tests/addresses.txt, bench_smoke: 10.251.0.0/16): the endpoints' networks take
# 10.251.<j>.0/24 (j < 100), the measured networks 10.251.200-201.0/24; the iptables rules
# name 10.251.202.0/24 addresses (no interface or route carries them).
PORTS_SUBNET = "10.251.200.0/24"
MEASURE_SUBNET = "10.251.201.0/24"
IPT_FILLER_IP = "10.251.202.2"
IPT_MEASURED_IP = "10.251.202.3"


def ms_since(start):
    return (time.monotonic() - start) * 1000


def sweep(points, round_no):
    """The order round `round_no` visits the points in: up, then down, then up...: the population
    changes by one step at a time and the next round starts where the last one ended."""
    return list(points) if round_no % 2 == 0 else list(reversed(points))


class Curve:
    """Operation times per point: every repetition, and each round's p50 (one run per round)."""

    def __init__(self, ops):
        self.reps = {op: {} for op in ops}
        self.runs = {op: {} for op in ops}

    def add_round(self, n, times):
        for op, values in times.items():
            if values:
                self.reps[op].setdefault(n, []).extend(values)
                self.runs[op].setdefault(n, []).append(statistics.median(values))

    def summary(self):
        """{op: {n: {"p50", "ci95", "reps"}}}: the p50 over all repetitions and its interval."""
        out = {}
        for op, per in self.reps.items():
            out[op] = {}
            for n, values in sorted(per.items()):
                p50, low, high = stats.median_ci(values)
                out[op][n] = {"p50": p50, "ci95": [low, high], "reps": len(values)}
        return out


class Iptables:
    """Docker's bridge-driver rules for published ports in two chains of this run's own (a nat
    chain and a filter chain, never jumped to, so no packet meets them), filled in bulk with
    iptables-restore, and timed one port at a time the way dockerd adds one."""

    def __init__(self):
        self.chain = f"BNBQ_{PID}"
        self.bridge = f"bnbq{PID}"[:15]  # the rules name an interface; it need not exist
        self.made = []

    def create(self):
        for table in ("nat", "filter"):
            sh("iptables", "-w", "-t", table, "-N", self.chain)
            self.made.append(table)

    def dnat(self, host_port, ip, port):
        return ["!", "-i", self.bridge, "-p", "tcp", "-m", "tcp", "--dport", str(host_port), "-j", "DNAT",
                "--to-destination", f"{ip}:{port}"]

    def accept(self, ip, port):
        return ["-d", f"{ip}/32", "!", "-i", self.bridge, "-o", self.bridge, "-p", "tcp", "-m", "tcp",
                "--dport", str(port), "-j", "ACCEPT"]

    def fill(self, n):
        """The chains hold exactly n ports' rules."""
        for table in ("nat", "filter"):
            sh("iptables", "-w", "-t", table, "-F", self.chain)
        if n:
            ports = range(FILLER_FIRST_PORT, FILLER_FIRST_PORT + n)
            text = ["*nat", *(" ".join(["-A", self.chain, *self.dnat(p, IPT_FILLER_IP, p)]) for p in ports),
                    "COMMIT", "*filter", *(" ".join(["-A", self.chain, *self.accept(IPT_FILLER_IP, p)]) for p in ports),
                    "COMMIT", ""]
            sh("iptables-restore", "-w", "--noflush", input="\n".join(text), timeout=300)
        for table in ("nat", "filter"):
            rules = sh("iptables", "-w", "-t", table, "-S", self.chain, capture=True).stdout.count("\n-A ")
            if rules != n:
                raise RuntimeError(f"iptables {table} chain {self.chain} holds {rules} rules, not {n}")

    def publish_one(self):
        """(add ms, remove ms): the DNAT and ACCEPT rules of one more port, then their removal."""
        start = time.monotonic()
        sh("iptables", "-w", "-t", "nat", "-A", self.chain, *self.dnat(MEASURED_PORT, IPT_MEASURED_IP, 80))
        sh("iptables", "-w", "-t", "filter", "-A", self.chain, *self.accept(IPT_MEASURED_IP, 80))
        added = ms_since(start)
        start = time.monotonic()
        sh("iptables", "-w", "-t", "nat", "-D", self.chain, *self.dnat(MEASURED_PORT, IPT_MEASURED_IP, 80))
        sh("iptables", "-w", "-t", "filter", "-D", self.chain, *self.accept(IPT_MEASURED_IP, 80))
        return added, ms_since(start)

    def remove(self):
        for table in self.made:
            sh("iptables", "-w", "-t", table, "-F", self.chain, check=False)
            sh("iptables", "-w", "-t", table, "-X", self.chain, check=False)
        self.made.clear()


def ports_curve(opts, agent, api):
    """connect -p / disconnect times (API and CLI) and iptables' per-port calls vs ports published."""
    points = QUICK_PORT_POINTS if opts.quick else PORT_POINTS
    reps = QUICK_REPS if opts.quick else REPS
    cli_reps = QUICK_CLI_REPS if opts.quick else CLI_REPS
    net = f"bnbqp{PID}"
    ipt = Iptables()
    curve = Curve(["connect", "disconnect", "cli_connect", "cli_disconnect", "iptables_add", "iptables_remove"])
    filler_ms = {}
    bn = [os.path.join(opts.bin_dir, "bpfnet"), "--run-dir", agent.run_dir]
    try:
        api.call("POST", "/networks/create", {"Name": net, "IPAM": {"Config": [{"Subnet": PORTS_SUBNET}]}})
        for sb in ("filler", "measured"):
            api.call("POST", "/sandboxes/create", {"Name": sb})
        ipt.create()
        # One untimed round trip first: the first connect -p on a network sets things up once.
        api.call("POST", f"/networks/{net}/connect",
                 {"Container": "measured", "EndpointConfig": {"Publish": [f"{MEASURED_PORT}:80"]}})
        api.call("POST", f"/networks/{net}/disconnect", {"Container": "measured"})
        ipt.publish_one()
        published = None
        for round_no in range(opts.runs):
            for n in sweep(points, round_no):
                if published != n:
                    # The filler endpoint is there at every point (no ports at 0): only ports change.
                    start = time.monotonic()
                    if published is not None:
                        api.call("POST", f"/networks/{net}/disconnect", {"Container": "filler"})
                    body = {"Container": "filler"}
                    if n:
                        last = FILLER_FIRST_PORT + n - 1
                        body["EndpointConfig"] = {"Publish": [f"{FILLER_FIRST_PORT}-{last}:{FILLER_FIRST_PORT}-{last}"]}
                    api.call("POST", f"/networks/{net}/connect", body)
                    filler_ms.setdefault(n, []).append(ms_since(start))
                    published = n
                    ipt.fill(n)
                    ports = api.call("GET", "/sandboxes/filler")["Networks"][net]["Ports"]
                    if bool(ports) != bool(n):
                        raise RuntimeError(f"the filler publishes {ports!r}, expected {n} ports")
                times = {op: [] for op in curve.reps}
                for _ in range(reps):
                    start = time.monotonic()
                    api.call("POST", f"/networks/{net}/connect",
                             {"Container": "measured", "EndpointConfig": {"Publish": [f"{MEASURED_PORT}:80"]}})
                    times["connect"].append(ms_since(start))
                    start = time.monotonic()
                    api.call("POST", f"/networks/{net}/disconnect", {"Container": "measured"})
                    times["disconnect"].append(ms_since(start))
                    added, removed = ipt.publish_one()
                    times["iptables_add"].append(added)
                    times["iptables_remove"].append(removed)
                for _ in range(cli_reps):
                    start = time.monotonic()
                    sh(*bn, "network", "connect", "-p", f"{CLI_PORT}:80", net, "measured")
                    times["cli_connect"].append(ms_since(start))
                    start = time.monotonic()
                    sh(*bn, "network", "disconnect", net, "measured")
                    times["cli_disconnect"].append(ms_since(start))
                curve.add_round(n, times)
                log(f"control_plane ports={n:,} round {round_no + 1}: connect -p p50 "
                    f"{curve.runs['connect'][n][-1]:.1f} ms, disconnect {curve.runs['disconnect'][n][-1]:.1f} ms, "
                    f"iptables 2 calls {curve.runs['iptables_add'][n][-1]:.1f} ms")
    finally:
        ipt.remove()
        for sb in ("filler", "measured"):
            try:
                api.call("DELETE", f"/sandboxes/{sb}")
            except Exception:  # noqa: BLE001 - the agent's stop() removes what is left
                pass
        try:
            api.call("DELETE", f"/networks/{net}")
        except Exception:  # noqa: BLE001
            pass
    return curve, filler_ms


def endpoints_curve(opts, api):
    """connect / disconnect times vs endpoints on the host, and what growing and shrinking the
    population cost per operation."""
    points = QUICK_ENDPOINT_POINTS if opts.quick else ENDPOINT_POINTS
    reps = QUICK_REPS if opts.quick else REPS
    n_sandboxes = QUICK_SANDBOXES if opts.quick else SANDBOXES
    n_networks = math.ceil(max(points) / n_sandboxes)
    if n_networks > 100:
        raise ValueError("the endpoints' networks take 10.251.0-99.0/24")
    nets = [f"bnbq{PID}n{j}" for j in range(n_networks)]
    sandboxes = [f"q{i}" for i in range(n_sandboxes)]
    measure_net = f"bnbqm{PID}"
    curve = Curve(["connect", "disconnect"])
    population_ms = {"connect": [], "disconnect": []}  # per operation while growing / shrinking
    status_endpoints = {}
    # Endpoint k is sandbox k % n_sandboxes on network k // n_sandboxes: networks fill one by one.
    pair = lambda k: (nets[k // n_sandboxes], sandboxes[k % n_sandboxes])  # noqa: E731
    started = time.monotonic()
    for j, net in enumerate(nets):
        api.call("POST", "/networks/create", {"Name": net, "IPAM": {"Config": [{"Subnet": f"10.251.{j}.0/24"}]}})
    api.call("POST", "/networks/create", {"Name": measure_net, "IPAM": {"Config": [{"Subnet": MEASURE_SUBNET}]}})
    for sb in sandboxes + ["measured"]:
        api.call("POST", "/sandboxes/create", {"Name": sb})
    api.call("POST", f"/networks/{measure_net}/connect", {"Container": "measured"})  # untimed, once
    api.call("POST", f"/networks/{measure_net}/disconnect", {"Container": "measured"})
    log(f"control_plane endpoints: {n_networks} networks and {n_sandboxes} sandboxes made in "
        f"{time.monotonic() - started:.1f}s")
    current = 0
    for round_no in range(opts.runs):
        for n in sweep(points, round_no):
            started = time.monotonic()
            while current < n:
                net, sb = pair(current)
                start = time.monotonic()
                api.call("POST", f"/networks/{net}/connect", {"Container": sb})
                population_ms["connect"].append((current, ms_since(start)))
                current += 1
            while current > n:
                net, sb = pair(current - 1)
                start = time.monotonic()
                api.call("POST", f"/networks/{net}/disconnect", {"Container": sb})
                population_ms["disconnect"].append((current, ms_since(start)))
                current -= 1
            have = api.call("GET", "/status")["Endpoints"]
            status_endpoints.setdefault(n, []).append(have)
            if have != n:
                raise RuntimeError(f"the agent reports {have} endpoints, expected {n}")
            grown = time.monotonic() - started
            # Measure the host as it is, not the kernel still busy with the step's links.
            settle_s = links_settled()
            times = {"connect": [], "disconnect": []}
            for _ in range(reps):
                start = time.monotonic()
                api.call("POST", f"/networks/{measure_net}/connect", {"Container": "measured"})
                times["connect"].append(ms_since(start))
                start = time.monotonic()
                api.call("POST", f"/networks/{measure_net}/disconnect", {"Container": "measured"})
                times["disconnect"].append(ms_since(start))
            curve.add_round(n, times)
            log(f"control_plane endpoints={n:,} round {round_no + 1} (population changed in {grown:.1f}s, "
                f"links settled in {settle_s:.1f}s): "
                f"connect p50 {curve.runs['connect'][n][-1]:.1f} ms, "
                f"disconnect {curve.runs['disconnect'][n][-1]:.1f} ms")
    # Left for the agent's stop(discard=True): the kernel removes them with their namespaces.
    return curve, population_ms, {"networks": n_networks, "sandboxes": n_sandboxes}


def links_settled(timeout_s=60.0):
    """Waits until the kernel has caught up with the links just made or removed: every veth's
    operational state is final (the kernel's linkwatch work, which takes the RTNL lock the next
    connect needs, has run for each). Returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        pending = 0
        for name in os.listdir("/sys/class/net"):
            if not name.startswith("bnv-"):
                continue
            try:
                with open(f"/sys/class/net/{name}/operstate") as f:
                    pending += f.read().strip() not in ("up", "lowerlayerdown")
            except OSError:
                pass  # removed meanwhile
        if not pending:
            break
        time.sleep(0.05)
    return time.monotonic() - start


def population_table(population_ms, points):
    """Mean ms per connect / disconnect while the population grew or shrank, per step between
    points: does making the 4,000th endpoint cost more than the first?"""
    rows = []
    bounds = list(zip(points, points[1:]))
    for lo, hi in bounds:
        cells = []
        for op in ("connect", "disconnect"):
            # connect k moved the population from k to k + 1; disconnect at k from k to k - 1.
            xs = [ms for at, ms in population_ms[op] if (lo <= at < hi if op == "connect" else lo < at <= hi)]
            cells.append(f"{statistics.median(xs):.1f}" if xs else "-")
        rows.append(f"| {lo:,} .. {hi:,} | {cells[0]} | {cells[1]} |")
    return rows


def fmt(entry):
    return f"{entry['p50']:.1f} [{entry['ci95'][0]:.1f}, {entry['ci95'][1]:.1f}]"


def run(opts):
    """The curves, their tables, plots and targets: merged into the control_plane section."""
    agent = PrivateAgent(opts.bin_dir, "bnb-cps.")
    try:
        api = agent.start()
        ports, filler_ms = ports_curve(opts, agent, api)
        endpoints, population_ms, layout = endpoints_curve(opts, api)
        datapaths = sorted({n["Datapath"] for n in api.call("GET", "/status")["Networks"]
                            if n["Name"].startswith("bnbq")})
    finally:
        started = time.monotonic()
        log("control_plane scaling: removing the agent, its sandboxes, endpoints and networks")
        agent.stop(discard=True)
        log(f"control_plane scaling: removed in {time.monotonic() - started:.1f}s")
    ps, es = ports.summary(), endpoints.summary()
    p_points, e_points = sorted(ps["connect"]), sorted(es["connect"])
    top_p, top_e = p_points[-1], e_points[-1]
    targets = []
    for op, what in (("connect", "`network connect -p P:80`"), ("disconnect", "its `disconnect`")):
        targets.append(stats.ratio_target(f"{what} ms at {top_p:,} ports published / at 0",
                                          ports.runs[op][top_p], ports.runs[op][0], TARGET, "<="))
    for op, what in (("connect", "`network connect`"), ("disconnect", "its `disconnect`")):
        targets.append(stats.ratio_target(f"{what} ms at {top_e:,} endpoints on the host / at 0",
                                          endpoints.runs[op][top_e], endpoints.runs[op][0], TARGET, "<="))

    def growth(summary, op, n):
        return f"{summary[op][n]['p50'] / summary[op][0]['p50']:.2f}x" if summary[op][0]["p50"] else "-"

    text = ["### Control-plane scaling (issue 18): one operation on a full host", "",
            f"Milliseconds per operation through the API (one keep-alive connection), p50 over all "
            f"repetitions [95% bootstrap interval of that median]; {opts.runs} rounds, the points "
            f"interleaved (each round sweeps them all, up then down). The targets above compare the "
            f"rounds' p50s (largest point / empty host, paired bootstrap). Datapath: {', '.join(datapaths)}.", "",
            "#### One published port vs ports already published on the host", "",
            "| ports published | connect -p (ms) | disconnect (ms) | connect / at 0 | disconnect / at 0 | "
            "CLI connect -p (ms) | CLI disconnect (ms) | iptables DNAT + ACCEPT (ms) | iptables -D both (ms) | "
            "iptables add / at 0 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in p_points:
        text.append(f"| {n:,} | {fmt(ps['connect'][n])} | {fmt(ps['disconnect'][n])} | {growth(ps, 'connect', n)} | "
                    f"{growth(ps, 'disconnect', n)} | {fmt(ps['cli_connect'][n])} | {fmt(ps['cli_disconnect'][n])} | "
                    f"{fmt(ps['iptables_add'][n])} | {fmt(ps['iptables_remove'][n])} | "
                    f"{growth(ps, 'iptables_add', n)} |")
    text += ["", "The ports already published belong to another endpoint of the same network (one connect "
             f"with the range {FILLER_FIRST_PORT}-...); the measured connect publishes {MEASURED_PORT}:80. "
             "CLI: the `bpfnet network connect -p` process, start to exit. iptables: the two calls dockerd's "
             "bridge driver makes per published port (`-t nat -A` DNAT, `-t filter -A` ACCEPT; not the `-C` "
             "checks it runs first) into chains of the benchmark's own already holding that many ports' rules "
             f"({sh('iptables', '-V', capture=True, check=False).stdout.strip()}).", "",
             "Time to (re)publish the other endpoint's ports in one connect (disconnect + connect, ms, median): " +
             ", ".join(f"{n:,}: {statistics.median(v):.0f}" for n, v in sorted(filler_ms.items())), "",
             "#### One endpoint vs endpoints already on the host", "",
             "| endpoints on the host | connect (ms) | disconnect (ms) | connect / at 0 | disconnect / at 0 |",
             "|---|---|---|---|---|"]
    for n in e_points:
        text.append(f"| {n:,} | {fmt(es['connect'][n])} | {fmt(es['disconnect'][n])} | {growth(es, 'connect', n)} | "
                    f"{growth(es, 'disconnect', n)} |")
    text += ["", f"The endpoints: {layout['sandboxes']} sandboxes connected to up to {layout['networks']} networks "
             "(network by network); all sandboxes and networks exist at every point. The measured sandbox "
             "connects to a network of its own.", "",
             "While the population grew and shrank (ms per connect / disconnect, median):", "",
             "| endpoints | connect (ms) | disconnect (ms) |", "|---|---|---|",
             *population_table(population_ms, e_points), ""]

    def line(summary, op):
        return [[n, e["p50"], e["ci95"][0], e["ci95"][1]] for n, e in summary[op].items()]
    plots = [{"file": "control-plane-ports.png", "kind": "lines", "categorical_x": True,
              "xlabel": "ports already published on the host (not to scale)",
              "title": "One published port: ms per operation vs ports published (p50, 95% interval)",
              "ylabel": "ms per operation",
              "series": {"bpfnet connect -p (API)": line(ps, "connect"),
                         "bpfnet disconnect (API)": line(ps, "disconnect"),
                         "iptables DNAT + ACCEPT (Docker, 2 calls)": line(ps, "iptables_add"),
                         "iptables -D both": line(ps, "iptables_remove")}},
             {"file": "control-plane-endpoints.png", "kind": "lines", "xlabel": "endpoints already on the host",
              "title": "One endpoint: ms per operation vs endpoints on the host (p50, 95% interval)",
              "ylabel": "ms per operation",
              "series": {"bpfnet connect (API)": line(es, "connect"),
                         "bpfnet disconnect (API)": line(es, "disconnect")}}]
    data = {"ports": {"summary": ps, "runs": ports.runs, "reps": ports.reps, "filler_publish_ms": filler_ms},
            "endpoints": {"summary": es, "runs": endpoints.runs, "reps": endpoints.reps, "layout": layout,
                          "population_ms": population_ms},
            "datapaths": datapaths}
    return text, plots, targets, data

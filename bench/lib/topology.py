"""The three paths the benchmark compares, built side by side, and their teardown.

  direct  a veth pair between two namespaces (the limit of any veth-based datapath)
  bridge  each namespace on a veth into a plain Linux bridge (what docker's bridge driver builds)
  bpfnet  two sandboxes of a private bpfnetd on a network with bpfnet.datapath=bpf; where the agent
          refuses BPF, the same network on its kernel datapath, labelled as such

Every object is named bnb-<pid>-..., addresses are inside 10.250.0.0/16, and every creation pushes
its undo step before the next one is attempted, so teardown() removes exactly what exists.
cleanup_stale() removes what a bench killed with SIGKILL left behind (its pid is gone).
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

from util import log, proc_alive_as, run


class Variant:
    def __init__(self, name, description, client_ns, server_ns, client_ip, server_ip):
        self.name = name
        self.label = name
        self.description = description
        self.client_ns = client_ns  # netns paths (nsenter --net=...)
        self.server_ns = server_ns
        self.client_ip = client_ip
        self.server_ip = server_ip
        self.info = {}  # datapath details for the report

    def as_json(self):
        return {"label": self.label, "description": self.description, "client_ip": self.client_ip,
                "server_ip": self.server_ip, **self.info}


def netns_path(name):
    return f"/run/netns/{name}"


class Topology:
    def __init__(self, bin_dir, work, agent_args=(), verbose=False):
        self.pid = os.getpid()
        self.prefix = f"bnb-{self.pid}"
        self.bin_dir = bin_dir
        self.work = work
        self.agent_args = list(agent_args)
        self.verbose = verbose
        self.undo = []  # callables, run in reverse order
        self.variants = {}
        self.agent = None
        self.agent_run_dir = None
        self.agent_instance = None

    # -- helpers ------------------------------------------------------------------------------------
    def ip(self, *args):
        return run(["ip", *args], verbose=self.verbose)

    def add_netns(self, name):
        self.ip("netns", "add", name)
        self.undo.append(lambda: run(["ip", "netns", "del", name], check=False))
        self.ip("-n", name, "link", "set", "lo", "up")
        return netns_path(name)

    def bn(self, *args, check=True, timeout=60):
        return run([os.path.join(self.bin_dir, "bpfnet"), "--run-dir", self.agent_run_dir, *args],
                   check=check, timeout=timeout, verbose=self.verbose)

    # -- variants -----------------------------------------------------------------------------------
    def build_direct(self):
        n1, n2 = f"{self.prefix}-d1", f"{self.prefix}-d2"
        p1, p2 = self.add_netns(n1), self.add_netns(n2)
        self.ip("link", "add", "eth0", "netns", n1, "type", "veth", "peer", "name", "eth0", "netns", n2)
        for ns, addr in ((n1, "10.250.1.1/24"), (n2, "10.250.1.2/24")):
            self.ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
        v = Variant("direct", "veth pair between the two namespaces (the limit)", p1, p2, "10.250.1.1",
                    "10.250.1.2")
        v.info = {"datapath": "veth"}
        self.variants["direct"] = v

    def build_bridge(self):
        br = f"{self.prefix}-br"
        self.ip("link", "add", br, "type", "bridge")
        self.undo.append(lambda: run(["ip", "link", "del", br], check=False))
        self.ip("link", "set", br, "up")
        paths = []
        for i, addr in ((1, "10.250.2.1/24"), (2, "10.250.2.2/24")):
            ns, host = f"{self.prefix}-b{i}", f"{self.prefix}-v{i}"
            paths.append(self.add_netns(ns))
            self.ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.undo.append(lambda host=host: run(["ip", "link", "del", host], check=False))
            self.ip("link", "set", host, "master", br, "up")
            self.ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
        v = Variant("bridge", "each namespace on a veth into a Linux bridge (docker's bridge datapath)",
                    paths[0], paths[1], "10.250.2.1", "10.250.2.2")
        v.info = {"datapath": "linux-bridge", "bridge": br}
        self.variants["bridge"] = v

    def start_agent(self):
        for tool in ("bpfnetd", "bpfnet"):
            if not os.access(os.path.join(self.bin_dir, tool), os.X_OK):
                raise RuntimeError(f"{self.bin_dir}/{tool} is missing: build first (make build), or set "
                                   "BPFNET_BIN_DIR, or leave bpfnet out with --only direct,bridge")
        agent_dir = os.path.join(self.work, "agent")
        os.makedirs(agent_dir)
        self.agent_run_dir = os.path.join(agent_dir, "run")
        dirs = {d: os.path.join(agent_dir, d) for d in ("state", "run", "bpffs", "netns")}
        self.undo.append(lambda: self.unmount_agent_dirs(dirs))
        log_path = os.path.join(agent_dir, "agent.log")
        cmd = [os.path.join(self.bin_dir, "bpfnetd"), "--state-dir", dirs["state"], "--run-dir", dirs["run"],
               "--bpffs-root", dirs["bpffs"], "--netns-dir", dirs["netns"], *self.agent_args]
        with open(log_path, "w") as log_file:
            # Own session: a Ctrl-C on the terminal reaches the bench only, which then removes the
            # sandboxes and networks through the agent before stopping it.
            self.agent = subprocess.Popen(cmd, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        self.undo.append(self.stop_agent)
        deadline = time.time() + 15
        while self.bn("version", check=False).returncode != 0:
            if self.agent.poll() is not None or time.time() > deadline:
                tail = open(log_path).read()[-2000:]
                raise RuntimeError(f"bpfnetd did not start (log {log_path}):\n{tail}")
            time.sleep(0.1)
        status = json.loads(self.bn("status", "--format", "json").stdout)
        self.agent_instance = status["Instance"]
        self.undo.append(self.remove_agent_leftovers)
        with open(os.path.join(self.work, "agent.json"), "w") as f:  # for cleanup_stale()
            json.dump({"pid": self.agent.pid, "instance": self.agent_instance, "dir": agent_dir}, f)
        return status

    def build_bpfnet(self):
        status = self.start_agent()
        net = self.prefix
        created, bpf_error, use_bpf = None, None, True
        overlap = lambda res: re.search(r"overlap|in use", res.stderr, re.I)
        # A /24 per bench process, not routed on the host yet, so that benches can run side by side.
        routes = {line.split()[0] for line in run(["ip", "-4", "route", "show"], check=False).stdout.splitlines()
                  if line.strip()}
        candidates = [f"10.250.{10 + (self.pid + i) % 240}.0/24" for i in range(240)]
        for subnet in [c for c in candidates if c not in routes][:8]:
            opts = ["-o", "bpfnet.datapath=bpf"] if use_bpf else []
            res = self.bn("network", "create", "--subnet", subnet, *opts, net, check=False)
            if res.returncode != 0 and use_bpf and not overlap(res):
                # The agent refuses BPF here (501 Unsupported): measure its kernel datapath instead.
                bpf_error, use_bpf = clean_error(res.stderr), False
                log(f"bpfnet: BPF datapath refused ({bpf_error}); falling back to the kernel datapath")
                res = self.bn("network", "create", "--subnet", subnet, net, check=False)
            if res.returncode == 0:
                created = subnet
                break
            if not overlap(res):
                raise RuntimeError(f"bpfnet network create failed: {clean_error(res.stderr)}")
        if created is None:
            raise RuntimeError("bpfnet network create: no free /24 in 10.250.10.0-10.250.249.0")
        self.undo.append(lambda: self.bn("network", "rm", net, check=False))
        sandboxes = []
        for i in (1, 2):
            sb = f"{self.prefix}-s{i}"
            self.bn("sandbox", "create", sb)
            self.undo.append(lambda sb=sb: self.bn("sandbox", "rm", sb, check=False))
            self.bn("network", "connect", net, sb)
            info = json.loads(self.bn("sandbox", "inspect", sb).stdout)[0]
            sandboxes.append((info["NetnsPath"], info["Networks"][net]["IPAddress"]))
        inspect = json.loads(self.bn("network", "inspect", net).stdout)[0]
        bpfnet_info = inspect.get("BpfNet", {})
        datapath, reason = bpfnet_info.get("Datapath", "?"), bpfnet_info.get("DatapathReason", "")
        v = Variant("bpfnet", "two sandboxes on a bpfnet network of a private bpfnetd", sandboxes[0][0],
                    sandboxes[1][0], sandboxes[0][1], sandboxes[1][1])
        if datapath != "bpf":
            why = reason if reason.startswith("BPF unavailable") else f"BPF unavailable: {bpf_error or reason}"
            v.label = f"bpfnet (kernel datapath: {why})"
        v.info = {"datapath": datapath, "datapath_reason": reason, "bpf_create_error": bpf_error,
                  "subnet": created, "bridge": bpfnet_info.get("Bridge"), "agent_instance": self.agent_instance,
                  "probe": status.get("Probe", {})}
        self.variants["bpfnet"] = v

    # -- teardown -----------------------------------------------------------------------------------
    def stop_agent(self):
        if self.agent is None or self.agent.poll() is not None:
            return
        self.agent.send_signal(signal.SIGTERM)
        try:
            self.agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            self.agent.wait()

    def remove_agent_leftovers(self):
        """Whatever the agent could not remove (it crashed, or was killed): its links and tables."""
        remove_instance_leftovers(self.agent_instance)

    @staticmethod
    def unmount_agent_dirs(dirs):
        for f in glob.glob(os.path.join(dirs["netns"], "*")):
            run(["umount", "-l", f], check=False)
        for d in ("netns", "bpffs"):  # bind mounts onto themselves: os.path.ismount() misses them
            while run(["umount", "-l", dirs[d]], check=False).returncode == 0:
                pass

    def teardown(self):
        while self.undo:
            step = self.undo.pop()
            try:
                step()
            except Exception as exc:  # keep removing the rest
                log(f"teardown: {exc}")


def clean_error(stderr):
    text = " ".join(stderr.strip().split())
    return text.removeprefix("Error response from daemon: ")


def remove_instance_leftovers(instance):
    if not instance:
        return
    tag = f"alias bpfnet:{instance}:"
    out = run(["ip", "-d", "-o", "link", "show"], check=False).stdout
    for line in out.splitlines():
        if tag in line:
            name = line.split(":")[1].strip().split("@")[0]
            run(["ip", "link", "del", name], check=False)
    for family in ("ip", "ip6", "inet", "bridge"):
        run(["nft", "delete", "table", family, f"bpfnet_{instance}"], check=False)


def cleanup_stale(tmp_root):
    """Removes namespaces, links and agents of benches that died without cleaning up (SIGKILL)."""
    stale = lambda pid: not proc_alive_as(pid, "bench")
    removed = []
    names = run(["ip", "netns", "list"], check=False).stdout.split()
    for name in names:
        m = re.fullmatch(r"bnb-(\d+)-\w+", name)
        if m and stale(int(m.group(1))):
            run(["ip", "netns", "del", name], check=False)
            removed.append(f"netns {name}")
    for line in run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        m = re.fullmatch(r"bnb-(\d+)-\w+", name)
        if m and stale(int(m.group(1))):
            run(["ip", "link", "del", name], check=False)
            removed.append(f"link {name}")
    for work in glob.glob(os.path.join(tmp_root, "bnb-*.*")):
        m = re.fullmatch(r"bnb-(\d+)\..*", os.path.basename(work))
        if not m or not stale(int(m.group(1))):
            continue
        try:
            agent = json.load(open(os.path.join(work, "agent.json")))
        except (OSError, ValueError):
            agent = None
        if agent:
            if proc_alive_as(agent["pid"], work):
                os.kill(agent["pid"], signal.SIGKILL)
            remove_instance_leftovers(agent["instance"])
            Topology.unmount_agent_dirs({d: os.path.join(agent["dir"], d) for d in ("netns", "bpffs")})
        shutil.rmtree(work, ignore_errors=True)
        removed.append(f"work dir {work}")
    return removed

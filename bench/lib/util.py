"""Small helpers shared by the benchmark modules: logging, commands, child processes, CPU sampling."""

import os
import shlex
import subprocess
import sys
import time

STARTED = time.time()
LIVE = set()  # Popen objects still running; killed on teardown


def log(msg):
    elapsed = int(time.time() - STARTED)
    print(f"[bench {time.strftime('%H:%M:%S')} +{elapsed // 60}:{elapsed % 60:02d}] {msg}", flush=True)


def run(cmd, check=True, timeout=60, verbose=False, input=None):
    """Runs a command to completion, capturing its output; raises with its stderr on failure."""
    if verbose:
        log("+ " + shlex.join(cmd))
    res = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, input=input,
                         stdin=None if input is not None else subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def spawn(cmd, stdout=subprocess.PIPE, verbose=False):
    """Starts a background process in its own session (so a terminal Ctrl-C reaches only the bench,
    which then stops it) and remembers it for kill_all()."""
    if verbose:
        log("+ " + shlex.join(cmd) + " &")
    p = subprocess.Popen(cmd, text=True, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    LIVE.add(p)
    return p


def finish(p, timeout):
    """Waits for a spawned process (killing it after timeout); returns (returncode, stdout, stderr)."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    LIVE.discard(p)
    return p.returncode, out or "", err or ""


def kill_all():
    for p in list(LIVE):
        if p.poll() is None:
            p.kill()
        try:
            p.communicate(timeout=5)
        except Exception:
            pass
        LIVE.discard(p)


def proc_alive_as(pid, marker):
    """True if process pid exists and its command line contains marker (guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def in_ns(netns, cpu, *cmd):
    """Command line running cmd in a network namespace, pinned to one CPU if cpu is not None."""
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return ["nsenter", f"--net={netns}", *pin, *cmd]


class ForeignLoad:
    """CPU time that processes outside the bench's own process tree used while a sample ran (kernel
    threads excluded: softirq work for the bench's own traffic may run in ksoftirqd). A shared machine
    busy with compiles makes samples slow; the report shows this next to each sample."""

    CLK = os.sysconf("SC_CLK_TCK")

    def __init__(self):
        self.me = os.getpid()
        self.before = {}
        self.t0 = 0.0

    def snapshot(self):
        procs = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            # fields[0] is field 3 (state): ppid = 4, flags = 9, utime = 14, stime = 15, starttime = 22
            ppid, flags = int(fields[1]), int(fields[6])
            if flags & 0x00200000:  # PF_KTHREAD
                continue
            procs[int(entry)] = (ppid, int(fields[11]) + int(fields[12]), int(fields[19]))
        return procs

    def _foreign(self, procs):
        ours = {self.me}
        changed = True
        while changed:  # descendants of the bench
            changed = False
            for pid, (ppid, _, _) in procs.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    changed = True
        return {pid: v for pid, v in procs.items() if pid not in ours}

    @staticmethod
    def cpu_times():
        """(steal, total) jiffies of all CPUs from /proc/stat."""
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:]]
        return values[7] if len(values) > 7 else 0, sum(values[:8])

    def start(self):
        self.before = self._foreign(self.snapshot())
        self.stat0 = self.cpu_times()
        self.t0 = time.time()

    def stop(self):
        """(percent of one CPU used by foreign processes, percent of all CPU time stolen by the
        hypervisor) since start()."""
        after = self._foreign(self.snapshot())
        ticks = 0
        for pid, (_, t, start) in after.items():
            prev = self.before.get(pid)
            ticks += t - prev[1] if prev and prev[2] == start else t
        seconds = max(time.time() - self.t0, 1e-3)
        steal, total = self.cpu_times()
        steal_pct = 100.0 * (steal - self.stat0[0]) / max(total - self.stat0[1], 1)
        return round(100.0 * ticks / self.CLK / seconds, 1), round(steal_pct, 1)


def fail(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)

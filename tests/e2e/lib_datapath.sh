# Proof of the datapath a test ran on (sourced at the end of lib.sh). ctest runs most scripts once
# per datapath (BPFNET_E2E_DATAPATH=bpf|kernel): without a check, a .bpf variant whose agent quietly
# fell back to the kernel would pass the same way as the .kernel one.
#
# assert_datapath NETWORK: NETWORK is on the datapath E2E_DATAPATH names.
# assert_datapath_is NETWORK bpf|kernel [RUN_DIR BPFFS_DIR NETNS]: for networks whose datapath the
# script chose itself; the optional three name another agent (its run dir and bpffs) whose host is
# the named network namespace (/run/netns/NETNS), as for the "hosts" of the cluster tests.
# Call them after traffic has flowed on NETWORK, while the agent runs and NETWORK has endpoints.
#
# bpf: `network inspect` says "bpf"; every endpoint's host veth carries a bpfnet endpoint program
# (`bpfnet prog list`), that program exists in the kernel (bpftool by id) and, with its link, is
# on the veth's tcx ingress hook (asked of bpf(2)), and the endpoints' BPF counters
# (bpfnet_ep_stats, which only the BPF program writes) counted packets.
# kernel: `network inspect` says "kernel"; no BPF program hangs off the endpoints' host veths: no
# tc or XDP program (bpftool net), nothing on their tcx hooks (bpf(2)), and bpfnet's own
# inspection (when a BPF datapath is loaded for other networks) lists none for them.
assert_datapath() { assert_datapath_is "$1" "$E2E_DATAPATH"; }

assert_datapath_is() {
    local net=$1 want=$2 run_dir=${3:-$RUN_DIR} bpffs=${4:-$BPFFS_DIR} out wrap=()
    [ -z "${5:-}" ] || wrap=(nsenter --net="/run/netns/$5")
    case "$want" in bpf|kernel) ;; *) die "assert_datapath_is: datapath must be bpf or kernel, not '$want'" ;; esac
    out=$("${wrap[@]}" python3 - "$BPFNET" "$run_dir" "$bpffs" "$net" "$want" 2>&1 <<'PY'
import json, subprocess, sys

cli, run_dir, bpffs, net, want = sys.argv[1:6]


def run(*cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def bn(*args, ok=True):
    return run(cli, "--run-dir", run_dir, "--bpffs-root", bpffs, *args, ok=ok)


def tcx_query(ifindex, attach_type):
    """The (program ids, link ids) on a device's tcx hook, asked of bpf(2) with BPF_PROG_QUERY by
    ifindex in this network namespace (this bpftool shows a tcx link's type as a number and not its
    device, and a link's ifindex alone does not say in which namespace the device is)."""
    import ctypes, struct
    libc = ctypes.CDLL(None, use_errno=True)
    progs, links_ = (ctypes.c_uint32 * 64)(), (ctypes.c_uint32 * 64)()
    attr = bytearray(128)
    struct.pack_into("IIIIQI", attr, 0, ifindex, attach_type, 0, 0, ctypes.addressof(progs), 64)
    struct.pack_into("Q", attr, 40, ctypes.addressof(links_))
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    if libc.syscall(321, 16, buf, 128) < 0:  # __NR_bpf on x86_64, BPF_PROG_QUERY
        sys.exit(f"BPF_PROG_QUERY on ifindex {ifindex}: errno {ctypes.get_errno()}")
    count = struct.unpack_from("I", buf.raw, 24)[0]
    return list(progs[:count]), list(links_[:count])


TCX_INGRESS, TCX_EGRESS = 46, 47

doc = json.loads(bn("network", "inspect", net).stdout)
assert isinstance(doc, list) and len(doc) == 1, f"network inspect {net}: {doc}"
n = doc[0]
got = n["BpfNet"]["Datapath"]
if got != want:
    sys.exit(f"network inspect names datapath {got!r} ({n['BpfNet'].get('DatapathReason', '')})")
# Host ends of the endpoints' veths: bnv- and the endpoint ID's first 11 characters.
ifaces = sorted("bnv-" + c["EndpointID"][:11] for c in n["Containers"].values())
if not ifaces:
    sys.exit(f"{net} has no endpoints: nothing shows which datapath carried its traffic")
# (A dump that links made or removed by tests running meanwhile interrupted is asked again.)
for attempt in range(5):
    p = run("ip", "-j", "link", "show", ok=attempt == 4)
    if p.returncode == 0 and "Dump was interrupted" not in p.stderr:
        break
links = {l["ifname"]: l["ifindex"] for l in json.loads(p.stdout)}
missing = [i for i in ifaces if i not in links]
if missing:
    sys.exit(f"endpoint interfaces {missing} of {net} do not exist")


if want == "bpf":
    progs = json.loads(bn("prog", "list", "--format", "json").stdout)
    for i in ifaces:
        mine = [p for p in progs if p["interface"] == i and p["role"] == "endpoint"]
        if len(mine) != 1:
            sys.exit(f"{i}: expected one bpfnet endpoint program, prog list has {mine}")
        p = mine[0]
        if p["network"] != net:
            sys.exit(f"{i}: prog list puts its program on network {p['network']!r}, not {net}")
        kp = json.loads(run("bpftool", "-j", "prog", "show", "id", str(p["prog_id"])).stdout)
        if kp.get("id") != p["prog_id"] or kp.get("type") != "sched_cls":
            sys.exit(f"{i}: program {p['prog_id']} in the kernel is {kp}")
        if p["mechanism"] == "tcx":
            on_hook = tcx_query(links[i], TCX_INGRESS)
            if (p["prog_id"], p["link_id"]) not in zip(*on_hook):
                sys.exit(f"{i}: the kernel's tcx ingress hook holds (programs, links) {on_hook}, "
                         f"not program {p['prog_id']} through link {p['link_id']}")
        else:  # a cls_bpf filter (endpoint veths; host devices without tcx)
            tc = json.loads(run("bpftool", "-j", "net", "show", "dev", i).stdout)
            if p["prog_id"] not in [f.get("id") for f in tc[0]["tc"]]:
                sys.exit(f"{i}: bpftool net shows no tc filter with program {p['prog_id']}: {tc}")
    rows = json.loads(bn("endpoint", "list", "--network", net, "--format", "json").stdout)
    rows = [r for r in rows if r["interface"] in ifaces]
    if sorted(r["interface"] for r in rows) != ifaces or any(r["datapath"] != "bpf" for r in rows):
        sys.exit(f"endpoint list for {net}: {rows}, expected BPF rows for {ifaces}")
    moved = sum(r["from_packets"] + r["to_packets"] for r in rows)
    if moved == 0:
        sys.exit(f"the BPF counters of {net}'s endpoints {ifaces} counted no packet")
    print(f"{net}: bpf, {len(ifaces)} endpoint programs attached, {moved} packets counted in BPF")
else:
    for i in ifaces:
        tc = json.loads(run("bpftool", "-j", "net", "show", "dev", i).stdout)
        # One object with the attach points as keys; anything attached is listed under them.
        assert isinstance(tc, list) and len(tc) == 1 and {"xdp", "tc"} <= set(tc[0]), tc
        attached = {k: v for k, v in tc[0].items() if v}
        if attached:
            sys.exit(f"{i}: BPF programs attached on the kernel datapath: {attached}")
        for hook in (TCX_INGRESS, TCX_EGRESS):
            on_hook = tcx_query(links[i], hook)
            if on_hook[0]:
                sys.exit(f"{i}: tcx programs and links {on_hook} on the kernel datapath")
    # With a BPF datapath loaded for other networks, bpfnet's view must agree.
    p = bn("prog", "list", "--format", "json", ok=False)
    if p.returncode == 0:
        theirs = [q for q in json.loads(p.stdout) if q["interface"] in ifaces]
        if theirs:
            sys.exit(f"bpfnet prog list shows programs on kernel endpoints: {theirs}")
    elif "datapath is not loaded" not in p.stderr:
        sys.exit(f"bpfnet prog list failed: {p.stderr.strip()}")
    print(f"{net}: kernel, no BPF program on its {len(ifaces)} endpoints")
PY
) || die "datapath of $net is not $want: $out"
    log "$out"
}

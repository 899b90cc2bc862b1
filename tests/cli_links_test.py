#!/usr/bin/env python3
"""The `bpfnet` CLI must not contain the agent.

The CLI links bpfnet_client, bpfnet_inspect and bpfnet_core only (docs/architecture.md, Layers).
This fails if the built binary holds code of the agent, its datapaths, store or cluster client,
an embedded BPF skeleton object, or needs a shared library only the agent uses.

usage: cli_links_test.py BPFNET_BINARY
"""

import re
import subprocess
import sys

# Demangled symbol prefixes (nm -C) of the libraries the CLI must not link.
FORBIDDEN_SYMBOLS = [
    "bpfnet::NetworkService::",  # bpfnet_agent
    "bpfnet::Daemon::",
    "bpfnet::NativeApi::",
    "bpfnet::DockerPluginApi::",
    "bpfnet::UnixHttpServer::",
    "bpfnet::BpfDatapath::",  # bpfnet_datapath
    "bpfnet::KernelDatapath::",
    "bpfnet::DatapathGraph::",
    "bpfnet::NftRunner::",
    "bpfnet::kernel::",  # bpfnet_kernel
    "SqliteStore::",  # bpfnet_store (in an anonymous namespace)
    "bpfnet::EtcdClient::",  # bpfnet_cluster
    "bpfnet::OverlayRegistry::",
]
# A libbpf skeleton in use: bpftool's generated functions (<object>__create_skeleton, ...; mostly
# inlined), the datapath's wrapper around them, libbpf's skeleton calls.
SKELETON_SYMBOL = re.compile(
    r"\b\w+__(create_skeleton|elf_bytes)\b|\bBpfSkeleton<|\bbpf_object__(open|load|destroy)_skeleton\b"
)
# Shared libraries only the agent's libraries bring.
FORBIDDEN_NEEDED = ["libsqlite3", "libnftables", "libcurl", "libcap-ng"]

EM_BPF = 247


def shorten(name: str) -> str:
    return name if len(name) <= 160 else name[:157] + "..."


def embedded_bpf_objects(data: bytes) -> int:
    """How many ELF objects for the BPF machine the file carries (a skeleton embeds its object)."""
    count = 0
    start = data.find(b"\x7fELF", 1)
    while start != -1:
        header = data[start : start + 20]
        if len(header) == 20 and header[4] == 2 and header[5] == 1:  # 64-bit, little-endian
            if int.from_bytes(header[18:20], "little") == EM_BPF:
                count += 1
        start = data.find(b"\x7fELF", start + 1)
    return count


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    problems = []

    symbols = subprocess.run(["nm", "-C", binary], check=True, capture_output=True, text=True).stdout
    names = [line.split(" ", 2)[-1] for line in symbols.splitlines()]
    if len(names) < 100:
        problems.append(f"nm found only {len(names)} symbols: is {binary} stripped?")
    for prefix in FORBIDDEN_SYMBOLS:
        hits = [n for n in names if prefix in n]
        if hits:
            problems.append(f"{len(hits)} symbols of {prefix}, e.g. {shorten(hits[0])}")
    skeleton = [n for n in names if SKELETON_SYMBOL.search(n)]
    if skeleton:
        problems.append(f"{len(skeleton)} BPF skeleton symbols, e.g. {shorten(skeleton[0])}")

    with open(binary, "rb") as f:
        objects = embedded_bpf_objects(f.read())
    if objects:
        problems.append(f"{objects} embedded BPF ELF objects (skeletons)")

    dynamic = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    for lib in FORBIDDEN_NEEDED:
        hits = [n for n in needed if n.startswith(lib + ".") or n.startswith(lib + "-")]
        if hits:
            problems.append(f"needs {hits[0]}, which only the agent uses")

    if problems:
        print(f"{binary} contains agent code:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{binary}: {len(names)} symbols, none of the agent; needs {', '.join(needed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The address registry (tests/addresses.txt) against the test scripts and ctest's schedule.

(a) Every IPv4 address or subnet written in a test script (and in the files it sources or runs) lies
    inside a subnet the registry gives that script: a test cannot start using addresses nobody
    sees.
(b) Two ctest tests whose registered subnets overlap may not run at the same time: one of them is
    RUN_SERIAL (ctest then runs it alone) or they share a RESOURCE_LOCK. Otherwise two agents would
    put the same subnet on the host at once, and one test would fail for the other's routes.

The tests and their properties come from `ctest --show-only=json-v1` in the build directory, so
the check sees exactly what ctest will schedule.

Usage: address_registry_test.py SOURCE_DIR BUILD_DIR [CTEST]
"""
import glob
import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys

# Private ranges the tests take their addresses from.
def interesting(octets):
    if len(octets) < 2:
        return False
    a, b = octets[0], octets[1]
    return a == 10 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168)


START = re.compile(r"(?<![\w.])(?:10|172|192)\.(?=[\d$({])")
IPV6 = re.compile(r"(?<![\w:])fd[0-9a-f]{2}:[0-9a-f:]*(?:/\d{1,3})?", re.IGNORECASE)


def addresses_in(text):
    """Every IPv4 address, subnet or address template in text, as the smallest network covering it.

    "10.1.2.0/24" is that subnet; "10.1.2.3" a /32; "10.1.2." or "10.1.2" (a prefix, as grep
    patterns use) a /24; an octet made by the shell or Python ("10.1.$i.0/24", "10.1.0.1$h",
    "10.1.{i}.3") makes the network end before it ("10.1.0.0/16", "10.1.0.0/24").
    """
    found = []
    for m in START.finditer(text):
        i, octets, prefix = m.start(), [], None
        while len(octets) < 4:
            k = i
            while k < len(text) and text[k].isdigit():
                k += 1
            if k == i:
                break  # "10.1." then a variable or the end of the pattern
            if k < len(text) and (text[k].isalpha() or text[k] in "$_({"):
                break  # this octet is partly computed: the network ends before it
            octets.append(int(text[i:k]))
            i = k
            if len(octets) == 4 or i >= len(text) or text[i] != ".":
                break
            i += 1
        if any(o > 255 for o in octets) or not interesting(octets):
            continue  # e.g. 10.202.0.300, an invalid address a test feeds the CLI on purpose
        if len(octets) == 4:
            suffix = re.match(r"/(\d{1,2})(?!\d)", text[i:])
            prefix = int(suffix.group(1)) if suffix else 32
        else:
            prefix = 8 * len(octets)
        base = ".".join(str(o) for o in octets + [0] * (4 - len(octets)))
        found.append(ipaddress.ip_network(f"{base}/{prefix}", strict=False))
    for m in IPV6.finditer(text):
        try:
            found.append(ipaddress.ip_network(m.group(0), strict=False))
        except ValueError:
            pass
    return found


def read_registry(path):
    """{key: {"nets": [...], "host_nets": [...], "uses": [...]}} from tests/addresses.txt: every
    subnet of the key, and those not marked netns-only (which may clash with another test's)."""
    entries = {}
    for line in open(path):
        line = line.split("#", 1)[0].split()
        if not line:
            continue
        key, words = line[0], line[1:]
        e = entries.setdefault(key, {"nets": [], "host_nets": [], "uses": []})
        if words[:1] == ["uses"]:
            e["uses"] += words[1:]
            continue
        netns_only = words[:1] == ["netns-only"]
        for w in words[1:] if netns_only else words:
            if w != "-":
                e["nets"].append(ipaddress.ip_network(w))
                if not netns_only:
                    e["host_nets"].append(e["nets"][-1])
    return entries


def fail(problems):
    for p in problems:
        print("FAIL:", p)
    sys.exit(1)


def main():
    source_dir, build_dir = sys.argv[1], sys.argv[2]
    ctest = sys.argv[3] if len(sys.argv) > 3 else "ctest"
    registry = read_registry(os.path.join(source_dir, "tests", "addresses.txt"))
    show = subprocess.run([ctest, "--show-only=json-v1"], cwd=build_dir, check=True,
                          capture_output=True, text=True).stdout
    tests = json.loads(show)["tests"]
    if not tests:
        fail([f"ctest in {build_dir} lists no tests"])

    shell_files = sorted(glob.glob(os.path.join(source_dir, "tests", "**", "*.sh"), recursive=True))
    problems = []

    def key_of(path):
        return os.path.basename(path).rsplit(".", 1)[0]

    # (a) each script ctest runs, with what it sources or runs, against its registry entry.
    scripts = {}
    for t in tests:
        sh = [c for c in t.get("command", []) if c.endswith(".sh")]
        if sh:
            scripts[t["name"]] = sh[0]
    checked = set()
    for path in sorted(set(scripts.values())):
        name = key_of(path)
        if name not in registry:
            problems.append(f"{path} is run by ctest but has no line in tests/addresses.txt")
            continue
        if name in checked:
            continue
        checked.add(name)
        text = open(path).read()
        # The files it sources or runs (by base name: lib.sh, cluster_lib.sh, harness_probe.sh) and
        # those its registry line declares ("uses").
        sources = [(path, name)]
        for p in shell_files:
            base = os.path.basename(p)
            if p != path and re.search(r"(?<![\w.])" + re.escape(base) + r"\b", text):
                sources.append((p, key_of(p)))
        for pattern in registry[name]["uses"]:
            for p in sorted(glob.glob(os.path.join(source_dir, pattern))):
                sources.append((p, name))
            if not glob.glob(os.path.join(source_dir, pattern)):
                problems.append(f"tests/addresses.txt: {name} uses {pattern}, which matches no file")
        # A script's addresses may be its own or those of a harness it sources (cluster_lib's
        # underlay); a key.suffix line (docker0's subnet of the .dockerdefaults variants) counts too.
        owners = sorted({own for _, own in sources})
        allowed = [n for key, e in registry.items() if key.partition(".")[0] in owners for n in e["nets"]]
        for p, _ in sources:
            for net in addresses_in(open(p).read()):
                if not any(net.version == a.version and net.subnet_of(a) for a in allowed):
                    problems.append(f"{os.path.relpath(p, source_dir)} (run by {name}) uses {net}, "
                                    f"which tests/addresses.txt gives to none of {', '.join(owners)}")

    # (b) overlapping subnets of tests that ctest may run at the same time.
    def props(t):
        return {p["name"]: p["value"] for p in t.get("properties", [])}

    def nets_of(test_name):
        name = key_of(scripts[test_name])
        nets = []
        for key, e in registry.items():
            base, _, suffix = key.partition(".")
            if base == name and (not suffix or test_name.endswith("." + suffix)):
                nets += e["host_nets"]
        return nets

    script_tests = [t for t in tests if t["name"] in scripts]
    for key in registry:
        base = key.partition(".")[0]
        if base not in {key_of(p) for p in scripts.values()} and base not in {key_of(p) for p in shell_files}:
            problems.append(f"tests/addresses.txt names {key}, which no ctest test runs")
    for t1, t2 in itertools.combinations(script_tests, 2):
        p1, p2 = props(t1), props(t2)
        if p1.get("RUN_SERIAL") or p2.get("RUN_SERIAL"):
            continue
        if set(p1.get("RESOURCE_LOCK", [])) & set(p2.get("RESOURCE_LOCK", [])):
            continue
        clash = [(a, b) for a in nets_of(t1["name"]) for b in nets_of(t2["name"])
                 if a.version == b.version and a.overlaps(b)]
        if clash:
            a, b = clash[0]
            problems.append(f"{t1['name']} ({a}) and {t2['name']} ({b}) may run at the same time "
                            "with overlapping subnets: move one, or give them a RESOURCE_LOCK")
    if problems:
        fail(problems)
    print(f"ok: {len(checked)} scripts within their registered subnets, {len(script_tests)} ctest tests "
          "without overlapping subnets among those that may run together")


if __name__ == "__main__":
    main()

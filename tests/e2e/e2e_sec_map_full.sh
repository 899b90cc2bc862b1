#!/usr/bin/env bash
# A full endpoint map: the host's BPF endpoint table (bpfnet_ep_by_if, 16,384 entries) is filled to
# one free slot with entries for interfaces that do not exist; the next endpoint takes the last
# slot and works, the one after is refused with a clear error and leaves nothing behind (no
# sandbox connection, no interface, no map entry), and the first keeps forwarding. Once slots are
# free again, the same connect succeeds.
source "$(dirname "$0")/lib.sh"
start_agent
MAP="$BPFFS_DIR/bpfnet/bpfnet_ep_by_if"
NET=full-$$
bn network create --subnet 10.228.0.0/24 "$NET" >/dev/null
bn sandbox create --network "$NET" --ip 10.228.0.10 "keep-$$" >/dev/null

# Fills (or empties) the map with keys 0x7f000000 + i: ifindexes no interface of this host has.
fill_map() {  # fill_map add|del
    python3 - "$MAP" "$1" <<'PY'
import ctypes, json, os, subprocess, sys
path, action = sys.argv[1], sys.argv[2]
info = json.loads(subprocess.check_output(["bpftool", "-j", "map", "show", "pinned", path]))
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf, OBJ_GET, UPDATE, DELETE = 321, 7, 2, 3
def bpf(cmd, attr):
    r = libc.syscall(SYS_bpf, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    return r, ctypes.get_errno()
class ObjGet(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32), ("file_flags", ctypes.c_uint32)]
class Elem(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]
name = ctypes.create_string_buffer(path.encode())
fd, err = bpf(OBJ_GET, ObjGet(ctypes.addressof(name), 0, 0))
assert fd >= 0, os.strerror(err)
used = len(json.loads(subprocess.check_output(["bpftool", "-j", "map", "dump", "pinned", path])))
value = ctypes.create_string_buffer(info["bytes_value"])
count = info["max_entries"] - used - 1 if action == "add" else info["max_entries"]
done = 0
for i in range(count):
    key = ctypes.c_uint32(0x7F000000 + i)
    if action == "add":
        r, err = bpf(UPDATE, Elem(fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0))
        assert r == 0, f"update {i}: {os.strerror(err)}"
        done += 1
    else:
        r, err = bpf(DELETE, Elem(fd, 0, ctypes.addressof(key), 0, 0))
        done += r == 0
print(f"{action}: {done} entries ({used} in use before, {info['max_entries']} at most)")
PY
}
CLEANUP_HOOKS+=("fill_map del >/dev/null 2>&1")
fill_map add

bn sandbox create --network "$NET" --ip 10.228.0.11 "last-$$" >/dev/null || die "the last free slot was refused"
bn sandbox create "over-$$" >/dev/null
links_before=$(owned_links "$(agent_instance)" | wc -l)
expect_fail "no room for another endpoint on this host (16384 at most)" \
    bn network connect --ip 10.228.0.12 "$NET" "over-$$"
# Nothing of the refused connect is left: no connection, no interface, no map entry.
bn sandbox inspect "over-$$" | python3 -c "
import json, sys
assert not json.load(sys.stdin)[0]['Networks'], 'over is still connected'" || die "the refused connect left a connection"
[ "$(owned_links "$(agent_instance)" | wc -l)" = "$links_before" ] || die "the refused connect left an interface"
[ "$(bpftool -j map dump pinned "$MAP" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 16384 ] ||
    die "the map is no longer full: the refused connect changed it"
# What was there keeps forwarding; the address was not taken.
in_sb "keep-$$" ping -c 1 -W 2 10.228.0.11 >/dev/null || die "the endpoints of the full host stopped forwarding"

fill_map del
bn network connect --ip 10.228.0.12 "$NET" "over-$$" || die "with room again, the connect still fails"
in_sb "over-$$" ping -c 1 -W 2 10.228.0.10 >/dev/null || die "the endpoint connected after the map had room does not forward"
assert_datapath_is "$NET" bpf
log "ok"

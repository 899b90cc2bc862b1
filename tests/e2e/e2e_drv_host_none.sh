#!/usr/bin/env bash
# The predefined host and none networks, Docker's way: a sandbox on host is the host's own
# namespace (it sees the host's interfaces and a server in it listens on the host); a sandbox on
# none has only loopback and cannot join anything else; neither network can be created twice or
# removed; the rules about connecting and publishing give docker's messages; both survive a restart.
source "$(dirname "$0")/lib.sh"
start_agent
ls_out=$(bn network ls)
grep -q " host  *host " <<<"$ls_out" || die "no predefined host network: $ls_out"
grep -q " none  *null " <<<"$ls_out" || die "no predefined none network: $ls_out"
[ "$(bn network ls -q -f type=builtin | wc -l)" = 2 ] || die "expected host and none as builtin networks"
expect_fail "host is a pre-defined network and cannot be removed" bn network rm host
expect_fail "none is a pre-defined network and cannot be removed" bn network rm none
expect_fail 'only one instance of "host" network is allowed' bn network create -d host "h2-$$"
expect_fail 'only one instance of "null" network is allowed' bn network create -d null "n2-$$"
bn network prune -f >/dev/null
[ "$(bn network ls -q -f type=builtin | wc -l)" = 2 ] || die "prune removed a predefined network"

# host: the sandbox is the host's namespace.
bn sandbox create --network host "hs-$$" >/dev/null
[ "$(in_ns "hs-$$" readlink /proc/self/ns/net)" = "$(readlink /proc/self/ns/net)" ] \
    || die "the host sandbox is not the host's namespace"
PORT=$((20000 + $$ % 20000))
# nsenter execs python, so $! is the server itself (not a subshell that would outlive a kill).
nsenter --net="$NETNS_DIR/hs-$$" python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $PORT)); s.listen(); time.sleep(30)" &
LISTENER=$!
CLEANUP_HOOKS+=("kill $LISTENER 2>/dev/null")
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
    sleep 0.1
done
python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" \
    || die "a server in the host sandbox is not on the host"
kill $LISTENER
bn network inspect host | python3 -c "
import json, sys
n = json.load(sys.stdin)[0]
assert n['Driver'] == 'host' and n['IPAM']['Config'] == [], n
assert any(c['Name'] == 'hs-$$' for c in n['Containers'].values()), n['Containers']" \
    || die "network inspect host does not list the sandbox"
expect_fail "published ports are discarded when using host network mode" \
    bn sandbox create --network host -p 8080:80 "hp-$$"
bn network create --subnet 10.215.0.0/24 "br-$$" >/dev/null
expect_fail "cannot be connected to any other network" bn network connect "br-$$" "hs-$$"
expect_fail "cannot be disconnected from host network" bn network disconnect host "hs-$$"
bn sandbox create "own-$$" >/dev/null
expect_fail "connected to host network" bn network connect host "own-$$"

# none: loopback only, and nothing else may join.
bn sandbox create --network none "ns-$$" >/dev/null
links=$(in_ns "ns-$$" ip -o link show | awk -F': ' '{print $2}')
[ "$links" = lo ] || die "a none sandbox has more than loopback: $links"
expect_fail "private (none) mode" bn network connect "br-$$" "ns-$$"
bn network connect "br-$$" "own-$$"
expect_fail "private (none) mode" bn network connect none "own-$$"
bn sandbox inspect "ns-$$" | grep >/dev/null '"NetworkMode": "none"' || die "inspect does not show none mode"
# Leaving none makes it an ordinary sandbox again.
bn network disconnect none "ns-$$"
bn network connect "br-$$" "ns-$$"
in_sb "ns-$$" ping -c 2 -W 2 10.215.0.2 >/dev/null || die "the former none sandbox has no traffic"

# A restart keeps the host sandbox bound to the host's namespace (re-bound if the binding is gone).
stop_agent
umount -l "$NETNS_DIR/hs-$$"; rm -f "$NETNS_DIR/hs-$$"
start_agent
[ "$(in_ns "hs-$$" readlink /proc/self/ns/net)" = "$(readlink /proc/self/ns/net)" ] \
    || die "after a restart the host sandbox is not the host's namespace"
[ "$(bn network ls -q -f type=builtin | wc -l)" = 2 ] || die "the restart duplicated predefined networks"

# Removing the host sandbox leaves the host alone.
bn sandbox rm "hs-$$" >/dev/null
[ -e "$NETNS_DIR/hs-$$" ] && die "the host sandbox binding is left"
ip link show lo >/dev/null || die "the host lost its loopback"

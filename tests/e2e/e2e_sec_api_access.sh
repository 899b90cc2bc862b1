#!/usr/bin/env bash
# Who may use the agent: its API socket is 0660 root:root by default, root:<group> with
# --socket-group; a member of the group gets in, anyone else is stopped by the file permissions,
# and, should the file be made world-writable by mistake, by the agent's own check of the caller's
# credentials (403, "permission denied").
source "$(dirname "$0")/lib.sh"
STRANGER=4000001  # a uid with no account and no groups
# The other users must reach the CLI and the socket: a world-readable copy of the CLI, traversable
# directories.
install -m 0755 "$BPFNET" "$WORK/bpfnet-cli"
chmod 0755 "$WORK"
as() { local uid=$1 gid=$2; shift 2; setpriv --reuid "$uid" --regid "$gid" --clear-groups "$WORK/bpfnet-cli" --run-dir "$RUN_DIR" "$@"; }
sock="$RUN_DIR/bpfnetd.sock"

start_agent
chmod 0755 "$RUN_DIR"
[ "$(stat -c '%a %U:%G' "$sock")" = "660 root:root" ] || die "default socket is $(stat -c '%a %U:%G' "$sock")"
bn version >/dev/null || die "root is refused"
expect_fail "ermission denied" as 65534 65534 version
stop_agent

nogroup=$(getent group nogroup | cut -d: -f3)
start_agent --socket-group nogroup
chmod 0755 "$RUN_DIR"
[ "$(stat -c '%a %U:%G' "$sock")" = "660 root:nogroup" ] || die "socket is $(stat -c '%a %U:%G' "$sock")"
as 65534 "$nogroup" version >/dev/null || die "a member of the socket group is refused"
as 65534 "$nogroup" network ls >/dev/null || die "a member of the socket group cannot list networks"
expect_fail "ermission denied" as "$STRANGER" "$STRANGER" version
# The file made world-writable: the agent still refuses the stranger, and says so.
chmod 0666 "$sock"
expect_fail "permission denied: uid $STRANGER may not use bpfnetd" as "$STRANGER" "$STRANGER" network ls
grep "refused a request from uid $STRANGER" "$AGENT_LOG" >/dev/null || die "the agent did not log the refusal"
bn network ls >/dev/null || die "root is refused after the chmod"
stop_agent
expect_fail "no such group" "$BPFNETD" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR" --bpffs-root "$BPFFS_DIR" \
    --netns-dir "$NETNS_DIR" "${AGENT_FLAGS[@]}" --socket-group no-such-group-bpfnet
start_agent  # for cleanup
log "ok"

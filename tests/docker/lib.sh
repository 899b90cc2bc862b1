# Harness for the Docker integration tests: everything tests/e2e/lib.sh gives (a private bpfnetd,
# cleanup on any exit), plus a private dockerd (Debian's docker.io with its own data root, exec
# root, pidfile and API socket, no bridge, no iptables, --live-restore), a busybox image made with
# `docker import` from busybox-static, and a plugin name unique to the test so parallel tests never
# share /run/docker/plugins/<name>.sock. Sourced by tests/docker/docker_*.sh.
# A test may run several dockerds (e.g. one per host of an overlay): `dk_instance NAME [WRAPPER..]`
# switches every helper below to instance NAME (its own directories, socket and plugin name;
# WRAPPER, e.g. `nsenter --net=...`, runs its dockerd); the first instance is "a".
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

# Debian's client, not whatever else is first on PATH (a newer client may be installed elsewhere).
DOCKER_CLI=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
[ -x "$DOCKERD" ] && [ -x "$DOCKER_CLI" ] || die "docker.io is not installed (scripts/install-deps.sh installs it)"
[ -x /bin/busybox ] || die "busybox-static is not installed (scripts/install-deps.sh installs it)"

# Short paths: dockerd's and containerd's unix sockets live under these (108-byte limit).
DK_ROOT=$(mktemp -d /tmp/bndk.XXXXXX)
IMAGE="bpfnet-busybox:test"
DK_INSTANCES=()
declare -A DK_WRAPS=()
dk_instance() {
    local name=$1; shift
    DK_DIR="$DK_ROOT/$name"
    DK_SOCK="$DK_DIR/docker.sock"
    DK_PID="$DK_DIR/docker.pid"
    DK_LOG="$WORK/dockerd-$name.log"
    PLUGIN="bpfnet-${TEST_NAME#docker_}-$$"
    [ "$name" = a ] || PLUGIN="$PLUGIN-$name"
    PLUGIN_SOCK="/run/docker/plugins/$PLUGIN.sock"
    if [[ ! " ${DK_INSTANCES[*]} " =~ " $name " ]]; then
        DK_INSTANCES+=("$name")
        DK_WRAPS[$name]="$*"
        mkdir -p "$DK_DIR"
    fi
    DK_WRAP=${DK_WRAPS[$name]}
}
dk_instance a

dk() { "$DOCKER_CLI" -H "unix://$DK_SOCK" "$@"; }

start_dockerd() {
    # shellcheck disable=SC2086  # the wrapper is a command line
    $DK_WRAP "$DOCKERD" --data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" --pidfile "$DK_PID" \
        --host "unix://$DK_SOCK" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --live-restore >>"$DK_LOG" 2>&1 &
    for _ in $(seq 1 150); do
        dk version >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    tail -20 "$DK_LOG" >&2
    die "dockerd did not answer within 30 s"
}

stop_dockerd() {
    [ -f "$DK_PID" ] || return 0
    local pid
    pid=$(cat "$DK_PID")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    # dockerd removes its pidfile on a clean exit; wait for it so a restart does not race it.
    for _ in $(seq 1 50); do [ -f "$DK_PID" ] || break; sleep 0.1; done
    rm -f "$DK_PID"
}

# The image: busybox-static and its applets, nothing else.
import_image() {
    local root="$DK_DIR/rootfs"
    mkdir -p "$root/bin" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh ping ip nc sleep cat wget nslookup hostname httpd ls grep true mkdir; do
        ln -sf busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | dk import - "$IMAGE" >/dev/null
}

# Agent serving the plugin under this test's name and asking this dockerd for network names.
start_agent_for_docker() {
    start_agent --plugin-socket "$PLUGIN_SOCK" --docker-host "unix://$DK_SOCK" "$@"
}

# docker network create, quietly (cleanup removes every network the test's dockerds have).
dk_network_create() { dk network create "$@" >/dev/null; }

dk_run() { dk run -d "$@" >/dev/null; }  # dk_run --name c1 --network n IMAGE sleep 600

# Prints the sandbox-side IPv4 address of CONTAINER's interface IFNAME.
container_ip() {
    dk exec "$1" ip -o -4 addr show dev "${2:-eth0}" | awk '{print $4}' | cut -d/ -f1
}

# Host end of a container's veth on NETWORK: bnv- + 11 hex digits of Docker's endpoint ID.
host_if_of_container() {
    local ep
    ep=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$2\").EndpointID}}" "$1")
    echo "bnv-${ep:0:11}"
}

docker_cleanup() {
    # Docker calls the plugin while it removes containers and networks: the agent must be up.
    if [ -z "$AGENT_PID" ] && [ -d "$STATE_DIR" ]; then start_agent_for_docker >/dev/null 2>&1; fi
    local name ids
    for name in "${DK_INSTANCES[@]}"; do
        dk_instance "$name"
        if [ -f "$DK_PID" ]; then
            ids=$(dk ps -aq 2>/dev/null)
            [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
            for n in $(dk network ls -q -f type=custom 2>/dev/null); do dk network rm "$n" >/dev/null 2>&1; done
            stop_dockerd
        fi
        rm -f "$PLUGIN_SOCK"
        if [ "${rc:-0}" -ne 0 ] && [ -f "$DK_LOG" ]; then
            echo "---- last lines of the dockerd log ($name) ----" >&2
            tail -20 "$DK_LOG" >&2
        fi
    done
    # Whatever dockerd left mounted (netns bind mounts, overlay layers, shm), deepest first.
    grep -F " $DK_ROOT/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$DK_ROOT"
}
CLEANUP_HOOKS+=("docker_cleanup")

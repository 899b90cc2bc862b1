# Harness for the Docker integration tests: everything tests/e2e/lib.sh gives (a private bpfnetd,
# cleanup on any exit), plus a private dockerd (Debian's docker.io with its own data root, exec
# root, pidfile and API socket, --live-restore), a busybox image made with `docker import` from
# busybox-static, and a plugin name unique to the test so parallel tests never share
# /run/docker/plugins/<name>.sock. Sourced by tests/docker/docker_*.sh.
# That dockerd is Docker as installed: iptables on, docker0, userland proxy, and the FORWARD policy
# DROP that Docker 28+ always sets (20.10 only does when it turns ip_forward on itself, so it is
# set here). That changes host-wide state: ctest runs these tests alone, and the harness saves the
# host's iptables rules, its sysctls and which of Docker's bridges existed first, and restores them
# at exit, whatever the outcome (restore_host_firewall).
# A test may run several dockerds (e.g. one per host of an overlay): `dk_instance NAME [WRAPPER..]`
# switches every helper below to instance NAME (its own directories, socket and plugin name;
# WRAPPER, e.g. `nsenter --net=...`, runs its dockerd); the first instance is "a".
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

# Debian's client, not whatever else is first on PATH (a newer client may be installed elsewhere).
DOCKER_CLI=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
[ -x "$DOCKERD" ] && [ -x "$DOCKER_CLI" ] || die "docker.io is not installed (scripts/install-deps.sh installs it)"
[ -x /bin/busybox ] || die "busybox-static is not installed (scripts/install-deps.sh installs it)"

command -v iptables-save >/dev/null && command -v iptables-restore >/dev/null \
    || die "iptables is not installed (scripts/install-deps.sh installs it)"

# The host state dockerd changes: its iptables tables (Docker's chains and rules in
# filter and nat, the FORWARD policy), its bridges (docker0; docker_gwbridge, which Docker adds for
# containers on global-scope networks such as overlays), and forwarding and br_netfilter sysctls.
# firewall_state < iptables-save output: the rules without their [packets:bytes] counters and the
# dated comments, leaving out tables with nothing in them (no rule, no own chain, every policy
# ACCEPT), which are the same as no table.
firewall_state() {
    awk '/^#/ { next }
         /^\*/ { table = $0; body = ""; used = 0; next }
         /^COMMIT/ { if (used) printf "%s\n%s%s\n", table, body, $0; next }
         /^:/ { sub(/ \[[0-9]*:[0-9]*\]$/, ""); if ($2 != "ACCEPT") used = 1; body = body $0 "\n"; next }
         { used = 1; body = body $0 "\n" }'
}
HOST_SYSCTLS='^net\.(ipv4\.ip_forward|ipv4\.conf\.(all|default)\.|ipv6\.conf\.(all|default)\.forwarding|bridge\.)'
host_sysctls() { sysctl -a --pattern "$HOST_SYSCTLS" 2>/dev/null | sort; }
save_host_firewall() {
    HOST_SAVED="$WORK/host-saved"
    mkdir -p "$HOST_SAVED"
    iptables-save >"$HOST_SAVED/iptables"
    ip6tables-save >"$HOST_SAVED/ip6tables"
    host_sysctls >"$HOST_SAVED/sysctls"
    DOCKER_BRIDGES_BEFORE=""
    for br in docker0 docker_gwbridge; do
        if ip link show "$br" >/dev/null 2>&1; then DOCKER_BRIDGES_BEFORE+=" $br"; fi
    done
    POST_CLEANUP_HOOKS+=("restore_host_firewall")
}
# Runs at the very end of cleanup, once dockerd and the agent are gone (nothing either of them
# removes at exit may come back), and fails the test if the host is not as it was.
restore_host_firewall() {
    local fam tbl chain key value br diffs=""
    # The restore below would hide a rule the agent failed to remove: look for its own first.
    if [ -n "$AGENT_INSTANCE" ] && iptables-save | grep -F >/dev/null "bpfnet $AGENT_INSTANCE:"; then
        diffs+="bpfnetd $AGENT_INSTANCE left its rules: $(iptables-save | grep -F "bpfnet $AGENT_INSTANCE:")"$'\n'
    fi
    for fam in iptables ip6tables; do
        "$fam-restore" <"$HOST_SAVED/$fam" || diffs+=" ($fam-restore failed)"
        # iptables-restore rewrites only the tables it is given: empty the ones that are new.
        for tbl in $("$fam-save" | sed -n 's/^\*//p'); do
            grep -x >/dev/null "\*$tbl" "$HOST_SAVED/$fam" && continue
            "$fam" -t "$tbl" -F; "$fam" -t "$tbl" -X
            for chain in $("$fam-save" -t "$tbl" | sed -n 's/^:\([^ ]*\) [A-Z].*/\1/p'); do
                "$fam" -t "$tbl" -P "$chain" ACCEPT
            done
        done
    done
    for br in docker0 docker_gwbridge; do
        [[ " $DOCKER_BRIDGES_BEFORE " =~ " $br " ]] || ip link del "$br" 2>/dev/null
    done
    while IFS=' = ' read -r key value; do
        [ "$(sysctl -n "$key" 2>/dev/null)" = "$value" ] || sysctl -qw "$key=$value" || true
    done <"$HOST_SAVED/sysctls"
    for fam in iptables ip6tables; do
        diffs+=$(diff <(firewall_state <"$HOST_SAVED/$fam") <("$fam-save" | firewall_state)) || true
    done
    diffs+=$(diff "$HOST_SAVED/sysctls" <(host_sysctls)) || true
    for br in docker0 docker_gwbridge; do
        if [[ ! " $DOCKER_BRIDGES_BEFORE " =~ " $br " ]] && ip link show "$br" >/dev/null 2>&1; then
            diffs+=" ($br is left)"
        fi
    done
    if [ -n "$diffs" ]; then
        echo "[$TEST_NAME] FAIL: the host's firewall, sysctls or Docker's bridges differ from before the test: $diffs" >&2
        CLEANUP_FAILED=1
    fi
}
save_host_firewall

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

# dockerd has made docker0 and its iptables chains where it runs (the host, or
# the namespace of its wrapper); then the FORWARD policy is set to DROP as Docker 28+ sets it.
dockerd_defaults_in_place() {
    # shellcheck disable=SC2086  # the wrapper is a command line
    {
        $DK_WRAP ip link show docker0 >/dev/null || die "a dockerd with its defaults made no docker0"
        $DK_WRAP iptables -t nat -S DOCKER >/dev/null || die "a dockerd with its defaults made no DOCKER chain in nat"
        $DK_WRAP iptables -S DOCKER-USER >/dev/null || die "a dockerd with its defaults made no DOCKER-USER chain"
        $DK_WRAP iptables -P FORWARD DROP || die "cannot set the FORWARD policy to DROP"
    }
}

start_dockerd() {
    # shellcheck disable=SC2086  # the wrapper is a command line
    $DK_WRAP "$DOCKERD" --data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" --pidfile "$DK_PID" \
        --host "unix://$DK_SOCK" --live-restore >>"$DK_LOG" 2>&1 &
    for _ in $(seq 1 150); do
        if dk version >/dev/null 2>&1; then
            dockerd_defaults_in_place
            return 0
        fi
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

# Waiting for a condition, with a deadline, instead of sleeping for it: a fixed sleep is either too
# short on a loaded machine (a flake) or longer than needed (slow), and proves nothing either way.
# Sourced at the end of lib.sh.

# Microseconds since the epoch (EPOCHREALTIME without its decimal separator, whatever the locale).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; returns 1 if it has not
# succeeded within SECONDS (fractions allowed, e.g. 2.5). The caller says what failed.
wait_until() {
    local deadline
    deadline=$(( $(now_us) + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 }') ))
    shift
    until "$@"; do
        [ "$(now_us)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# listening WHERE tcp|udp PORT: a socket is listening (TCP) or bound (UDP) on PORT in WHERE: "host",
# a sandbox name (its namespace in $NETNS_DIR) or the path of a network namespace.
listening() {
    local where=$1 proto=$2 port=$3 flags
    case $proto in
        tcp) flags=-Hltn ;;
        udp) flags=-Hlun ;;
        *) die "listening: protocol $proto is neither tcp nor udp" ;;
    esac
    local ns=()
    case $where in
        host) ;;
        /*) ns=(nsenter --net="$where") ;;
        *) ns=(nsenter --net="$NETNS_DIR/$where") ;;
    esac
    [ -n "$("${ns[@]}" ss "$flags" "sport = :$port" 2>/dev/null)" ]
}
# wait_listening WHERE tcp|udp PORT: dies if nothing listens there within 10 s.
wait_listening() {
    wait_until 10 listening "$@" || die "nothing listens on $2 port $3 in $1 after 10 s"
}

# The number of echo replies a running `ping` has printed to FILE so far.
ping_replies() { local n; n=$(grep -c "bytes from" "$1" 2>/dev/null) || true; echo "${n:-0}"; }
# wait_ping_replies FILE N WHAT: dies unless the ping writing FILE gets N more replies within 10 s;
# WHAT says when ("while the agent was stopped").
wait_ping_replies() {
    local file=$1 want=$(( $(ping_replies "$1") + $2 )) what=$3
    wait_until 10 ping_replies_at_least "$file" "$want" \
        || die "no traffic $what: $(ping_replies "$file") replies, expected $want ($(tail -2 "$file"))"
}
ping_replies_at_least() { [ "$(ping_replies "$1")" -ge "$2" ]; }

# ringbuf_reader PID: PID, or a child of it (a backgrounded shell function is a subshell running the
# command), holds a BPF ring buffer open: `bpfnet monitor` is ready for events.
ringbuf_reader() {
    local p
    for p in "$1" $(pgrep -P "$1"); do
        # BPF_MAP_TYPE_RINGBUF is 27.
        grep -l -s "^map_type:[[:space:]]*27$" /proc/"$p"/fdinfo/* >/dev/null && return 0
    done
    return 1
}

# nflog_bound GROUP [NETNS]: a socket (`bpfnet monitor`) has NFLOG group GROUP in NETNS (a name under
# /run/netns; default: this one).
nflog_bound() {
    local wrap=()
    [ -z "${2:-}" ] || wrap=(ip netns exec "$2")
    "${wrap[@]}" awk -v g="$1" '$1 == g { found = 1 } END { exit !found }' /proc/net/netfilter/nfnetlink_log
}

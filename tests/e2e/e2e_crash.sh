#!/usr/bin/env bash
# Crash consistency: the agent is killed (SIGKILL) between the steps of every operation, restarted,
# and must end with store, interfaces and firewall (nftables) in agreement: no orphans, nothing
# half-made.
source "$(dirname "$0")/lib.sh"
start_agent
bn network create --subnet 10.208.1.0/24 "base-$$" >/dev/null
bn sandbox create "sbbase-$$" >/dev/null
bn sandbox create "sbpeer-$$" >/dev/null
bn network connect "base-$$" "sbbase-$$"
bn network connect "base-$$" "sbpeer-$$"
INST=$(agent_instance)

# Every link the agent marks as its own must be one the store knows about, and vice versa.
check_consistent() {
    local expected actual
    expected=$( (bn network inspect $(bn network ls -q -f type=custom) | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    print(n["BpfNet"]["Bridge"])'; \
        bn sandbox ls --format json | python3 -c '
import json, sys
for line in sys.stdin:
    for net in json.loads(line)["Networks"].values():
        print("bnv-" + net["EndpointID"][:11])') | sort)
    actual=$(owned_links "$INST")
    [ "$expected" = "$actual" ] || die "after $1: store names [$expected] but kernel has [$actual]"
    local sandboxes
    sandboxes=$(bn sandbox ls --format json) || die "after $1: sandbox ls failed"
    for f in "$NETNS_DIR"/*; do
        grep -qF "\"NetnsPath\":\"$f\"" <<< "$sandboxes" || die "after $1: orphan namespace $f (sandboxes: $sandboxes)"
    done
    check_firewall "$1"
    in_sb "sbbase-$$" ping -c 1 -W 2 10.208.1.3 >/dev/null || die "after $1: surviving endpoints lost traffic"
}
# The firewall agrees with the store: the agent's nftables tables (ip and ip6 bpfnet_<instance>, on
# either datapath) name exactly the store's bridges in their `bridges` set, their forward rules
# name no other bridge, and postrouting masquerades exactly each network's subnet leaving its bridge.
check_firewall() {
    local want got
    want=$(bn network inspect $(bn network ls -q -f type=custom) | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    print(n["BpfNet"]["Bridge"], n["IPAM"]["Config"][0]["Subnet"])' | sort)
    got=$( (nft -j list table ip "bpfnet_$INST" && nft -j list table ip6 "bpfnet_$INST") 2>&1 | python3 -c '
import json, sys
dec = json.JSONDecoder()
text = sys.stdin.read().strip()
docs = []
while text:
    try:
        doc, end = dec.raw_decode(text)
    except ValueError:
        sys.exit("nft said: " + text[:300])
    docs.append(doc)
    text = text[end:].strip()
sets, masq, named = {}, set(), set()
for doc in docs:
    for obj in doc["nftables"]:
        if "set" in obj and obj["set"]["name"] == "bridges":
            elem = obj["set"].get("elem", [])
            sets[obj["set"]["family"]] = sorted([elem] if isinstance(elem, str) else elem)
        rule = obj.get("rule")
        if not rule or not rule.get("comment", "").startswith("bpfnet "):
            continue
        what, _, bridge = rule["comment"][len("bpfnet "):].partition(": ")
        if rule["chain"] == "forward":
            named.add(bridge)
        if what == "masquerade":
            prefix = [m["match"]["right"]["prefix"] for m in rule["expr"]
                      if "match" in m and m["match"]["left"].get("payload", {}).get("field") == "saddr"]
            masq.add("%s %s/%d" % (bridge, prefix[0]["addr"], prefix[0]["len"]))
bridges = sets.get("ip")
if bridges is None or sets.get("ip6") != bridges:
    sys.exit("bridges sets differ between ip and ip6 (or are missing): %s" % sets)
stray = named - set(bridges)
if stray:
    sys.exit("forward rules name bridges outside the set: %s" % sorted(stray))
if sorted(b for b in bridges) != sorted(m.split()[0] for m in masq):
    sys.exit("bridges %s but masquerade rules for %s" % (bridges, sorted(masq)))
print("\n".join(sorted(masq)))' 2>&1) || die "after $1: the agent's nftables tables are not as rendered: $got"
    [ "$want" = "$got" ] || die "after $1: store has networks [${want//$'\n'/; }] but the firewall has [${got//$'\n'/; }]"
    nft list table bridge "bpfnet_$INST" >/dev/null 2>&1 && die "after $1: a bridge-family table bpfnet_$INST exists"
    return 0
}

crash_during() {  # crash_during FAILPOINT CMD...
    local point=$1; shift
    stop_agent
    BPFNET_FAILPOINTS=$point start_agent_with_failpoint
    "$@" >/dev/null 2>&1 && die "operation '$*' finished although failpoint $point should have killed the agent"
    for _ in $(seq 1 50); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$AGENT_PID" 2>/dev/null && die "failpoint $point was never reached by '$*'"
    reap_killed_agent  # killed by the failpoint, not dead of anything else
    start_agent
    check_consistent "$point"
    log "recovered from a crash at $point"
}
start_agent_with_failpoint() {
    "$BPFNETD" --state-dir "$STATE_DIR" --run-dir "$RUN_DIR" --bpffs-root "$BPFFS_DIR" \
        --netns-dir "$NETNS_DIR" --log-level debug "${AGENT_FLAGS[@]}" >>"$AGENT_LOG" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 1 100); do bn version >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "agent with failpoint did not start"
}

crash_during network.create.recorded bn network create --subnet 10.208.2.0/24 "n1-$$"
crash_during network.create.datapath bn network create --subnet 10.208.2.0/24 "n1-$$"
# The name is free again: interrupted creates were rolled back.
bn network create --subnet 10.208.2.0/24 "n1-$$" >/dev/null || die "name/subnet still taken after rollback"
crash_during sandbox.create.recorded bn sandbox create "sbx-$$"
bn sandbox create "sbx-$$" >/dev/null || die "sandbox name still taken after rollback"
crash_during endpoint.create.recorded bn network connect "n1-$$" "sbx-$$"
crash_during endpoint.create.datapath bn network connect "n1-$$" "sbx-$$"
bn network connect "n1-$$" "sbx-$$" || die "connect after rollback failed"
crash_during endpoint.remove.marked bn network disconnect "n1-$$" "sbx-$$"
bn network connect "n1-$$" "sbx-$$"
crash_during sandbox.remove.marked bn sandbox rm "sbx-$$"
sandboxes=$(bn sandbox ls --format json)
grep >/dev/null "\"sbbase-$$\"" <<<"$sandboxes" || die "sandbox ls does not list sbbase: $sandboxes"
grep >/dev/null "sbx-$$" <<<"$sandboxes" && die "interrupted sandbox rm was not finished"
crash_during network.remove.marked bn network rm "n1-$$"
nets=$(bn network ls)
grep >/dev/null " base-$$ " <<<"$nets" || die "network ls does not list base: $nets"
grep >/dev/null "n1-$$" <<<"$nets" && die "interrupted network rm was not finished"
bn network create --subnet 10.208.3.0/24 "n2-$$" >/dev/null
crash_during network.remove.datapath bn network rm "n2-$$"
nets=$(bn network ls)
grep >/dev/null "n2-$$" <<<"$nets" && die "interrupted network rm was not finished"

# Random kills in the middle of a stream of operations.
for round in $(seq 1 8); do
    (
        for i in 1 2 3; do
            bn network create --subnet "10.208.$((10 + round * 4 + i)).0/24" "r$round-$i-$$" || true
            bn sandbox create "sr$round-$i-$$" || true
            bn network connect "r$round-$i-$$" "sr$round-$i-$$" || true
        done
    ) >/dev/null 2>&1 &
    OPS=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill_agent
    wait $OPS 2>/dev/null || true
    start_agent
    check_consistent "random kill round $round"
done
assert_datapath "base-$$"

#!/usr/bin/env bash
# Where BPF cannot be used the kernel datapath takes over, visibly; forcing bpf there is an error;
# bpfnet.datapath=kernel is honoured where BPF works.
source "$(dirname "$0")/lib.sh"
start_agent --probe-disable redirect_peer
expect_fail "cannot be used on this host" bn network create --subnet 10.217.0.0/24 -o bpfnet.datapath=bpf "forced-$$"
bn network create --subnet 10.217.0.0/24 "auto-$$" >/dev/null
bn status | grep "auto-$$" | grep >/dev/null "kernel.*redirect_peer" || die "status does not explain the fallback: $(bn status)"
for s in a b; do bn sandbox create "sb$s-$$" >/dev/null; bn network connect "auto-$$" "sb$s-$$"; done
in_sb "sba-$$" ping -c 2 -W 2 10.217.0.3 >/dev/null || die "fallback network does not pass traffic"
assert_datapath_is "auto-$$" kernel
# The assertion itself fails when wrong: this kernel network is not on BPF.
if (assert_datapath_is "auto-$$" bpf) 2>/dev/null; then die "assert_datapath_is took a kernel network for bpf"; fi
[ -z "$(ls "$BPFFS_DIR/bpfnet/links" 2>/dev/null)" ] || die "BPF links exist on the kernel datapath"
stop_agent

# The same agent with BPF available: an explicit kernel network stays on the kernel datapath.
start_agent
bn network create --subnet 10.217.1.0/24 -o bpfnet.datapath=kernel "kern-$$" >/dev/null
bn status | grep "kern-$$" | grep >/dev/null "kernel.*requested" || die "status does not show the requested kernel datapath"
bn status | grep "auto-$$" | grep >/dev/null " bpf " || die "auto network did not move to BPF once the probe passed"
in_sb "sba-$$" ping -c 2 -W 2 10.217.0.3 >/dev/null || die "traffic broken after moving to BPF"
assert_datapath_is "auto-$$" bpf
stop_agent

# Without tcx (kernels before 6.6) the host's devices get cls_bpf filters too (endpoint veths always
# do); the endpoint program is swapped in place on restart.
start_agent --probe-disable tcx
bn network inspect "auto-$$" | grep >/dev/null '"Datapath": "bpf"' || die "no BPF datapath without tcx"
IFA=$(host_if_of "sba-$$" "auto-$$")
tc filter show dev "$IFA" ingress | grep >/dev/null "bpfnet_from_ep" || die "no cls_bpf filter on $IFA: $(tc filter show dev "$IFA" ingress)"
in_sb "sba-$$" ping -c 2 -W 2 10.217.0.3 >/dev/null || die "traffic broken on the cls_bpf attachment"
assert_datapath_is "auto-$$" bpf  # through the cls_bpf filter
stop_agent
start_agent --probe-disable tcx
in_sb "sba-$$" ping -c 2 -W 2 10.217.0.3 >/dev/null || die "traffic broken after restart on cls_bpf"
filters=$(tc filter show dev "$IFA" ingress | grep -c "bpfnet_from_ep" || true)
[ "$filters" = 1 ] || die "$filters endpoint programs on $IFA after a restart: $(tc filter show dev "$IFA" ingress)"
# BPF unusable since: the network goes back to the kernel datapath and no endpoint program stays
# on its veths (it would act on maps that no longer describe them).
stop_agent
start_agent --probe-disable bpf
assert_datapath_is "auto-$$" kernel
tc filter show dev "$IFA" ingress | grep >/dev/null "bpfnet_from_ep" &&
    die "an endpoint program stayed on $IFA on the kernel datapath: $(tc filter show dev "$IFA" ingress)"
in_sb "sba-$$" ping -c 2 -W 2 10.217.0.3 >/dev/null || die "traffic broken back on the kernel datapath"

# Each probe check, forced to fail, on a network created then: the checks the BPF datapath needs
# (bpf, bpffs, test_run, redirect_peer) put it on the kernel datapath, with the reason in status
# and inspect; btf is not needed (programs carry their own BTF) and tcx only changes the attachment
# (above): those stay on BPF. Either way the network passes traffic.
stop_agent
i=0
for check in bpf bpffs test_run redirect_peer btf; do
    i=$((i + 1))
    start_agent --probe-disable "$check"
    net="p$check-$$"
    bn network create --subnet "10.217.$((10 + i)).0/24" "$net" >/dev/null
    for s in x y; do bn sandbox create --network "$net" "p$s$i-$$" >/dev/null; done
    line=$(bn status | grep "^$net ")
    reason=$(bn network inspect "$net" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['BpfNet']['DatapathReason'])")
    if [ "$check" = btf ]; then
        grep -q " bpf " <<<"$line" || die "--probe-disable btf moved $net off BPF: $line"
        bn status | grep -i >/dev/null "btf" || die "status does not report the failed btf check"
    else
        grep -q " kernel " <<<"$line" || die "--probe-disable $check left $net on BPF: $line"
        grep -q "$check: disabled by --probe-disable" <<<"$reason" \
            || die "inspect does not say why $net fell back: $reason"
        ! tc filter show dev "$(host_if_of "px$i-$$" "$net")" ingress | grep >/dev/null "bpfnet_" \
            || die "BPF program on a kernel-datapath endpoint ($check)"
    fi
    in_sb "px$i-$$" ping -c 2 -W 2 "10.217.$((10 + i)).3" >/dev/null || die "no traffic with $check failed"
    if [ "$check" = btf ]; then assert_datapath_is "$net" bpf; else assert_datapath_is "$net" kernel; fi
    for s in x y; do bn sandbox rm "p$s$i-$$" >/dev/null; done
    bn network rm "$net" >/dev/null
    stop_agent
done
start_agent

#!/usr/bin/env bash
# Installs every Debian package bpfnet needs to build, test and demo. Idempotent: packages that are
# already installed are left alone, so a second run does no network I/O at all.
set -euo pipefail

# Build toolchain and libraries (see docs/architecture.md for what each one is used for).
build_pkgs=(
  build-essential cmake pkg-config
  clang llvm                       # BPF objects: clang -target bpf
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libnl-3-dev libnl-route-3-dev    # netlink: links, addresses, routes
  libnl-nf-3-dev                   # NFLOG: `bpfnet monitor` shows the nftables firewall's drops
  libnftables-dev nftables         # kernel datapath firewall/NAT rules
  nlohmann-json3-dev libboost-dev libsqlite3-dev libcli11-dev libspdlog-dev libfmt-dev
  libcurl4-openssl-dev             # etcd's v3 JSON API (cluster store for overlay networks)
  libcap-ng-dev                    # the agent drops the capabilities it does not need at start
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format
)
# Runtime tools used by the tests and the demo.
runtime_pkgs=(iproute2 iputils-ping netcat-openbsd ethtool procps kmod
              libcap2-bin  # capsh --decode: e2e_sec_capabilities reads the agent's capability sets
              systemd)     # systemd-analyze verify: e2e_sec_capabilities checks packaging/bpfnetd.service
# The cluster store the overlay tests run (each test starts its own etcd in a namespace).
cluster_pkgs=(etcd-server etcd-client)
# Docker integration tests (tests/docker): a private dockerd and a busybox image made with
# `docker import` from busybox-static; iptables for the dockerd with its defaults (which programs
# the host's firewall) and for the tests, which save and restore the host's rules around it.
docker_pkgs=(docker.io busybox-static iptables)

# Benchmarks (`make bench`): traffic generators for throughput, packet rate and latency.
bench_pkgs=(iperf3 sockperf wrk nginx-light curl gnuplot-nox)  # nginx: the server behind published ports; gnuplot: the plots

wanted=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${cluster_pkgs[@]}" "${docker_pkgs[@]}"
        "${bench_pkgs[@]}")
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#wanted[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages with daemons (etcd, docker, nginx) must not start them: tests and benchmarks run their
# own private instances, and a system dockerd would change the host's firewall (FORWARD DROP).
# policy-rc.d answering 101 is Debian's way to say "do not start services" during installs.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

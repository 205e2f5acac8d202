#!/usr/bin/env bash
# Installs, from Debian's packages, everything the tests use besides Node: the NAT lab's tools
# (iproute2, nftables, iptables, conntrack), coturn (STUN interop peer and benchmark anchor),
# OpenSSH (ssh through `traverse proxy`), tcpdump (the no-plaintext captures), curl, iperf3,
# PostgreSQL (the store suite's second engine and the replica tests; lab/postgres.ts runs its
# initdb and postgres, the service itself is not needed), haproxy (replicas behind a load
# balancer), and the compilers for native modules and the lab's helpers. Run as root: sudo bash scripts/install-test-tools.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  coturn iproute2 iptables nftables conntrack openssh-server openssh-client tcpdump curl iperf3 \
  postgresql haproxy \
  python3 make g++ gcc libc6-dev procps ca-certificates libnetfilter-queue-dev

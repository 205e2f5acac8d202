#!/usr/bin/env bash
# Installs, from Debian's packages, everything the tests use besides Node: the NAT lab's tools
# (iproute2, nftables, iptables, conntrack), coturn (STUN interop peer and benchmark anchor),
# OpenSSH (ssh through `traverse proxy`), tcpdump (the no-plaintext captures), curl, iperf3, and
# the compilers for native modules and the lab's helpers, and chromium (the dashboard's browser
# tests and benchmark drive it with playwright-core; no browser is downloaded). Run as root: sudo bash scripts/install-test-tools.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  coturn iproute2 iptables nftables conntrack openssh-server openssh-client tcpdump curl iperf3 \
  python3 make g++ gcc libc6-dev procps ca-certificates libnetfilter-queue-dev chromium

#!/usr/bin/env bash
# Installs, from Debian's packages, everything the tests use besides Node: the NAT lab's tools
# (iproute2, nftables, iptables, conntrack), miniupnpd (the routers' port mapping: PCP, NAT-PMP,
# UPnP IGD; the nftables build, whose table the lab makes itself), coturn (STUN interop peer and benchmark anchor),
# OpenSSH (ssh through `traverse proxy`), tcpdump (the no-plaintext captures), curl, iperf3, and
# the compilers for native modules and the lab's helpers; for TLS: openssl (test certificates),
# pebble (ACME test CA), haproxy (--trust-proxy behind a real proxy). Run as root: sudo bash scripts/install-test-tools.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  coturn iproute2 iptables nftables conntrack miniupnpd-nftables openssh-server openssh-client tcpdump curl iperf3 \
  python3 make g++ gcc libc6-dev procps ca-certificates libnetfilter-queue-dev \
  openssl pebble haproxy

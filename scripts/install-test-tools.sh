#!/usr/bin/env bash
# Installs, from Debian's packages, everything the tests use besides Node. Run as root:
#   sudo bash scripts/install-test-tools.sh
# - the NAT lab: iproute2, nftables, iptables, conntrack; miniupnpd-nftables (routers that map
#   ports by PCP, NAT-PMP and UPnP IGD; the lab makes its nft table itself)
# - coturn: STUN interop peer and benchmark anchor
# - OpenSSH: ssh through `traverse proxy`; tcpdump: the no-plaintext captures; curl; iperf3
# - TLS: openssl (test certificates), pebble (ACME test CA)
# - haproxy: --trust-proxy behind a real proxy, replicas behind a load balancer
# - postgresql: the store suite's second engine and the replica tests (lab/postgres.ts runs its
#   own initdb and postgres; the system service is not needed)
# - chromium: the dashboard's browser tests (driven by playwright-core, no browser download)
# - compilers for native modules and the lab's helpers
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  coturn iproute2 iptables nftables conntrack miniupnpd-nftables \
  openssh-server openssh-client tcpdump curl iperf3 \
  openssl pebble haproxy postgresql chromium \
  python3 make g++ gcc libc6-dev procps ca-certificates libnetfilter-queue-dev

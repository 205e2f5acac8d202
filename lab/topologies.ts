// Named topologies: the scenarios the product must handle, each a TopologySpec factory.
// Every one has the same internet side: a STUN host with two addresses (RFC 5780 needs an
// alternate address) and a host for the coordination server, at fixed addresses so that tests
// and humans can rely on them.
import { INTERNET, type HostSpec, type TopologySpec } from './spec.js';
import type { NatKind } from './nat.js';

export const STUN_HOST = 'stun';
export const STUN_ADDRESSES = ['203.0.113.10', '203.0.113.11'] as const;
export const COORD_HOST = 'coord';
export const COORD_ADDRESS = '203.0.113.20';

const internetSide: HostSpec[] = [
  { name: STUN_HOST, on: INTERNET, addresses: [...STUN_ADDRESSES] },
  { name: COORD_HOST, on: INTERNET, addresses: [COORD_ADDRESS] },
];

/** One host "client" behind one router "nat" of the given kind (LAN 192.168.1.0/24). */
export function behindNat(kind: NatKind): TopologySpec {
  return {
    routers: [{ name: 'nat', nat: kind, on: INTERNET, lan: '192.168.1.0/24' }],
    hosts: [...internetSide, { name: 'client', on: 'nat' }],
  };
}

/** "client" behind router "rclient" and "agent" behind router "ragent": one NAT each. */
export function pairOfNats(clientKind: NatKind, agentKind: NatKind): TopologySpec {
  return {
    routers: [
      { name: 'rclient', nat: clientKind, on: INTERNET, lan: '192.168.1.0/24' },
      { name: 'ragent', nat: agentKind, on: INTERNET, lan: '10.1.0.0/24' },
    ],
    hosts: [...internetSide, { name: 'client', on: 'rclient' }, { name: 'agent', on: 'ragent' }],
  };
}

/** Which IP families a side of a lab has: its router's LAN and its host. */
export type Stack = 'dual-stack' | 'ipv6-only' | 'ipv4-only';

/**
 * pairOfNats with IPv6: the internet is dual-stack (2001:db8::/64 beside 203.0.113.0/24), and each
 * side's router gives its LAN an IPv6 /64 (client 2001:db8:1::/64, agent 2001:db8:2::/64) behind a
 * stateful firewall and no NAT66, unless that side is IPv4-only. An IPv6-only host has no IPv4
 * address at all.
 */
export function pairOfNats6(clientKind: NatKind, agentKind: NatKind, clientStack: Stack, agentStack: Stack): TopologySpec {
  const lan6 = (stack: Stack, cidr: string): { lan6?: string } => (stack === 'ipv4-only' ? {} : { lan6: cidr });
  const host = (name: string, on: string, stack: Stack): HostSpec => ({ name, on, ...(stack === 'ipv6-only' ? { ipv4: false } : {}) });
  return {
    ipv6: true,
    routers: [
      { name: 'rclient', nat: clientKind, on: INTERNET, lan: '192.168.1.0/24', ...lan6(clientStack, '2001:db8:1::/64') },
      { name: 'ragent', nat: agentKind, on: INTERNET, lan: '10.1.0.0/24', ...lan6(agentStack, '2001:db8:2::/64') },
    ],
    hosts: [...internetSide, host('client', 'rclient', clientStack), host('agent', 'ragent', agentStack)],
  };
}

/** Short node-name stems per kind (node names are at most 10 characters). */
export const KIND_STEM: Readonly<Record<NatKind, string>> = {
  easy: 'easy',
  'full-cone': 'full',
  'address-dependent': 'adf',
  hard: 'hard',
  'udp-blocked': 'noudp',
};

/** One router per NAT kind ("r<stem>") with one host each ("h<stem>"), sharing one STUN server. */
export function allKinds(kinds: readonly NatKind[]): TopologySpec {
  return {
    routers: kinds.map((k, i) => ({ name: `r${KIND_STEM[k]}`, nat: k, on: INTERNET, lan: `192.168.${10 + i}.0/24` })),
    hosts: [...internetSide, ...kinds.map((k) => ({ name: `h${KIND_STEM[k]}`, on: `r${KIND_STEM[k]}` }))],
  };
}

/**
 * Double NAT: "client" behind a home router "home" (easy), whose WAN sits in a carrier's
 * shared address space (100.64.0.0/10, RFC 6598) behind the carrier-grade NAT "cgn" (easy).
 */
export function doubleNat(): TopologySpec {
  return {
    routers: [
      { name: 'cgn', nat: 'easy', on: INTERNET, lan: '100.64.0.0/24' },
      { name: 'home', nat: 'easy', on: 'cgn', lan: '192.168.1.0/24' },
    ],
    hosts: [...internetSide, { name: 'client', on: 'home' }],
  };
}

/**
 * The seed's corporate case: the developer's VPN exit node "vpn" (client pool 10.8.0.0/24,
 * "client" in it) and a Kubernetes node "k8s" (pod network 10.244.1.0/24, "agent" pod in it)
 * both on the corporate LAN 10.10.0.0/24 behind ONE corporate NAT "corp" (easy). An internal
 * STUN server "istun" (10.10.0.10 and .11) sits on the corporate LAN. VPN concentrators and pod
 * networks SNAT their clients, so "vpn" and "k8s" are easy NATs themselves. With
 * `hairpin: false` the peers cannot reach each other through corp's public address, only
 * through the corporate-LAN addresses that the internal STUN server reveals.
 */
export function corporate(hairpin: boolean): TopologySpec {
  return {
    routers: [
      { name: 'corp', nat: 'easy', hairpin, on: INTERNET, lan: '10.10.0.0/24' },
      { name: 'vpn', nat: 'easy', on: 'corp', lan: '10.8.0.0/24' },
      { name: 'k8s', nat: 'easy', on: 'corp', lan: '10.244.1.0/24' },
    ],
    hosts: [
      ...internetSide,
      { name: 'istun', on: 'corp', addresses: ['10.10.0.10', '10.10.0.11'] },
      { name: 'client', on: 'vpn' },
      { name: 'agent', on: 'k8s' },
    ],
  };
}

/** "client" and "agent" on one LAN behind one router "home" (easy). */
export function sameLan(): TopologySpec {
  return {
    routers: [{ name: 'home', nat: 'easy', on: INTERNET, lan: '192.168.1.0/24' }],
    hosts: [...internetSide, { name: 'client', on: 'home' }, { name: 'agent', on: 'home' }],
  };
}

/** Named topologies for the CLI and for tests that want one by name. */
export const TOPOLOGIES: Readonly<Record<string, () => TopologySpec>> = {
  easy: () => behindNat('easy'),
  'full-cone': () => behindNat('full-cone'),
  'address-dependent': () => behindNat('address-dependent'),
  hard: () => behindNat('hard'),
  'udp-blocked': () => behindNat('udp-blocked'),
  'all-kinds': () => allKinds(['easy', 'full-cone', 'address-dependent', 'hard', 'udp-blocked']),
  'double-nat': doubleNat,
  corporate: () => corporate(false),
  'corporate-hairpin': () => corporate(true),
  'same-lan': sameLan,
  'hard-dual-stack': () => pairOfNats6('hard', 'hard', 'dual-stack', 'dual-stack'),
  'ipv6-only-client': () => pairOfNats6('easy', 'easy', 'ipv6-only', 'dual-stack'),
};

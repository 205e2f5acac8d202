// The connectivity matrix of the peer engine: who sits behind what, and which path
// `traverse ping` must end on. Shared by the lab test and the matrix benchmark.
import { INTERNET, type TopologySpec } from './spec.js';
import { corporate, pairOfNats, pairOfNats6, sameLan, COORD_ADDRESS, COORD_HOST, STUN_ADDRESSES, STUN_HOST } from './topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from './stun-servers.js';
import { coordinatorUrlFor, createToken, runPing, startAgent, startCoordinator, type PingOutcome } from './peers.js';
import { formatEndpoint } from '../src/net/endpoint.js';
import type { Lab } from './lab.js';

export interface MatrixCell {
  readonly name: string;
  readonly agentSide: string;
  readonly clientSide: string;
  readonly topology: () => TopologySpec;
  /** STUN servers the coordination server publishes: host names in the lab, on the traverse STUN port. */
  readonly stunHosts: readonly string[];
  readonly serverArgs?: readonly string[];
  readonly pingArgs?: readonly string[];
  readonly expect: 'direct' | 'relay';
  /** For direct cells: the endpoint must be one of this host's... (checked by prefix). */
  readonly endpointPrefix?: string;
  /** For relay cells: the reason must match. */
  readonly reason?: RegExp;
}

/** Agent behind a double NAT (easy home router behind an easy carrier-grade NAT), client behind an easy NAT. */
function doubleNatAgent(): TopologySpec {
  return {
    routers: [
      { name: 'cgn', nat: 'easy', on: INTERNET, lan: '100.64.0.0/24' },
      { name: 'home', nat: 'easy', on: 'cgn', lan: '10.1.0.0/24' },
      { name: 'rclient', nat: 'easy', on: INTERNET, lan: '192.168.1.0/24' },
    ],
    hosts: [
      { name: STUN_HOST, on: INTERNET, addresses: [...STUN_ADDRESSES] },
      { name: COORD_HOST, on: INTERNET, addresses: [COORD_ADDRESS] },
      { name: 'agent', on: 'home' },
      { name: 'client', on: 'rclient' },
    ],
  };
}

const PUBLIC = [STUN_HOST];

export const MATRIX: readonly MatrixCell[] = [
  { name: 'same LAN', agentSide: 'same LAN as the client', clientSide: '', topology: sameLan, stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '192.168.1.' },
  { name: 'easy / easy', agentSide: 'EIM, port-restricted', clientSide: 'EIM, port-restricted', topology: () => pairOfNats('easy', 'easy'), stunHosts: PUBLIC, expect: 'direct' },
  { name: 'full cone / hard', agentSide: 'EIM, endpoint-independent filtering', clientSide: 'endpoint-dependent mapping (hard)', topology: () => pairOfNats('hard', 'full-cone'), stunHosts: PUBLIC, expect: 'direct' },
  { name: 'hard / full cone', agentSide: 'hard', clientSide: 'EIM, endpoint-independent filtering', topology: () => pairOfNats('full-cone', 'hard'), stunHosts: PUBLIC, expect: 'direct' },
  { name: 'address-dependent / hard', agentSide: 'EIM, address-dependent filtering', clientSide: 'hard', topology: () => pairOfNats('hard', 'address-dependent'), stunHosts: PUBLIC, expect: 'direct' },
  // Ordinary hole punching cannot work here; port prediction (birthday punching) does, after
  // the client's netcheck has found its NAT hard: hence the longer ping.
  { name: 'easy / hard (port prediction)', agentSide: 'EIM, port-restricted', clientSide: 'hard', topology: () => pairOfNats('hard', 'easy'), stunHosts: PUBLIC, pingArgs: ['-n', '20'], expect: 'direct' },
  { name: 'hard / easy (port prediction)', agentSide: 'hard', clientSide: 'EIM, port-restricted', topology: () => pairOfNats('easy', 'hard'), stunHosts: PUBLIC, pingArgs: ['-n', '20'], expect: 'direct' },
  { name: 'hard / hard', agentSide: 'hard', clientSide: 'hard', topology: () => pairOfNats('hard', 'hard'), stunHosts: PUBLIC, expect: 'relay', reason: /both NATs are hard/ },
  { name: 'easy / UDP blocked', agentSide: 'EIM, port-restricted', clientSide: 'UDP blocked', topology: () => pairOfNats('udp-blocked', 'easy'), stunHosts: PUBLIC, expect: 'relay', reason: /UDP is blocked/ },
  { name: 'double NAT / easy', agentSide: 'double NAT (port-restricted behind a carrier-grade NAT)', clientSide: 'EIM, port-restricted', topology: doubleNatAgent, stunHosts: PUBLIC, expect: 'direct' },
  { name: 'corporate, no hairpin, public STUN', agentSide: 'corporate cluster, no hairpin, public STUN only', clientSide: 'corporate VPN client', topology: () => corporate(false), stunHosts: PUBLIC, expect: 'relay', reason: /hairpin.*internal STUN server/ },
  { name: 'corporate, no hairpin, internal STUN', agentSide: 'corporate cluster, no hairpin, internal STUN server', clientSide: 'corporate VPN client', topology: () => corporate(false), stunHosts: ['istun', STUN_HOST], expect: 'direct', endpointPrefix: '10.10.0.' },
  { name: 'corporate, hairpin, public STUN', agentSide: 'corporate cluster, hairpinning router, public STUN only', clientSide: 'corporate VPN client', topology: () => corporate(true), stunHosts: PUBLIC, expect: 'direct' },
  { name: 'easy / easy, client --disable-direct', agentSide: 'EIM, port-restricted', clientSide: 'EIM, port-restricted, client --disable-direct', topology: () => pairOfNats('easy', 'easy'), stunHosts: PUBLIC, pingArgs: ['--disable-direct'], expect: 'relay', reason: /disabled on this side/ },
  { name: 'easy / easy, server --block-direct', agentSide: 'EIM, port-restricted', clientSide: 'EIM, port-restricted, server --block-direct', topology: () => pairOfNats('easy', 'easy'), stunHosts: PUBLIC, serverArgs: ['--block-direct'], expect: 'relay', reason: /blocks direct/ },
  // IPv6 (no NAT66; each router a stateful firewall that lets in only replies to what its host sent).
  { name: 'hard / hard, both with IPv6', agentSide: 'hard IPv4 NAT, IPv6 behind a stateful firewall', clientSide: 'the same', topology: () => pairOfNats6('hard', 'hard', 'dual-stack', 'dual-stack'), stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '[2001:db8:2::' },
  { name: 'dual-stack / IPv6-only', agentSide: 'easy IPv4 NAT, IPv6 behind a stateful firewall', clientSide: 'IPv6 only, stateful firewall', topology: () => pairOfNats6('easy', 'easy', 'ipv6-only', 'dual-stack'), stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '[2001:db8:2::' },
  { name: 'IPv4-only / IPv6-only', agentSide: 'easy IPv4 NAT, no IPv6', clientSide: 'IPv6 only, stateful firewall', topology: () => pairOfNats6('easy', 'easy', 'ipv6-only', 'ipv4-only'), stunHosts: PUBLIC, expect: 'relay', reason: /no address family in common/ },
];

export const STUN_PORT_IN_MATRIX = TRAVERSE_STUN_PORT;

/** The pings each cell runs by default: enough for the burst (3.2 s) to end while pinging. */
export const CELL_PING_ARGS: readonly string[] = ['-n', '8', '--interval', '400'];

/**
 * Runs one cell in a lab built from `cell.topology()`: STUN servers, the coordination server, the
 * agent, then `traverse ping dev-box --json` from the client. Returns what ping saw.
 */
export async function runCell(
  cell: MatrixCell,
  lab: Lab,
  pingArgs: readonly string[] = CELL_PING_ARGS,
  /** Runs after the ping, while the server and the agent are still up (the matrix benchmark's lane probe). */
  afterPing?: (peers: { coordUrl: string; clientToken: string }) => Promise<void>,
): Promise<PingOutcome> {
  // A STUN host with IPv6 addresses runs a second server on those (RFC 5780 pairs one family).
  const families = (h: string): (4 | 6)[] => (lab.node(h).addresses6.length >= 2 ? [4, 6] : [4]);
  await Promise.all(cell.stunHosts.flatMap((h) => families(h).map((f) => startTraverseStun(lab, h, STUN_PORT_IN_MATRIX, f))));
  const stunArgs = cell.stunHosts.flatMap((h) =>
    families(h).flatMap((f) => ['--stun', formatEndpoint(f === 6 ? lab.node(h).addresses6[0]! : lab.node(h).addresses[0]!, STUN_PORT_IN_MATRIX)]),
  );
  const coord = await startCoordinator(lab, [...stunArgs, ...(cell.serverArgs ?? [])]);
  const agentToken = await createToken(coord.dataDir, ['--agent', 'dev-box']);
  const clientToken = await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']);
  await startAgent(lab, 'agent', coordinatorUrlFor(lab, 'agent', coord), agentToken);
  const clientUrl = coordinatorUrlFor(lab, 'client', coord);
  const outcome = await runPing(lab, 'client', clientUrl, clientToken, 'dev-box', [...pingArgs, ...(cell.pingArgs ?? [])]);
  await afterPing?.({ coordUrl: clientUrl, clientToken });
  return outcome;
}

// The connectivity matrix of the peer engine: who sits behind what, and which path
// `traverse ping` must end on. Shared by the lab test and the matrix benchmark.
import { INTERNET, type TopologySpec } from './spec.js';
import { corporate, pairOfNats, pairOfNats6, sameLan, COORD_ADDRESS, COORD_HOST, STUN_ADDRESSES, STUN_HOST } from './topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from './stun-servers.js';
import type { NatKind } from './nat.js';
import { coordinatorUrlFor, createToken, runPing, startAgent, startCoordinator, type PingOutcome } from './peers.js';
import { formatEndpoint } from '../src/net/endpoint.js';
import type { Lab } from './lab.js';
import { miniupnpdMappings } from './miniupnpd.js';
import type { PortMappingProtocols } from './spec.js';

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
  /**
   * For direct cells: what carries the path (default UDP). TCP: no UDP path exists, a TCP lane to
   * the agent's vouched IP opened instead, and the pings themselves still cross the relay.
   */
  readonly transport?: 'udp' | 'tcp';
  /** For direct cells: the endpoint must be one of this host's... (checked by prefix). */
  readonly endpointPrefix?: string;
  /** For relay cells: the reason must match. */
  readonly reason?: RegExp;
  /** For direct cells: the kind of the agent's candidate the client's path ended on. */
  readonly winner?: CandidateKind;
}

/**
 * What the client's final path to the agent rides on: one of the agent's own addresses
 * ("local"), a port mapping ("mapped": the agent's router mapped the endpoint, or the path came
 * in through a port the client's router mapped, as when both sides map and the agent's probe
 * arrives first), or any other public address: STUN-reflexive, seen by the peer, or found by
 * port prediction ("reflexive").
 */
export type CandidateKind = 'local' | 'mapped' | 'reflexive';

export interface CellOutcome extends PingOutcome {
  /** The kind of the candidate the ping's final path used; null when it ended relayed. */
  readonly winner: CandidateKind | null;
}

/** Routers above a host (nearest first) that run miniupnpd, with the UDP mappings they hold for it. */
async function mappingsFor(lab: Lab, host: string): Promise<{ router: string; wan: string; ports: number[] }[]> {
  const node = lab.node(host);
  const out: { router: string; wan: string; ports: number[] }[] = [];
  for (let n = node; n.network !== INTERNET; ) {
    const r = lab.router(n.network);
    if (r.router.portMapping) {
      const maps = await miniupnpdMappings(lab, r.name);
      out.push({ router: r.name, wan: r.address, ports: maps.filter((m) => m.internal.startsWith(`${node.address}:`)).map((m) => m.externalPort) });
    }
    n = r;
  }
  return out;
}

/** Classifies the client's path endpoint (while both peers still run, so the mappings are there). */
export async function candidateKind(lab: Lab, endpoint: string, agent = 'agent', client = 'client'): Promise<CandidateKind> {
  const i = endpoint.lastIndexOf(':');
  const ip = endpoint.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(endpoint.slice(i + 1));
  // IPv6 has no NAT in the lab: an agent's IPv6 address is its interface's own.
  if (lab.node(agent).addresses.includes(ip) || lab.node(agent).addresses6.includes(ip)) return 'local';
  if ((await mappingsFor(lab, agent)).some((m) => m.wan === ip && m.ports.includes(port))) return 'mapped';
  // The client's own mapping: a flow that came in from the endpoint and was DNATed to the client
  // (on a router running miniupnpd, only a mapping does that). The client has deleted the mapping
  // on exit by now; the flow it made remains.
  const clientAddr = lab.node(client).address;
  for (const m of await mappingsFor(lab, client)) {
    const flows = await lab.conntrackList(m.router, 'udp');
    const inbound = new RegExp(`src=${ip.replace(/\./g, '\\.')} dst=${m.wan.replace(/\./g, '\\.')} sport=${port} dport=\\d+ .*src=${clientAddr.replace(/\./g, '\\.')} dst=${ip.replace(/\./g, '\\.')} sport=\\d+ dport=${port} `);
    if (flows.some((f) => inbound.test(f))) return 'mapped';
  }
  return 'reflexive';
}

/** "client" behind router "rclient" and "agent" behind "ragent", each with its NAT kind and miniupnpd protocols. */
function mappingPair(
  client: { nat: NatKind; portMapping?: PortMappingProtocols },
  agent: { nat: NatKind; portMapping?: PortMappingProtocols },
): TopologySpec {
  const spec = pairOfNats(client.nat, agent.nat);
  return {
    ...spec,
    routers: (spec.routers ?? []).map((r) => {
      const pm = r.name === 'rclient' ? client.portMapping : agent.portMapping;
      return pm ? { ...r, portMapping: pm } : r;
    }),
  };
}

const ONLY_PCP: PortMappingProtocols = { pcp: true, natpmp: false, upnp: false };
const ONLY_NATPMP: PortMappingProtocols = { pcp: false, natpmp: true, upnp: false };
const ONLY_UPNP: PortMappingProtocols = { pcp: false, natpmp: false, upnp: true };
const ALL_MAPPING: PortMappingProtocols = { pcp: true, natpmp: true, upnp: true };

/**
 * The agent's home router (easy, all three protocols) sits behind a carrier-grade NAT: it maps,
 * but its external address is the carrier's 100.64/10 one, so the mapping is not trusted.
 */
function mappingBehindCarrier(): TopologySpec {
  const spec = doubleNatAgent();
  return { ...spec, routers: (spec.routers ?? []).map((r) => (r.name === 'home' ? { ...r, portMapping: ALL_MAPPING } : r)) };
}

/**
 * IPv6 only on both sides: the client behind a NAT66 that maps per destination (so neither its
 * own address nor its STUN-seen one takes a peer's packets, and it cannot be reached first), the
 * agent behind its router's stateful firewall, which opens a pinhole by PCP when `agentPcp`.
 * Without the pinhole nobody can send first, and simultaneous sending cannot help either: the
 * agent never learns the port the client's NAT66 picks towards it.
 */
export function pinholePair(agentPcp: boolean): TopologySpec {
  const spec = pairOfNats6('hard', 'hard', 'ipv6-only', 'ipv6-only');
  return {
    ...spec,
    routers: (spec.routers ?? []).map((r) => (r.name === 'rclient' ? { ...r, nat66: true } : agentPcp ? { ...r, portMapping: ONLY_PCP } : r)),
  };
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
  { name: 'easy / UDP blocked', agentSide: 'EIM, port-restricted', clientSide: 'UDP blocked', topology: () => pairOfNats('udp-blocked', 'easy'), stunHosts: PUBLIC, expect: 'direct', transport: 'tcp' },
  { name: 'double NAT / easy', agentSide: 'double NAT (port-restricted behind a carrier-grade NAT)', clientSide: 'EIM, port-restricted', topology: doubleNatAgent, stunHosts: PUBLIC, expect: 'direct' },
  { name: 'corporate, no hairpin, public STUN', agentSide: 'corporate cluster, no hairpin, public STUN only', clientSide: 'corporate VPN client', topology: () => corporate(false), stunHosts: PUBLIC, expect: 'relay', reason: /hairpin.*internal STUN server/ },
  { name: 'corporate, no hairpin, internal STUN', agentSide: 'corporate cluster, no hairpin, internal STUN server', clientSide: 'corporate VPN client', topology: () => corporate(false), stunHosts: ['istun', STUN_HOST], expect: 'direct', endpointPrefix: '10.10.0.' },
  { name: 'corporate, hairpin, public STUN', agentSide: 'corporate cluster, hairpinning router, public STUN only', clientSide: 'corporate VPN client', topology: () => corporate(true), stunHosts: PUBLIC, expect: 'direct' },
  { name: 'easy / easy, client --disable-direct', agentSide: 'EIM, port-restricted', clientSide: 'EIM, port-restricted, client --disable-direct', topology: () => pairOfNats('easy', 'easy'), stunHosts: PUBLIC, pingArgs: ['--disable-direct'], expect: 'relay', reason: /disabled on this side/ },
  // Port mapping (PCP, NAT-PMP, UPnP IGD by miniupnpd on the router): cells that hole punching
  // alone cannot cross, or crosses only by port prediction, go direct through the mapped port.
  { name: 'hard+PCP / hard', agentSide: 'hard, router maps by PCP', clientSide: 'hard', topology: () => mappingPair({ nat: 'hard' }, { nat: 'hard', portMapping: ONLY_PCP }), stunHosts: PUBLIC, expect: 'direct', winner: 'mapped' },
  { name: 'hard+UPnP / hard+UPnP', agentSide: 'hard, router maps by UPnP IGD', clientSide: 'hard, router maps by UPnP IGD', topology: () => mappingPair({ nat: 'hard', portMapping: ONLY_UPNP }, { nat: 'hard', portMapping: ONLY_UPNP }), stunHosts: PUBLIC, expect: 'direct', winner: 'mapped' },
  { name: 'hard+NAT-PMP / easy', agentSide: 'hard, router maps by NAT-PMP', clientSide: 'EIM, port-restricted', topology: () => mappingPair({ nat: 'easy' }, { nat: 'hard', portMapping: ONLY_NATPMP }), stunHosts: PUBLIC, expect: 'direct', winner: 'mapped' },
  { name: 'mapping behind a carrier NAT / easy', agentSide: 'router maps (all three) but sits behind a carrier-grade NAT', clientSide: 'EIM, port-restricted', topology: mappingBehindCarrier, stunHosts: PUBLIC, expect: 'direct', winner: 'reflexive' },
  { name: 'easy / easy, server --block-direct', agentSide: 'EIM, port-restricted', clientSide: 'EIM, port-restricted, server --block-direct', topology: () => pairOfNats('easy', 'easy'), stunHosts: PUBLIC, serverArgs: ['--block-direct'], expect: 'relay', reason: /blocks direct/ },
  // IPv6 (no NAT66; each router a stateful firewall that lets in only replies to what its host sent).
  { name: 'hard / hard, both with IPv6', agentSide: 'hard IPv4 NAT, IPv6 behind a stateful firewall', clientSide: 'the same', topology: () => pairOfNats6('hard', 'hard', 'dual-stack', 'dual-stack'), stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '[2001:db8:2::' },
  { name: 'dual-stack / IPv6-only', agentSide: 'easy IPv4 NAT, IPv6 behind a stateful firewall', clientSide: 'IPv6 only, stateful firewall', topology: () => pairOfNats6('easy', 'easy', 'ipv6-only', 'dual-stack'), stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '[2001:db8:2::' },
  // Beyond hole punching: the agent's router opens its IPv6 firewall by PCP (test/lab/pinhole.test.ts runs it without too).
  { name: 'IPv6 pinhole / NAT66', agentSide: 'IPv6 only, stateful firewall, router opens a pinhole by PCP', clientSide: 'IPv6 only, NAT66 mapping per destination', topology: () => pinholePair(true), stunHosts: PUBLIC, expect: 'direct', endpointPrefix: '[2001:db8:2::', winner: 'local' },
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
): Promise<CellOutcome> {
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
  // While the agent (and its mapping) is still there.
  const winner = outcome.summary.path === 'direct' && outcome.summary.endpoint ? await candidateKind(lab, outcome.summary.endpoint) : null;
  await afterPing?.({ coordUrl: clientUrl, clientToken });
  return { ...outcome, winner };
}

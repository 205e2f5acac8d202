// The declarative description of a topology and its address plan. Pure: no I/O, so the plan
// (who gets which address, which interface) is unit-tested without root.
import { checkNodeName } from './names.js';
import type { NatKind } from './nat.js';
import { planIPv6, type PlannedIPv6 } from './ipv6-plan.js';

/** The "internet": one L2 segment of TEST-NET-3 addresses (RFC 5737), never routed anywhere real. */
export const INTERNET = 'internet';
export const INTERNET_SUBNET = '203.0.113.0/24';

export interface RouterSpec {
  readonly name: string;
  readonly nat: NatKind;
  /** Hairpinning on or off (default off). */
  readonly hairpin?: boolean;
  /** Where its WAN side attaches: the internet or another router's LAN (double NAT). */
  readonly on: string;
  /** Fixed WAN address; default the next free one on `on`. */
  readonly address?: string;
  /** LAN subnet, e.g. "192.168.1.0/24"; the router takes the first address (.1). */
  readonly lan: string;
  /** IPv6 LAN "2001:db8:N::/64" (needs `ipv6` on the topology): no NAT66, a stateful firewall. */
  readonly lan6?: string;
  /** Runs miniupnpd with these protocols switched on (lab/miniupnpd.ts); default none. */
  readonly portMapping?: PortMappingProtocols;
}

/** Which port-mapping protocols a lab router's miniupnpd answers. */
export interface PortMappingProtocols {
  readonly pcp: boolean;
  readonly natpmp: boolean;
  readonly upnp: boolean;
}

export interface HostSpec {
  readonly name: string;
  readonly on: string;
  /** Fixed addresses (a STUN server for RFC 5780 needs two); default one free address. */
  readonly addresses?: readonly string[];
  /** False: an IPv6-only host (its router needs `lan6`). Default true. */
  readonly ipv4?: boolean;
}

export interface TopologySpec {
  readonly routers?: readonly RouterSpec[];
  readonly hosts: readonly HostSpec[];
  /** IPv6 on the internet segment (2001:db8::/64) and on routers with `lan6` (ipv6-plan.ts). */
  readonly ipv6?: boolean;
}

export interface PlannedLink {
  /** Interface in the node's own namespace ("eth0" on hosts, "wan" on routers). */
  readonly ifName: string;
  /** Bridge port in the network's namespace (internet namespace or upstream router). */
  readonly portName: string;
  readonly network: string;
  readonly prefixLen: number;
  /** Next hop for the default route; undefined on the internet (everything is on-link). */
  readonly gateway: string | undefined;
}

export interface PlannedNode {
  readonly name: string;
  readonly kind: 'host' | 'router';
  /** IPv4 addresses; none on an IPv6-only host. */
  readonly addresses: readonly string[];
  readonly uplink: PlannedLink;
  /** IPv6, when the topology has it (ipv6-plan.ts). */
  readonly ipv6?: PlannedIPv6;
  /** Routers only. */
  readonly router?: {
    readonly nat: NatKind;
    readonly hairpin: boolean;
    readonly lanAddress: string;
    readonly lanSubnet: string;
    readonly lanPrefixLen: number;
    readonly portMapping: PortMappingProtocols | null;
  };
}

export interface Plan {
  /** Routers first, in an order where each router's upstream comes before it. */
  readonly nodes: readonly PlannedNode[];
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`"${ip}" is not an IPv4 address`);
  }
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export interface Subnet {
  readonly base: number;
  readonly prefixLen: number;
}

export function parseSubnet(cidr: string): Subnet {
  const [ip, len] = cidr.split('/');
  const prefixLen = Number(len);
  if (ip === undefined || !Number.isInteger(prefixLen) || prefixLen < 8 || prefixLen > 30) {
    throw new Error(`"${cidr}" is not an IPv4 subnet between /8 and /30`);
  }
  const size = 2 ** (32 - prefixLen);
  return { base: ipToInt(ip) - (ipToInt(ip) % size), prefixLen };
}

function contains(s: Subnet, ip: string): boolean {
  const n = ipToInt(ip);
  return n > s.base && n < s.base + 2 ** (32 - s.prefixLen) - 1;
}

/** Checks a spec and assigns every address and interface name. Throws on any inconsistency. */
export function planTopology(spec: TopologySpec): Plan {
  const routers = spec.routers ?? [];
  const all = [...routers.map((r) => r.name), ...spec.hosts.map((h) => h.name)];
  for (const n of all) checkNodeName(n);
  if (all.includes('inet')) throw new Error('"inet" is reserved for the internet namespace');
  const dup = all.find((n, i) => all.indexOf(n) !== i);
  if (dup) throw new Error(`lab node name "${dup}" is used twice`);

  const networks = new Map<string, { subnet: Subnet; gateway: string | undefined; used: Set<string>; ports: number }>();
  networks.set(INTERNET, { subnet: parseSubnet(INTERNET_SUBNET), gateway: undefined, used: new Set(), ports: 0 });

  // Order routers so that each one's upstream network exists before it is planned.
  const pending = [...routers];
  const orderedRouters: RouterSpec[] = [];
  while (pending.length > 0) {
    const i = pending.findIndex((r) => r.on === INTERNET || orderedRouters.some((o) => o.name === r.on));
    if (i < 0) throw new Error(`router "${pending[0]?.name}" sits on unknown network "${pending[0]?.on}"`);
    orderedRouters.push(...pending.splice(i, 1));
  }

  // Reserve fixed addresses first so automatic ones never take them.
  const fixed: Array<[string, string]> = [];
  for (const r of routers) if (r.address) fixed.push([r.on, r.address]);
  for (const h of spec.hosts) for (const a of h.addresses ?? []) fixed.push([h.on, a]);

  const nodes: PlannedNode[] = [];
  const attach = (name: string, on: string, kind: 'host' | 'router', want: readonly string[] | undefined): { link: PlannedLink; addresses: string[] } => {
    const net = networks.get(on);
    if (!net) throw new Error(`lab node "${name}" sits on unknown network "${on}"`);
    let addresses: string[];
    if (want && want.length > 0) {
      for (const a of want) {
        if (!contains(net.subnet, a)) throw new Error(`address ${a} of "${name}" is outside network "${on}"`);
      }
      addresses = [...want];
    } else {
      let n = net.subnet.base + 2;
      const reserved = new Set([...net.used, ...fixed.filter(([o]) => o === on).map(([, a]) => a)]);
      while (reserved.has(intToIp(n)) || intToIp(n) === net.gateway) n++;
      const ip = intToIp(n);
      if (!contains(net.subnet, ip)) throw new Error(`network "${on}" is full`);
      addresses = [ip];
    }
    for (const a of addresses) net.used.add(a);
    net.ports++;
    const link: PlannedLink = {
      ifName: kind === 'router' ? 'wan' : 'eth0',
      // Bridge ports are unique within the network's namespace: "p-" + node name <= 12 chars.
      portName: `p-${name}`,
      network: on,
      prefixLen: net.subnet.prefixLen,
      gateway: net.gateway,
    };
    return { link, addresses };
  };

  for (const r of orderedRouters) {
    const { link, addresses } = attach(r.name, r.on, 'router', r.address ? [r.address] : undefined);
    const lan = parseSubnet(r.lan);
    const lanAddress = intToIp(lan.base + 1);
    networks.set(r.name, { subnet: lan, gateway: lanAddress, used: new Set([lanAddress]), ports: 0 });
    nodes.push({
      name: r.name,
      kind: 'router',
      addresses,
      uplink: link,
      router: { nat: r.nat, hairpin: r.hairpin ?? false, portMapping: r.portMapping ?? null, lanAddress, lanSubnet: `${intToIp(lan.base)}/${lan.prefixLen}`, lanPrefixLen: lan.prefixLen },
    });
  }
  for (const h of spec.hosts) {
    const { link, addresses } = attach(h.name, h.on, 'host', h.addresses);
    nodes.push({ name: h.name, kind: 'host', addresses: h.ipv4 === false ? [] : addresses, uplink: link });
  }
  const v6 = planIPv6(spec, nodes);
  return { nodes: nodes.map((n) => (v6.has(n.name) ? { ...n, ipv6: v6.get(n.name)! } : n)) };
}

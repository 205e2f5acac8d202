// IPv6 in the lab's address plan: the internet segment 2001:db8::/64 and each IPv6 router's LAN
// prefix (RFC 3849 documentation space, which exists only inside the lab's namespaces). There
// is no NAT66: a LAN host's IPv6 address is the address the internet sees, and the router in
// front of it is only a stateful firewall (nat.ts, firewall6Ruleset). Pure, like spec.ts.
import { isIPv6 } from 'node:net';
import { INTERNET, type PlannedNode, type TopologySpec } from './spec.js';

/** The internet segment's IPv6 prefix (/64); a node there gets PREFIX + the last octet of its IPv4 address. */
export const INTERNET6_PREFIX = '2001:db8::';
export const INTERNET6_SUBNET = '2001:db8::/64';

export interface PlannedIPv6 {
  /** IPv6 addresses on the node's uplink (a router's WAN). */
  readonly addresses: readonly string[];
  /** Next hop for the IPv6 default route; undefined on the internet (on-link). */
  readonly gateway: string | undefined;
  /** Routers: their own address on their LAN (the hosts' gateway), and the LAN's /64. */
  readonly lanAddress?: string;
  readonly lanSubnet?: string;
}

/** "2001:db8:1::/64" to its prefix "2001:db8:1::"; throws unless it is a /64 in 2001:db8::/32 other than the internet's. */
export function parseLan6(cidr: string): string {
  const m = /^(2001:db8:[0-9a-f]{1,4}::)\/64$/i.exec(cidr);
  if (!m || !isIPv6(`${m[1]}1`)) throw new Error(`"${cidr}" is not an IPv6 LAN of the form 2001:db8:N::/64`);
  const prefix = m[1]!.toLowerCase();
  if (prefix === '2001:db8:0::' || prefix === INTERNET6_PREFIX) throw new Error(`"${cidr}" is the lab internet's IPv6 prefix`);
  return prefix;
}

/**
 * IPv6 for the nodes of a plan, or nothing when the spec has no `ipv6`. Internet nodes get
 * 2001:db8::<last octet of their IPv4 address> (the STUN host's 203.0.113.10 becomes
 * 2001:db8::10); a router with `lan6` takes ::1 on its LAN and gives its hosts ::2, ::3... in
 * order. Routers without `lan6` (and their hosts) stay IPv4-only.
 */
export function planIPv6(spec: TopologySpec, nodes: readonly PlannedNode[]): Map<string, PlannedIPv6> {
  const out = new Map<string, PlannedIPv6>();
  const routers = new Map((spec.routers ?? []).map((r) => [r.name, r]));
  const v6Only = new Set(spec.hosts.filter((h) => h.ipv4 === false).map((h) => h.name));
  if (!spec.ipv6) {
    if (v6Only.size > 0 || [...routers.values()].some((r) => r.lan6)) throw new Error('lan6 and ipv4: false need ipv6: true on the topology');
    return out;
  }
  const lanPrefix = new Map<string, string>();
  const seen = new Set<string>();
  for (const r of routers.values()) {
    if (!r.lan6) continue;
    if (r.on !== INTERNET) throw new Error(`router "${r.name}": an IPv6 LAN needs the router on the internet (no NAT66 behind another router)`);
    const p = parseLan6(r.lan6);
    if (seen.has(p)) throw new Error(`IPv6 LAN ${r.lan6} is used twice`);
    seen.add(p);
    lanPrefix.set(r.name, p);
  }
  const nextHost = new Map<string, number>();
  for (const n of nodes) {
    if (n.uplink.network === INTERNET) {
      if (n.kind === 'router' && !lanPrefix.has(n.name)) continue;
      const addresses = n.addresses.map((a) => `${INTERNET6_PREFIX}${a.split('.')[3]}`);
      const prefix = lanPrefix.get(n.name);
      out.set(n.name, { addresses, gateway: undefined, ...(prefix ? { lanAddress: `${prefix}1`, lanSubnet: `${prefix}/64` } : {}) });
      continue;
    }
    const prefix = lanPrefix.get(n.uplink.network);
    if (!prefix) {
      if (v6Only.has(n.name)) throw new Error(`host "${n.name}" is IPv6-only but router "${n.uplink.network}" has no IPv6 LAN (lan6)`);
      continue;
    }
    const k = (nextHost.get(prefix) ?? 1) + 1;
    nextHost.set(prefix, k);
    out.set(n.name, { addresses: [`${prefix}${k.toString(16)}`], gateway: `${prefix}1` });
  }
  return out;
}

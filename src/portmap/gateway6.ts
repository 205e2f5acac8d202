// The default IPv6 gateway and our global IPv6 address towards it: where a PCP pinhole request
// goes (the router's firewall), and the address it opens (there is no NAT66: the address peers
// reach is our own). A gateway known by its link-local address (router advertisements) is
// addressed with the interface as its zone.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { formatIPv6, isCandidateIPv6, writeIPv6 } from '../net/ip.js';
import type { Gateway } from './gateway.js';

const hexToIPv6 = (hex: string): string => formatIPv6(Buffer.from(hex, 'hex'), 0);

/** The default route of a Linux /proc/net/ipv6_route table: interface and next hop, or null. */
export function parseDefaultRoute6(table: string): { ifName: string; gateway: string } | null {
  let best: { ifName: string; gateway: string; metric: number } | null = null;
  for (const line of table.split('\n')) {
    // dest plen src plen nexthop metric refcnt use flags ifname
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, plen, , , nextHop, metric, , , flags, ifName] = f as [string, string, string, string, string, string, string, string, string, string];
    if (!/^0{32}$/.test(dest) || plen !== '00' || !/^[0-9a-f]{32}$/i.test(nextHop) || /^0{32}$/.test(nextHop)) continue;
    // RTF_UP (1) and RTF_GATEWAY (2); RTF_REJECT (0x200) marks the kernel's unreachable default.
    const fl = parseInt(flags, 16);
    if ((fl & 3) !== 3 || (fl & 0x200) !== 0 || ifName === 'lo') continue;
    const m = parseInt(metric, 16);
    if (!best || m < best.metric) best = { ifName, gateway: hexToIPv6(nextHop), metric: Number.isFinite(m) ? m : 0 };
  }
  return best ? { ifName: best.ifName, gateway: best.gateway } : null;
}

/**
 * Our global IPv6 address on `ifName`: the pinhole's address. Global unicast first (what peers
 * on the internet can reach), unique-local only when there is nothing else.
 */
export function globalAddress6For(ifName: string, ifaces = networkInterfaces()): string | null {
  const v6 = (ifaces[ifName] ?? []).filter((a) => a.family === 'IPv6' && !a.internal && isCandidateIPv6(a.address));
  const isGlobal = (address: string): boolean => {
    const b = new Uint8Array(16);
    return writeIPv6(address, b, 0) && (b[0]! & 0xe0) === 0x20; // 2000::/3
  };
  const global = v6.find((a) => isGlobal(a.address));
  return (global ?? v6[0])?.address ?? null;
}

/** This machine's IPv6 default gateway (Linux) and our global address towards it, or null. */
export function defaultGateway6(): Gateway | null {
  let table: string;
  try {
    table = readFileSync('/proc/net/ipv6_route', 'utf8');
  } catch {
    return null;
  }
  const route = parseDefaultRoute6(table);
  if (!route) return null;
  const localAddress = globalAddress6For(route.ifName);
  if (!localAddress) return null;
  const address = route.gateway.startsWith('fe80:') ? `${route.gateway}%${route.ifName}` : route.gateway;
  return { address, localAddress, ifName: route.ifName };
}

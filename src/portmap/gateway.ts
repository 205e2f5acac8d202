// The default IPv4 gateway and our address towards it: where port-mapping requests go, and the
// one source address they may come from (PCP names it inside the request; a router maps only
// for the address a request came from).
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export interface Gateway {
  /** The router's address on our LAN. */
  readonly address: string;
  /** Our address on the interface towards it. */
  readonly localAddress: string;
  readonly ifName: string;
}

/** The default route of a Linux /proc/net/route table: interface and gateway, or null. */
export function parseDefaultRoute(table: string): { ifName: string; gateway: string } | null {
  let best: { ifName: string; gateway: string; metric: number } | null = null;
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [ifName, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    // RTF_UP (1) and RTF_GATEWAY (2), destination and mask 0: a default route via a gateway.
    if (dest !== '00000000' || mask !== '00000000' || (parseInt(flags, 16) & 3) !== 3 || !/^[0-9A-Fa-f]{8}$/.test(gw)) continue;
    const n = parseInt(gw, 16);
    // The kernel prints the address as a host-order (little-endian) word.
    const gateway = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
    const m = Number(metric);
    if (!best || m < best.metric) best = { ifName, gateway, metric: Number.isFinite(m) ? m : 0 };
  }
  return best ? { ifName: best.ifName, gateway: best.gateway } : null;
}

function toInt(ip: string): number {
  return ip.split('.').reduce((a, p) => a * 256 + Number(p), 0);
}

/** The IPv4 address of `ifName` on the gateway's subnet (else its first IPv4 address). */
export function localAddressFor(ifName: string, gateway: string, ifaces = networkInterfaces()): string | null {
  const v4 = (ifaces[ifName] ?? []).filter((a) => a.family === 'IPv4' && !a.internal);
  const onSubnet = v4.find((a) => {
    const mask = toInt(a.netmask);
    return ((toInt(a.address) & mask) >>> 0) === ((toInt(gateway) & mask) >>> 0);
  });
  return (onSubnet ?? v4[0])?.address ?? null;
}

/** This machine's default gateway (Linux), or null when there is none or it cannot be read. */
export function defaultGateway(): Gateway | null {
  let table: string;
  try {
    table = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return null;
  }
  const route = parseDefaultRoute(table);
  if (!route) return null;
  const localAddress = localAddressFor(route.ifName, route.gateway);
  return localAddress ? { address: route.gateway, localAddress, ifName: route.ifName } : null;
}

// Where a request comes from. Directly, that is the TCP peer. Behind a reverse proxy
// (--trust-proxy) a connection from a trusted proxy address stands for the client the proxy
// appended to X-Forwarded-For: the right-most entry, since everything to its left was sent by the
// client and can say anything. Only connections from the proxy's own address are read that way
// (loopback by default, or the addresses given), so a client that reaches the port directly
// cannot name an address of its choosing. This address feeds the failed-authentication throttle,
// the per-address connection cap and the address peers are told they saw each other come from.
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { unmapIPv4 } from '../net/ip.js';

export interface ClientAddress {
  readonly address: string;
  /** The client's source port; null when a proxy forwarded the request (it does not say). */
  readonly port: number | null;
  readonly forwarded: boolean;
}

/** The right-most X-Forwarded-For entry when it is an IP address; null otherwise. */
export function lastForwardedFor(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const joined = Array.isArray(header) ? header.join(',') : header;
  const last = joined.split(',').at(-1)?.trim() ?? '';
  // Some proxies bracket IPv6 addresses; none should add a port, but a bare "[v6]" is accepted.
  const bare = last.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) !== 0 ? bare : null;
}

/** Which TCP peers are trusted proxies. `loopback` stands for 127.0.0.0/8 and ::1. */
export type ProxyTrust = readonly string[];

export const LOOPBACK_PROXY = 'loopback';


export function isTrustedProxy(trust: ProxyTrust, address: string | undefined): boolean {
  if (address === undefined || trust.length === 0) return false;
  const a = unmapIPv4(address);
  if (trust.includes(LOOPBACK_PROXY) && (a === '::1' || (isIP(a) === 4 && a.startsWith('127.')))) return true;
  return trust.some((t) => t !== LOOPBACK_PROXY && unmapIPv4(t) === a);
}

export function clientAddress(req: IncomingMessage, trust: ProxyTrust): ClientAddress {
  if (isTrustedProxy(trust, req.socket.remoteAddress)) {
    const forwarded = lastForwardedFor(req.headers['x-forwarded-for']);
    if (forwarded !== null) return { address: unmapIPv4(forwarded), port: null, forwarded: true };
  }
  // On a dual-stack listener an IPv4 peer shows as ::ffff:a.b.c.d (unmapIPv4): peers and views get a.b.c.d.
  return { address: req.socket.remoteAddress ? unmapIPv4(req.socket.remoteAddress) : 'unknown', port: req.socket.remotePort ?? null, forwarded: false };
}

/** Counts what each address holds open, against a cap (0: no cap). */
export class PerAddressCap {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Takes a place for `address`; false when it already holds `max`. */
  take(address: string): boolean {
    const n = this.open.get(address) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.open.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const left = (this.open.get(address) ?? 1) - 1;
    if (left <= 0) this.open.delete(address);
    else this.open.set(address, left);
  }
}

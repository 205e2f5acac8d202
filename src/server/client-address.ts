// Where a request comes from. Directly, that is the TCP peer. Behind a reverse proxy
// (--trust-proxy) every connection comes from the proxy, and the client is the address the proxy
// appended to X-Forwarded-For: the right-most entry, since everything to its left was sent by the
// client and can say anything. Trusting it means trusting whoever can reach the listen port, so
// with --trust-proxy only the proxy must be able to (listen on loopback or firewall the port):
// this address feeds the failed-authentication throttle, the per-address connection cap and the
// address peers are told they saw each other come from.
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

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

export function clientAddress(req: IncomingMessage, trustProxy: boolean): ClientAddress {
  if (trustProxy) {
    const forwarded = lastForwardedFor(req.headers['x-forwarded-for']);
    if (forwarded !== null) return { address: forwarded, port: null, forwarded: true };
  }
  return { address: req.socket.remoteAddress ?? 'unknown', port: req.socket.remotePort ?? null, forwarded: false };
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

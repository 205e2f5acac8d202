// The path a tunnel's packets take: straight to an endpoint of the peer, or through the relay.
export type Path = { readonly kind: 'direct'; readonly endpoint: string } | { readonly kind: 'relay' };

export const RELAY: Path = { kind: 'relay' };

export function samePath(a: Path, b: Path): boolean {
  return a.kind === b.kind && (a.kind === 'relay' || a.endpoint === (b as { endpoint: string }).endpoint);
}

export function describePath(p: Path): string {
  return p.kind === 'direct' ? `direct ${p.endpoint}` : 'relay';
}

/** Splits "ip:port" / "[v6]:port"; null if it is not an endpoint. */
export function splitEndpoint(text: string): { address: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  return port > 0 && port <= 65535 ? { address: m[1]!, port } : null;
}

/**
 * Whether an address is on a private network (RFC 1918, RFC 6598 shared space, link-local,
 * IPv6 ULA): a path over one is a LAN path, preferred to a public one.
 */
export function isPrivateAddress(address: string): boolean {
  if (address.includes(':')) {
    const a = address.toLowerCase();
    return a.startsWith('fc') || a.startsWith('fd') || a.startsWith('fe80:');
  }
  const [x, y] = address.split('.').map(Number) as [number, number];
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254);
}

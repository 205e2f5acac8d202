// The path a tunnel's packets take: straight to an endpoint of the peer, or through the relay. A
// direct path is UDP unless `transport` says TCP: a TCP lane opened when no UDP path exists
// (tunnel/lane-offers.ts), which carries the tunnel's streams while disco still crosses the relay.
export type Path = { readonly kind: 'direct'; readonly endpoint: string; readonly transport?: 'tcp' } | { readonly kind: 'relay' };

export const RELAY: Path = { kind: 'relay' };

export function samePath(a: Path, b: Path): boolean {
  if (a.kind === 'relay' || b.kind === 'relay') return a.kind === b.kind;
  return a.endpoint === b.endpoint && a.transport === b.transport;
}

export function describePath(p: Path): string {
  return p.kind === 'direct' ? `direct${p.transport === 'tcp' ? ' (tcp)' : ''} ${p.endpoint}` : 'relay';
}

// The path a tunnel's packets take: straight to an endpoint of the peer, or through the relay.
export type Path = { readonly kind: 'direct'; readonly endpoint: string } | { readonly kind: 'relay' };

export const RELAY: Path = { kind: 'relay' };

export function samePath(a: Path, b: Path): boolean {
  return a.kind === b.kind && (a.kind === 'relay' || a.endpoint === (b as { endpoint: string }).endpoint);
}

export function describePath(p: Path): string {
  return p.kind === 'direct' ? `direct ${p.endpoint}` : 'relay';
}

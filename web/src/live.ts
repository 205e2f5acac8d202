// The live state: a snapshot, then patches from the server's event stream, applied to maps.
// Renders are coalesced: however many patches arrive, the page redraws at most every
// RENDER_INTERVAL_MS, so a storm of updates cannot starve the user's input.
import type { IdentityRow, NodeRow, Patch, Snapshot, TunnelRow, Warning } from '../../src/server/dashboard/wire.js';

export const RENDER_INTERVAL_MS = 100;

export interface LiveState {
  readonly identities: Map<string, IdentityRow>;
  readonly nodes: Map<string, NodeRow>;
  readonly tunnels: Map<string, TunnelRow>;
  /** "kind:name" -> when this page saw its last node go (server time), ahead of the store's record. */
  readonly goneAt: Map<string, number>;
  health: readonly Warning[];
  matrix: boolean;
  /** The server's clock at the last message, and ours then: "5 s ago" uses the server's time. */
  serverSkewMs: number;
  connected: boolean;
  /** Bumped on every change, so views can tell. */
  version: number;
}

export function emptyState(): LiveState {
  return { identities: new Map(), nodes: new Map(), tunnels: new Map(), goneAt: new Map(), health: [], matrix: false, serverSkewMs: 0, connected: false, version: 0 };
}

function fill<T extends { id: string }>(m: Map<string, T>, rows: readonly T[]): void {
  m.clear();
  for (const r of rows) m.set(r.id, r);
}

export function applySnapshot(s: LiveState, snap: Snapshot): void {
  fill(s.identities, snap.identities);
  fill(s.nodes, snap.nodes);
  fill(s.tunnels, snap.tunnels);
  s.health = snap.health;
  s.matrix = snap.matrix;
  s.serverSkewMs = snap.now - Date.now();
  s.version++;
}

export function applyPatch(s: LiveState, p: Patch): void {
  for (const r of p.upsert.identities ?? []) s.identities.set(r.id, r);
  for (const r of p.upsert.nodes ?? []) s.nodes.set(r.id, r);
  for (const r of p.upsert.tunnels ?? []) s.tunnels.set(r.id, r);
  for (const id of p.remove.identities ?? []) s.identities.delete(id);
  for (const id of p.remove.nodes ?? []) {
    const n = s.nodes.get(id);
    if (n) s.goneAt.set(`${n.kind}:${n.name}`, p.now);
    s.nodes.delete(id);
  }
  for (const id of p.remove.tunnels ?? []) s.tunnels.delete(id);
  if (p.health) s.health = p.health;
  s.serverSkewMs = p.now - Date.now();
  s.version++;
}

/**
 * Follows /dashboard/api/events into `state`, calling `changed` at most every RENDER_INTERVAL_MS.
 * `signedOut` runs when the server ends the session. Returns a function that stops it.
 */
export function follow(state: LiveState, changed: () => void, signedOut: () => void): () => void {
  const es = new EventSource('/dashboard/api/events');
  let timer: number | null = null;
  let last = 0;
  const schedule = (): void => {
    if (timer !== null) return;
    const wait = Math.max(0, RENDER_INTERVAL_MS - (performance.now() - last));
    timer = window.setTimeout(() => {
      timer = null;
      last = performance.now();
      changed();
    }, wait);
  };
  es.addEventListener('snapshot', (e) => {
    applySnapshot(state, JSON.parse((e as MessageEvent<string>).data) as Snapshot);
    state.connected = true;
    schedule();
  });
  es.addEventListener('patch', (e) => {
    applyPatch(state, JSON.parse((e as MessageEvent<string>).data) as Patch);
    schedule();
  });
  es.addEventListener('signedout', () => {
    es.close();
    signedOut();
  });
  es.onerror = () => {
    state.connected = false;
    state.version++; // the "reconnecting" mark is a change too
    schedule();
    // Closed for good (401: the session ended): back to the sign-in form.
    if (es.readyState === EventSource.CLOSED) signedOut();
  };
  return () => {
    es.close();
    if (timer !== null) clearTimeout(timer);
  };
}

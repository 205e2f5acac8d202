// The rows both engines read (their tables have the same columns) and how they become the
// Store's records: one mapping, so the engines cannot drift apart in what they return.
import type { ConnectionRecord, DashboardSession, Identity, IdentityKind, IdentityListing, PathRecord, TokenInfo } from './store.js';

export interface IdentityRow {
  id: number;
  kind: IdentityKind;
  name: string;
  node_key: string | null;
  created_at: number;
}

export interface TokenRow {
  id: number;
  identity_id: number;
  hash: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface ConnectionRow {
  id: number;
  identity_id: number;
  connected_at: number;
  disconnected_at: number | null;
  reason: string | null;
  remote: string | null;
}

/** A path report joined with the other side's identity (SQL.pathHistory of either engine). */
export interface PathRow {
  kind: string;
  endpoint: string | null;
  reported_at: number;
  reporter_id: number;
  other_kind: IdentityKind;
  other_name: string;
}

export function toPathRecord(r: PathRow, identityId: number): PathRecord {
  return {
    reportedAt: r.reported_at,
    byThisIdentity: r.reporter_id === identityId,
    other: { kind: r.other_kind, name: r.other_name },
    path: r.kind === 'direct' && r.endpoint !== null ? { kind: 'direct', endpoint: r.endpoint } : { kind: 'relay' },
  };
}

export interface SessionRow {
  id_hash: string;
  token_id: number;
  csrf: string;
  created_at: number;
  expires_at: number;
  name: string;
}

export function toSession(r: SessionRow): DashboardSession {
  return { idHash: r.id_hash, tokenId: r.token_id, csrf: r.csrf, createdAt: r.created_at, expiresAt: r.expires_at, name: r.name };
}

export interface RuleRow {
  client_name: string;
  agent_name: string;
  created_at: number;
}

export interface LastConnectionRow {
  identity_id: number;
  connected_at: number | null;
  disconnected_at: number | null;
}

export function toIdentity(r: IdentityRow): Identity {
  return { id: r.id, kind: r.kind, name: r.name, nodeKey: r.node_key, createdAt: r.created_at };
}

export function toToken(r: TokenRow): TokenInfo {
  return {
    id: r.id,
    identityId: r.identity_id,
    // First characters of the hash: enough to tell tokens apart, useless to an attacker.
    hint: r.hash.slice(0, 8),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

export function toConnection(r: ConnectionRow): ConnectionRecord {
  return {
    id: r.id,
    identityId: r.identity_id,
    connectedAt: r.connected_at,
    disconnectedAt: r.disconnected_at,
    reason: r.reason,
    remote: r.remote,
  };
}

/**
 * The listing of `token list` and GET /api/v1/identities from whole tables read once: grouping
 * here rather than a query per identity keeps it one round trip per table on either engine.
 */
export function toListings(
  identities: readonly IdentityRow[],
  tokens: readonly TokenRow[],
  rules: readonly RuleRow[],
  last: readonly LastConnectionRow[],
): IdentityListing[] {
  const tokensOf = groupBy(tokens, (t) => t.identity_id);
  const rulesOf = groupBy(rules, (x) => x.client_name);
  const lastOf = new Map(last.map((r) => [r.identity_id, r]));
  return identities.map((r) => ({
    ...toIdentity(r),
    tokens: (tokensOf.get(r.id) ?? []).map(toToken),
    allow: r.kind === 'client' ? (rulesOf.get(r.name) ?? []).map((x) => x.agent_name) : [],
    lastConnectedAt: lastOf.get(r.id)?.connected_at ?? null,
    lastDisconnectedAt: lastOf.get(r.id)?.disconnected_at ?? null,
  }));
}

function groupBy<T, K>(rows: readonly T[], key: (row: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}

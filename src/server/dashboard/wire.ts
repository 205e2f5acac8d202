// What the dashboard's server sends its page, as plain types: the page (web/) imports them as
// types only, so the bundle carries none of the server. Every entity has an `id`, so the live feed
// can send what changed (upserts and removals) instead of the whole state.
import type { NetcheckSummary } from '../../coordination/protocol.js';

export type IdentityKindName = 'agent' | 'client' | 'admin';

export interface TokenRow {
  readonly id: number;
  /** First characters of the token's hash: tells tokens apart, useless to an attacker. */
  readonly hint: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/** One identity (a person, a workspace, an operator), online or not. */
export interface IdentityRow {
  /** "client:laptop" */
  readonly id: string;
  readonly kind: IdentityKindName;
  readonly name: string;
  readonly onlineNodes: number;
  readonly createdAt: number;
  readonly lastConnectedAt: number | null;
  readonly lastDisconnectedAt: number | null;
  /** Clients: the agents it may reach. */
  readonly allow: readonly string[];
  readonly tokens: readonly TokenRow[];
}

/** One connected node (a process of an identity). */
export interface NodeRow {
  /** The node key, or "kind:name@connectedAt" in the moment before it publishes one. */
  readonly id: string;
  readonly kind: 'agent' | 'client';
  readonly name: string;
  readonly key: string | null;
  readonly connectedAt: number;
  /** Where its coordination connection comes from. */
  readonly remote: string | null;
  readonly endpoints: readonly string[];
  /** The NAT in front of it, as its own netcheck found it; null until it reports. */
  readonly netcheck: NetcheckSummary | null;
  /**
   * With several servers (replicas): the one this node is connected to, by the URL the replicas
   * reach it at, and whether it is the server this page comes from. Null for a lone server.
   */
  readonly replica: { readonly url: string; readonly here: boolean } | null;
}

export type PathKind = 'direct' | 'relay' | 'unknown';

/** One tunnel: a client node to an agent. */
export interface TunnelRow {
  /** "<client node key or connection>><agent name>" */
  readonly id: string;
  readonly client: string;
  readonly clientKey: string | null;
  readonly agent: string;
  readonly agentOnline: boolean;
  /** The client's report first (it is the one that asked), else the agent's. */
  readonly path: PathKind;
  readonly endpoint: string | null;
  /** What carries a direct path: UDP, or TCP (a TCP lane where UDP is blocked); null off direct paths. */
  readonly transport: 'udp' | 'tcp' | null;
  readonly rttMs: number | null;
  readonly since: number;
  /** When the path last changed kind, as this server saw it. */
  readonly pathSince: number;
  /** For a relayed tunnel: why, in the words `traverse ping` uses. */
  readonly reason: string | null;
  /** Its streams by carrier: on a direct path, TCP lanes or UDX over UDP (null: not reported). */
  readonly streams: { readonly tcp: number; readonly udx: number } | null;
}

export interface Warning {
  /** Stable while the condition lasts, so the page does not flicker. */
  readonly id: string;
  readonly level: 'warn' | 'info';
  readonly title: string;
  /** What to do about it. */
  readonly advice: string;
}

export interface Snapshot {
  readonly now: number;
  readonly identities: readonly IdentityRow[];
  readonly nodes: readonly NodeRow[];
  readonly tunnels: readonly TunnelRow[];
  readonly health: readonly Warning[];
  /** Whether the server has a connectivity-matrix report to show (GET /dashboard/matrix.svg). */
  readonly matrix: boolean;
}

/** What changed since the last snapshot or patch; lists absent when nothing of that kind changed. */
export interface Patch {
  readonly now: number;
  readonly upsert: { readonly identities?: IdentityRow[]; readonly nodes?: NodeRow[]; readonly tunnels?: TunnelRow[] };
  readonly remove: { readonly identities?: string[]; readonly nodes?: string[]; readonly tunnels?: string[] };
  /** The whole list of warnings, when it changed. */
  readonly health?: readonly Warning[];
}

/** One entry of an identity's timeline (GET /dashboard/api/history). */
export interface HistoryEntry {
  readonly at: number;
  readonly kind: 'connect' | 'disconnect' | 'path';
  readonly text: string;
}

/** GET /dashboard/api/session */
export interface SessionInfo {
  readonly signedIn: boolean;
  readonly name?: string;
  /** Sent back in the x-csrf-token header of every state-changing request. */
  readonly csrf?: string;
  readonly expiresAt?: number;
}

// What the coordinator keeps across restarts, behind one interface so that a PostgreSQL
// engine can serve several replicas later. Methods are async for that reason even though
// the SQLite engine answers synchronously.
import type { Path } from '../../coordination/protocol.js';

export type IdentityKind = 'agent' | 'client' | 'admin';

export interface Identity {
  readonly id: number;
  readonly kind: IdentityKind;
  readonly name: string;
  /** The node key last registered by this identity (hex), or null before its first connect. */
  readonly nodeKey: string | null;
  readonly createdAt: number;
}

export interface TokenInfo {
  readonly id: number;
  readonly identityId: number;
  /** First characters of the hash: enough to tell tokens apart in a listing, useless to an attacker. */
  readonly hint: string;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

export interface IdentityListing extends Identity {
  readonly tokens: readonly TokenInfo[];
  /** For clients: the agent names it may open tunnels to. */
  readonly allow: readonly string[];
  readonly lastConnectedAt: number | null;
  readonly lastDisconnectedAt: number | null;
}

export interface ConnectionRecord {
  readonly id: number;
  readonly identityId: number;
  readonly connectedAt: number;
  readonly disconnectedAt: number | null;
  readonly reason: string | null;
  readonly remote: string | null;
}

/** An authenticated token: which token and whose. */
export interface Authenticated {
  readonly token: TokenInfo;
  readonly identity: Identity;
}

export interface Store {
  /** Creates the identity if it does not exist; returns it either way. */
  ensureIdentity(kind: IdentityKind, name: string, now: number): Promise<Identity>;
  findIdentity(kind: IdentityKind, name: string): Promise<Identity | undefined>;
  createToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<TokenInfo>;
  /** The identity behind a token hash if the token is neither revoked nor expired at `now`. */
  authenticate(tokenHash: string, now: number): Promise<Authenticated | undefined>;
  /** Whether a token is still usable: checked for live connections when the policy changes. */
  tokenValid(tokenId: number, now: number): Promise<boolean>;
  /** Revokes every live token of an identity; returns how many. Bumps the policy version. */
  revokeIdentity(kind: IdentityKind, name: string, now: number): Promise<number>;
  /** Adds agents to a client's allow list. Bumps the policy version. */
  allow(clientName: string, agentNames: readonly string[], now: number): Promise<void>;
  allowedAgents(clientName: string): Promise<string[]>;
  listIdentities(): Promise<IdentityListing[]>;
  /**
   * Binds a node key to the identity that proved it (the first to do so keeps it) and records it
   * as the identity's latest. False when the key is bound to another identity: it is refused.
   */
  claimNodeKey(identityId: number, nodeKey: string, now: number): Promise<boolean>;
  /** Deletes history (ended connections, path reports, node keys unseen) older than `before`; returns rows removed. */
  pruneHistory(before: number): Promise<number>;
  recordConnect(identityId: number, now: number, remote: string | null): Promise<number>;
  recordDisconnect(connectionId: number, now: number, reason: string): Promise<void>;
  /** Marks connections left open by a previous process (crash, kill -9) as ended. */
  closeDanglingConnections(now: number, reason: string): Promise<number>;
  connectionHistory(identityId: number, limit: number): Promise<ConnectionRecord[]>;
  recordPath(reporterId: number, peerId: number, path: Path, now: number): Promise<void>;
  /**
   * A counter bumped by every revocation or rule change, by any process on the same data.
   * The server polls it to apply changes made by `traverse token ...` at once.
   */
  policyVersion(): Promise<number>;
  close(): Promise<void>;
}

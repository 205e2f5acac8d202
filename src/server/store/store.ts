// What the coordinator keeps across restarts, behind one interface with two engines: SQLite
// (embedded, one server) and PostgreSQL (several server replicas on one database). Methods are
// async for PostgreSQL's sake even though the SQLite engine answers synchronously.
//
// Several processes may use one store at once (replicas, `traverse token ...`), so an engine
// keeps no copy of the data in memory: every answer comes from the database, and every change
// two processes could race on is one statement or one transaction that the database serialises.
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

/** A token with the identity it belongs to, as `token revoke --id` finds it. */
export interface TokenOwner {
  readonly token: TokenInfo;
  readonly identity: Identity;
}

/** What rotating an identity's tokens did: the new token, and the ones it replaced. */
export interface Rotation {
  readonly token: TokenInfo;
  readonly revoked: readonly TokenInfo[];
}

/** What deleting an identity removed, row counts by kind. */
export interface Deletion {
  readonly identity: Identity;
  /** Tokens that were still usable (neither revoked nor expired) when it was deleted. */
  readonly liveTokens: number;
  readonly tokens: number;
  readonly allowRules: number;
  /** Connection records, path reports and node keys of the identity. */
  readonly historyRows: number;
}

/** One path report of a tunnel an identity takes part in (the dashboard's history). */
export interface PathRecord {
  readonly reportedAt: number;
  /** True when this identity reported it; false when the other side did. */
  readonly byThisIdentity: boolean;
  readonly other: { readonly kind: IdentityKind; readonly name: string };
  readonly path: Path;
}

/**
 * A dashboard session as the database keeps it, so that any replica can serve it: the session id
 * only as its hash (a copy of the database signs nobody in), the admin token that bought it.
 */
export interface NewDashboardSession {
  readonly idHash: string;
  readonly tokenId: number;
  readonly csrf: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** A live session: not expired, its admin token neither revoked nor expired. */
export interface DashboardSession extends NewDashboardSession {
  /** The admin identity's name. */
  readonly name: string;
}

export interface AllowRule {
  readonly client: string;
  readonly agent: string;
  readonly createdAt: number;
}

export type TokenRefusal =
  | { readonly reason: 'unknown' }
  | { readonly reason: 'revoked'; readonly at: number }
  | { readonly reason: 'expired'; readonly at: number }
  | { readonly reason: 'valid' };

/** An authenticated token: which token and whose. */
export interface Authenticated {
  readonly token: TokenInfo;
  readonly identity: Identity;
}

/**
 * History rows written together (history.ts batches them): a storm of connects is a few
 * statements, not one per peer competing with authentication for the database.
 */
export interface HistoryBatch {
  readonly connects: readonly { readonly identityId: number; readonly at: number; readonly remote: string | null; readonly replica: string }[];
  /** Ends of connections recorded before (in an earlier batch). */
  readonly disconnects: readonly { readonly id: number; readonly at: number; readonly reason: string }[];
  readonly paths: readonly { readonly reporterId: number; readonly peerId: number; readonly path: Path; readonly at: number }[];
}

export interface Store {
  /** Creates the identity if it does not exist; returns it either way. */
  ensureIdentity(kind: IdentityKind, name: string, now: number): Promise<Identity>;
  findIdentity(kind: IdentityKind, name: string): Promise<Identity | undefined>;
  createToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<TokenInfo>;
  /** The identity behind a token hash if the token is neither revoked nor expired at `now`. */
  authenticate(tokenHash: string, now: number): Promise<Authenticated | undefined>;
  /**
   * Why a token does not authenticate: unknown, revoked (when) or expired (when). Told only to
   * whoever holds the token, who learns nothing they could not have known.
   */
  refusal(tokenHash: string, now: number): Promise<TokenRefusal>;
  /** Whether a token is still usable: checked for live connections when the policy changes. */
  tokenValid(tokenId: number, now: number): Promise<boolean>;
  /** Revokes every live token of an identity; returns how many. Bumps the policy version. */
  revokeIdentity(kind: IdentityKind, name: string, now: number): Promise<number>;
  /** Tokens whose id (the hex hash) starts with `prefix`, with their identities; ordered by id. */
  tokensById(prefix: string): Promise<TokenOwner[]>;
  /** Revokes one token unless already revoked; true when it was revoked now. Bumps the policy version. */
  revokeToken(tokenId: number, now: number): Promise<boolean>;
  /**
   * In one transaction: revokes every token of the identity not yet revoked and creates a new one.
   * Bumps the policy version, so a running server closes the old tokens' connections.
   */
  rotateToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<Rotation>;
  /**
   * Deletes an identity with its tokens, its history and the allow rules naming it (a client's own
   * rules; an agent's place in every client's list), in one transaction; undefined if there is none.
   * Bumps the policy version, so a running server closes its connections.
   */
  deleteIdentity(kind: IdentityKind, name: string, now: number): Promise<Deletion | undefined>;
  /** Adds agents to a client's allow list. Bumps the policy version. */
  allow(clientName: string, agentNames: readonly string[], now: number): Promise<void>;
  /** Removes agents from a client's allow list; returns the names that were in it. Bumps the policy version. */
  disallow(clientName: string, agentNames: readonly string[]): Promise<string[]>;
  allowedAgents(clientName: string): Promise<string[]>;
  /** Every allow rule, ordered by client and agent. */
  allowRules(): Promise<AllowRule[]>;
  listIdentities(): Promise<IdentityListing[]>;
  /**
   * Binds a node key to the identity that proved it (the first to do so keeps it) and records it
   * as the identity's latest. False when the key is bound to another identity: it is refused.
   */
  claimNodeKey(identityId: number, nodeKey: string, now: number): Promise<boolean>;
  /** Deletes history (ended connections, path reports, node keys unseen) older than `before`; returns rows removed. */
  pruneHistory(before: number): Promise<number>;
  /** Marks connections of `replica` left open by a previous process of it (crash, kill -9) as ended. */
  closeDanglingConnections(now: number, reason: string, replica: string): Promise<number>;
  /**
   * Writes a batch of history in one transaction (all of it or nothing, so a failed batch can be
   * written again); returns the new connections' ids, in the order of `connects`. A connection
   * names the replica that holds it (the server process's name; '' for a lone server), so that a
   * replica ending its own dangling records never touches those of another one; a second end of
   * a connection is ignored.
   */
  recordHistory(batch: HistoryBatch): Promise<number[]>;
  connectionHistory(identityId: number, limit: number): Promise<ConnectionRecord[]>;
  /** The path reports of tunnels an identity takes part in (by it or by the other side), newest first. */
  pathHistory(identityId: number, limit: number): Promise<PathRecord[]>;
  /**
   * Stores a dashboard session; drops expired sessions and, beyond the newest `max`, the oldest
   * (a bound on the table whatever sign-ins do).
   */
  createSession(session: NewDashboardSession, max: number): Promise<void>;
  /** The session with this id hash if it is live at `now` (one query: expiry and the token's revocation). */
  liveSession(idHash: string, now: number): Promise<DashboardSession | undefined>;
  endSession(idHash: string): Promise<void>;
  /**
   * A counter bumped by every revocation or rule change, by any process on the same data.
   * The server polls it to apply changes made by `traverse token ...` at once.
   */
  policyVersion(): Promise<number>;
  close(): Promise<void>;
}

// The embedded Store engine: one SQLite file in the data folder, opened by the server and by
// `traverse token ...` at the same time (WAL mode lets readers and one writer share it).
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hashesEqual } from '../tokens.js';
import { MIGRATIONS, SQL } from './sqlite-sql.js';
import { toConnection, toIdentity, toListings, toPathRecord, toSession, toToken, type ConnectionRow, type IdentityRow, type LastConnectionRow, type PathRow, type RuleRow, type SessionRow, type TokenRow } from './rows.js';
import type {
  AllowRule,
  Authenticated,
  Deletion,
  HistoryBatch,
  ConnectionRecord,
  DashboardSession,
  Identity,
  IdentityKind,
  IdentityListing,
  NewDashboardSession,
  PathRecord,
  Rotation,
  Store,
  TokenInfo,
  TokenOwner,
  TokenRefusal,
} from './store.js';

export const DATABASE_FILE = 'traverse.db';

export class SqliteStore implements Store {
  // better-sqlite3 compiles a statement on every prepare(); keep each one compiled once.
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(private readonly db: Database.Database) {}

  private q<P extends unknown[] = unknown[], R = unknown>(sql: string): Database.Statement<P, R> {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s as unknown as Database.Statement<P, R>;
  }

  /** Opens (creating if needed) `<dir>/traverse.db` and brings its schema up to date. */
  static open(dir: string): SqliteStore {
    // The database holds token hashes and who connected from where: only its owner may read it.
    // A folder made here is 0700; the database is 0600 before SQLite opens it, so the WAL and
    // shared-memory files SQLite creates next to it take the same mode.
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, DATABASE_FILE);
    closeSync(openSync(file, 'a', 0o600));
    restrict(file);
    const db = new Database(file);
    for (const p of SQL.pragmas) db.pragma(p);
    migrate(db);
    for (const extra of ['-wal', '-shm']) if (existsSync(file + extra)) restrict(file + extra);
    return new SqliteStore(db);
  }

  async ensureIdentity(kind: IdentityKind, name: string, now: number): Promise<Identity> {
    this.q(SQL.insertIdentity).run(kind, name, now);
    return toIdentity(this.q<[string, string], IdentityRow>(SQL.identityByName).get(kind, name)!);
  }

  async findIdentity(kind: IdentityKind, name: string): Promise<Identity | undefined> {
    const row = this.q<[string, string], IdentityRow>(SQL.identityByName).get(kind, name);
    return row ? toIdentity(row) : undefined;
  }

  async createToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<TokenInfo> {
    const info = this.q(SQL.insertToken).run(identityId, tokenHash, now, expiresAt);
    return toToken(this.q<[number], TokenRow>(SQL.tokenById).get(Number(info.lastInsertRowid))!);
  }

  async authenticate(tokenHash: string, now: number): Promise<Authenticated | undefined> {
    // The lookup is by hash of a 256-bit secret, so its timing reveals nothing usable.
    const row = this.q<[string], TokenRow>(SQL.tokenByHash).get(tokenHash);
    if (!row || !hashesEqual(row.hash, tokenHash) || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return undefined;
    const identity = this.q<[number], IdentityRow>(SQL.identityById).get(row.identity_id);
    return identity ? { token: toToken(row), identity: toIdentity(identity) } : undefined;
  }

  async refusal(tokenHash: string, now: number): Promise<TokenRefusal> {
    const row = this.q<[string], TokenRow>(SQL.tokenByHash).get(tokenHash);
    if (!row || !hashesEqual(row.hash, tokenHash)) return { reason: 'unknown' };
    if (row.revoked_at !== null) return { reason: 'revoked', at: row.revoked_at };
    if (row.expires_at !== null && row.expires_at <= now) return { reason: 'expired', at: row.expires_at };
    return { reason: 'valid' };
  }

  async tokenValid(tokenId: number, now: number): Promise<boolean> {
    return this.q(SQL.tokenValid).get(tokenId, now) !== undefined;
  }

  async revokeIdentity(kind: IdentityKind, name: string, now: number): Promise<number> {
    return this.db.transaction(() => {
      const identity = this.q<[string, string], IdentityRow>(SQL.identityByName).get(kind, name);
      if (!identity) return 0;
      const changes = this.q(SQL.revokeTokens).run(now, identity.id).changes;
      this.q(SQL.bumpPolicy).run();
      return changes;
    })();
  }

  async tokensById(prefix: string): Promise<TokenOwner[]> {
    const p = prefix.toLowerCase();
    return this.q<[number, string], TokenRow>(SQL.tokensByPrefix)
      .all(p.length, p)
      .map((t) => ({ token: toToken(t), identity: toIdentity(this.q<[number], IdentityRow>(SQL.identityById).get(t.identity_id)!) }));
  }

  async revokeToken(tokenId: number, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.q(SQL.revokeToken).run(now, tokenId).changes > 0;
      if (changed) this.q(SQL.bumpPolicy).run();
      return changed;
    })();
  }

  async rotateToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<Rotation> {
    return this.db.transaction(() => {
      const old = this.q<[number], TokenRow>(SQL.unrevokedTokens).all(identityId);
      this.q(SQL.revokeTokens).run(now, identityId);
      const id = Number(this.q(SQL.insertToken).run(identityId, tokenHash, now, expiresAt).lastInsertRowid);
      this.q(SQL.bumpPolicy).run();
      return {
        token: toToken(this.q<[number], TokenRow>(SQL.tokenById).get(id)!),
        revoked: old.map((t) => toToken({ ...t, revoked_at: now })),
      };
    })();
  }

  // A deleted identity leaves nothing behind: its tokens, connection records, path reports (as
  // reporter or as peer) and node keys are deleted with it, rather than kept under an identity
  // marked deleted. The foreign keys then hold without a tombstone, the name can be created again
  // without inheriting old history or node keys, and what remains of it is the server's log.
  async deleteIdentity(kind: IdentityKind, name: string, now: number): Promise<Deletion | undefined> {
    return this.db.transaction(() => {
      const row = this.q<[string, string], IdentityRow>(SQL.identityByName).get(kind, name);
      if (!row) return undefined;
      const liveTokens = this.q<[number, number], { n: number }>(SQL.liveTokenCount).get(row.id, now)!.n;
      const tokens = this.q(SQL.deleteTokens).run(row.id).changes;
      const historyRows =
        this.q(SQL.deleteConnections).run(row.id).changes +
        this.q(SQL.deletePaths).run(row.id, row.id).changes +
        this.q(SQL.deleteNodeKeys).run(row.id).changes;
      // Rules name identities by name: a client's are its own, an agent appears in clients' lists.
      const allowRules =
        kind === 'client'
          ? this.q(SQL.deleteClientRules).run(name).changes
          : kind === 'agent'
            ? this.q(SQL.deleteAgentRules).run(name).changes
            : 0;
      this.q(SQL.deleteIdentity).run(row.id);
      this.q(SQL.bumpPolicy).run();
      return { identity: toIdentity(row), liveTokens, tokens, allowRules, historyRows };
    })();
  }

  async allow(clientName: string, agentNames: readonly string[], now: number): Promise<void> {
    this.db.transaction(() => {
      const insert = this.q(SQL.insertAllow);
      for (const agent of agentNames) insert.run(clientName, agent, now);
      this.q(SQL.bumpPolicy).run();
    })();
  }

  async disallow(clientName: string, agentNames: readonly string[]): Promise<string[]> {
    return this.db.transaction(() => {
      const removed = agentNames.filter((agent) => this.q(SQL.deleteRule).run(clientName, agent).changes > 0);
      this.q(SQL.bumpPolicy).run();
      return removed;
    })();
  }

  async allowRules(): Promise<AllowRule[]> {
    return this.q<[], { client_name: string; agent_name: string; created_at: number }>(SQL.allRules)
      .all()
      .map((r) => ({ client: r.client_name, agent: r.agent_name, createdAt: r.created_at }));
  }

  async allowedAgents(clientName: string): Promise<string[]> {
    return this.q<[string], { agent_name: string }>(SQL.allowedAgents)
      .all(clientName)
      .map((r) => r.agent_name);
  }

  async listIdentities(): Promise<IdentityListing[]> {
    return toListings(
      this.q<[], IdentityRow>(SQL.allIdentities).all(),
      this.q<[], TokenRow>(SQL.allTokens).all(),
      this.q<[], RuleRow>(SQL.allRules).all(),
      this.q<[], LastConnectionRow>(SQL.lastConnections).all(),
    );
  }

  async claimNodeKey(identityId: number, nodeKey: string, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const owner = this.q<[string], { identity_id: number }>(SQL.nodeKeyOwner).get(nodeKey);
      if (owner && owner.identity_id !== identityId) return false;
      if (owner) this.q(SQL.touchNodeKey).run(now, nodeKey);
      else this.q(SQL.insertNodeKey).run(nodeKey, identityId, now, now);
      this.q(SQL.setNodeKey).run(nodeKey, now, identityId);
      return true;
    })();
  }

  async pruneHistory(before: number): Promise<number> {
    return this.db.transaction(
      () =>
        this.q(SQL.pruneConnections).run(before).changes +
        this.q(SQL.prunePaths).run(before).changes +
        this.q(SQL.pruneNodeKeys).run(before).changes,
    )();
  }

  async closeDanglingConnections(now: number, reason: string, replica: string): Promise<number> {
    return this.q(SQL.endDangling).run(now, reason, replica).changes;
  }

  async connectionHistory(identityId: number, limit: number): Promise<ConnectionRecord[]> {
    return this.q<[number, number], ConnectionRow>(SQL.connectionHistory).all(identityId, limit).map(toConnection);
  }

  async pathHistory(identityId: number, limit: number): Promise<PathRecord[]> {
    return this.q<[number, number, number, number], PathRow>(SQL.pathHistory)
      .all(identityId, identityId, identityId, limit)
      .map((r) => toPathRecord(r, identityId));
  }

  async recordHistory(b: HistoryBatch): Promise<number[]> {
    return this.db.transaction(() => {
      const ids = b.connects.map((r) => Number(this.q(SQL.insertConnection).run(r.identityId, r.at, r.remote, r.replica).lastInsertRowid));
      for (const r of b.disconnects) this.q(SQL.endConnection).run(r.at, r.reason, r.id);
      for (const r of b.paths) this.q(SQL.insertPath).run(r.reporterId, r.peerId, r.path.kind, r.path.kind === 'direct' ? r.path.endpoint : null, r.at);
      return ids;
    })();
  }

  async createSession(session: NewDashboardSession, max: number): Promise<void> {
    this.db.transaction(() => {
      this.q(SQL.pruneSessions).run(session.createdAt);
      this.q(SQL.insertSession).run(session.idHash, session.tokenId, session.csrf, session.createdAt, session.expiresAt);
      this.q(SQL.boundSessions).run(max);
    })();
  }

  async liveSession(idHash: string, now: number): Promise<DashboardSession | undefined> {
    const row = this.q<[string, number, number], SessionRow>(SQL.liveSession).get(idHash, now, now);
    return row ? toSession(row) : undefined;
  }

  async endSession(idHash: string): Promise<void> {
    this.q(SQL.endSession).run(idHash);
  }

  async policyVersion(): Promise<number> {
    return this.q<[], { value: number }>(SQL.policyVersion).get()?.value ?? 0;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** Makes a file readable and writable by its owner only (a database from before this rule was 0644). */
function restrict(file: string): void {
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `the database is at schema version ${current}, newer than this program knows (${MIGRATIONS.length}); upgrade traverse`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

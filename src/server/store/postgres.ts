// The Store engine for several server replicas: one PostgreSQL database shared by every
// `traverse server` process and by `traverse token ...`. Nothing is cached in the process: each
// answer is read from the database, so what one replica (or an administrator) changes, every
// other one sees on its next query. Races between replicas are settled by the database: unique
// keys (a node key, a token hash, an identity's kind and name), single statements that decide
// (claimNodeKey), and row locks inside transactions (rotation, deletion).
import pg from 'pg';
import { hashesEqual } from '../tokens.js';
import { MIGRATION_LOCK, MIGRATIONS, SQL } from './postgres-sql.js';
import { redactDatabaseUrl } from './database-url.js';
import { toConnection, toIdentity, toListings, toPathRecord, toSession, toToken, type ConnectionRow, type IdentityRow, type LastConnectionRow, type PathRow, type RuleRow, type SessionRow, type TokenRow } from './rows.js';
import type {
  AllowRule,
  Authenticated,
  ConnectionRecord,
  DashboardSession,
  Deletion,
  HistoryBatch,
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

/** A token row with its identity's columns (TOKEN_WITH_OWNER in postgres-sql.ts). */
type TokenOwnerRow = TokenRow & { i_kind: IdentityKind; i_name: string; i_node_key: string | null; i_created_at: number };

function toOwner(r: TokenOwnerRow): TokenOwner {
  return {
    token: toToken(r),
    identity: toIdentity({ id: r.identity_id, kind: r.i_kind, name: r.i_name, node_key: r.i_node_key, created_at: r.i_created_at }),
  };
}

/** Something that runs a query: the pool, or one client inside a transaction. */
type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// Times and ids are BIGINT, which pg returns as strings (they may exceed 2^53); these stay far
// below that (milliseconds until the year 287396, row counts), so they are read as numbers.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PostgresOptions {
  /** Connections the pool may hold (default 10). */
  readonly maxConnections?: number;
  /** Called when an idle connection fails (the database restarted, the network dropped). */
  readonly onError?: (err: Error) => void;
}

export class PostgresStore implements Store {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects to the database at `url` and brings its schema up to date. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      types,
      max: options.maxConnections ?? 10,
      // A database that does not answer is an error within seconds, not a hang: at connect, and
      // for a query on a connection whose other end vanished (keepalive notices a dead peer).
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
      keepAlive: true,
      application_name: 'traverse',
    });
    // An idle connection's failure is emitted on the pool; unheard, it would end the process.
    // The next query reconnects (or fails and says why), so reporting it is enough.
    pool.on('error', (err) => options.onError?.(redactError(err, url)));
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw redactError(err, url);
    }
    return new PostgresStore(pool);
  }

  private async one<R>(sql: string, params: unknown[], on: Queryable = this.pool): Promise<R | undefined> {
    const r = await on.query(sql, params);
    return r.rows[0] as R | undefined;
  }

  private async all<R>(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<R[]> {
    return (await on.query(sql, params)).rows as R[];
  }

  private async changes(sql: string, params: unknown[], on: Queryable = this.pool): Promise<number> {
    return (await on.query(sql, params)).rowCount ?? 0;
  }

  /** Runs `f` in one transaction on one connection: committed if it returns, rolled back if it throws. */
  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await f(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async ensureIdentity(kind: IdentityKind, name: string, now: number): Promise<Identity> {
    // ON CONFLICT waits for a concurrent insert of the same name and then finds its row.
    await this.pool.query(SQL.insertIdentity, [kind, name, now]);
    return toIdentity((await this.one<IdentityRow>(SQL.identityByName, [kind, name]))!);
  }

  async findIdentity(kind: IdentityKind, name: string): Promise<Identity | undefined> {
    const row = await this.one<IdentityRow>(SQL.identityByName, [kind, name]);
    return row ? toIdentity(row) : undefined;
  }

  async createToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<TokenInfo> {
    return toToken((await this.one<TokenRow>(SQL.insertToken, [identityId, tokenHash, now, expiresAt]))!);
  }

  async authenticate(tokenHash: string, now: number): Promise<Authenticated | undefined> {
    const row = await this.one<TokenOwnerRow>(SQL.tokenOwnerByHash, [tokenHash]);
    if (!row || !hashesEqual(row.hash, tokenHash) || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= now)) return undefined;
    return toOwner(row);
  }

  async refusal(tokenHash: string, now: number): Promise<TokenRefusal> {
    const row = await this.one<TokenRow>(SQL.tokenByHash, [tokenHash]);
    if (!row || !hashesEqual(row.hash, tokenHash)) return { reason: 'unknown' };
    if (row.revoked_at !== null) return { reason: 'revoked', at: row.revoked_at };
    if (row.expires_at !== null && row.expires_at <= now) return { reason: 'expired', at: row.expires_at };
    return { reason: 'valid' };
  }

  async tokenValid(tokenId: number, now: number): Promise<boolean> {
    return (await this.one(SQL.tokenValid, [tokenId, now])) !== undefined;
  }

  async revokeIdentity(kind: IdentityKind, name: string, now: number): Promise<number> {
    return this.tx(async (c) => {
      const identity = await this.one<IdentityRow>(SQL.identityByName, [kind, name], c);
      if (!identity) return 0;
      const n = await this.changes(SQL.revokeTokens, [now, identity.id], c);
      await c.query(SQL.bumpPolicy);
      return n;
    });
  }

  async tokensById(prefix: string): Promise<TokenOwner[]> {
    const p = prefix.toLowerCase();
    return (await this.all<TokenOwnerRow>(SQL.tokensByPrefix, [p.length, p])).map(toOwner);
  }

  async revokeToken(tokenId: number, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const changed = (await this.changes(SQL.revokeToken, [now, tokenId], c)) > 0;
      if (changed) await c.query(SQL.bumpPolicy);
      return changed;
    });
  }

  async rotateToken(identityId: number, tokenHash: string, now: number, expiresAt: number | null): Promise<Rotation> {
    return this.tx(async (c) => {
      // Two rotations at once would each miss the other's new token and leave two live ones:
      // the identity's row lock makes the second wait and then revoke the first's.
      await c.query(SQL.lockIdentity, [identityId]);
      const revoked = await this.all<TokenRow>(SQL.revokeTokens, [now, identityId], c);
      const token = (await this.one<TokenRow>(SQL.insertToken, [identityId, tokenHash, now, expiresAt], c))!;
      await c.query(SQL.bumpPolicy);
      return { token: toToken(token), revoked: revoked.sort((a, b) => a.id - b.id).map(toToken) };
    });
  }

  // As in the SQLite engine: a deleted identity leaves nothing behind (see sqlite.ts).
  async deleteIdentity(kind: IdentityKind, name: string, now: number): Promise<Deletion | undefined> {
    return this.tx(async (c) => {
      const row = await this.one<IdentityRow>(SQL.identityByNameForUpdate, [kind, name], c);
      if (!row) return undefined;
      const liveTokens = (await this.one<{ n: number }>(SQL.liveTokenCount, [row.id, now], c))!.n;
      const tokens = await this.changes(SQL.deleteTokens, [row.id], c);
      const historyRows =
        (await this.changes(SQL.deleteConnections, [row.id], c)) +
        (await this.changes(SQL.deletePaths, [row.id], c)) +
        (await this.changes(SQL.deleteNodeKeys, [row.id], c));
      const allowRules =
        kind === 'client'
          ? await this.changes(SQL.deleteClientRules, [name], c)
          : kind === 'agent'
            ? await this.changes(SQL.deleteAgentRules, [name], c)
            : 0;
      await c.query(SQL.deleteIdentity, [row.id]);
      await c.query(SQL.bumpPolicy);
      return { identity: toIdentity(row), liveTokens, tokens, allowRules, historyRows };
    });
  }

  async allow(clientName: string, agentNames: readonly string[], now: number): Promise<void> {
    await this.tx(async (c) => {
      for (const agent of agentNames) await c.query(SQL.insertAllow, [clientName, agent, now]);
      await c.query(SQL.bumpPolicy);
    });
  }

  async disallow(clientName: string, agentNames: readonly string[]): Promise<string[]> {
    return this.tx(async (c) => {
      const gone = new Set((await this.all<{ agent_name: string }>(SQL.deleteRules, [clientName, [...agentNames]], c)).map((r) => r.agent_name));
      await c.query(SQL.bumpPolicy);
      // In the order asked, each once, as the SQLite engine answers.
      return agentNames.filter((a, i) => gone.has(a) && agentNames.indexOf(a) === i);
    });
  }

  async allowedAgents(clientName: string): Promise<string[]> {
    return (await this.all<{ agent_name: string }>(SQL.allowedAgents, [clientName])).map((r) => r.agent_name);
  }

  async allowRules(): Promise<AllowRule[]> {
    return (await this.all<RuleRow>(SQL.allRules)).map((r) => ({ client: r.client_name, agent: r.agent_name, createdAt: r.created_at }));
  }

  async listIdentities(): Promise<IdentityListing[]> {
    // One snapshot for the four reads, so a token created meanwhile is not listed without its identity.
    return this.tx(async (c) => {
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return toListings(
        await this.all<IdentityRow>(SQL.allIdentities, [], c),
        await this.all<TokenRow>(SQL.allTokens, [], c),
        await this.all<RuleRow>(SQL.allRules, [], c),
        await this.all<LastConnectionRow>(SQL.lastConnections, [], c),
      );
    });
  }

  async claimNodeKey(identityId: number, nodeKey: string, now: number): Promise<boolean> {
    return (await this.changes(SQL.claimNodeKey, [nodeKey, identityId, now])) > 0;
  }

  async pruneHistory(before: number): Promise<number> {
    return this.tx(
      async (c) =>
        (await this.changes(SQL.pruneConnections, [before], c)) +
        (await this.changes(SQL.prunePaths, [before], c)) +
        (await this.changes(SQL.pruneNodeKeys, [before], c)),
    );
  }

  async closeDanglingConnections(now: number, reason: string, replica: string): Promise<number> {
    return this.changes(SQL.endDangling, [now, reason, replica]);
  }

  async recordHistory(b: HistoryBatch): Promise<number[]> {
    return this.tx(async (c) => {
      let ids: number[] = [];
      if (b.connects.length > 0) {
        const r = b.connects;
        const rows = await this.all<{ id: number }>(SQL.insertConnections, [r.map((x) => x.identityId), r.map((x) => x.at), r.map((x) => x.remote), r.map((x) => x.replica)], c);
        ids = rows.map((x) => x.id).sort((x, y) => x - y);
      }
      if (b.disconnects.length > 0) {
        const r = b.disconnects;
        await c.query(SQL.endConnections, [r.map((x) => x.id), r.map((x) => x.at), r.map((x) => x.reason)]);
      }
      if (b.paths.length > 0) {
        const r = b.paths;
        await c.query(SQL.insertPaths, [r.map((x) => x.reporterId), r.map((x) => x.peerId), r.map((x) => x.path.kind), r.map((x) => (x.path.kind === 'direct' ? x.path.endpoint : null)), r.map((x) => x.at)]);
      }
      return ids;
    });
  }

  async connectionHistory(identityId: number, limit: number): Promise<ConnectionRecord[]> {
    return (await this.all<ConnectionRow>(SQL.connectionHistory, [identityId, limit])).map(toConnection);
  }

  async pathHistory(identityId: number, limit: number): Promise<PathRecord[]> {
    return (await this.all<PathRow>(SQL.pathHistory, [identityId, limit])).map((r) => toPathRecord(r, identityId));
  }

  async createSession(session: NewDashboardSession, max: number): Promise<void> {
    await this.tx(async (c) => {
      await c.query(SQL.pruneSessions, [session.createdAt]);
      await c.query(SQL.insertSession, [session.idHash, session.tokenId, session.csrf, session.createdAt, session.expiresAt]);
      await c.query(SQL.boundSessions, [max]);
    });
  }

  async liveSession(idHash: string, now: number): Promise<DashboardSession | undefined> {
    const row = await this.one<SessionRow>(SQL.liveSession, [idHash, now]);
    return row ? toSession(row) : undefined;
  }

  async endSession(idHash: string): Promise<void> {
    await this.pool.query(SQL.endSession, [idHash]);
  }

  async policyVersion(): Promise<number> {
    return (await this.one<{ value: number }>(SQL.policyVersion, []))?.value ?? 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Brings the schema up to date under an advisory lock: replicas starting together take turns,
 * and each migration commits with its row in schema_migrations, so a crash halfway leaves the
 * database at the last whole version and the next start goes on from there.
 */
async function migrate(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query(SQL.lock, [MIGRATION_LOCK]);
    try {
      await c.query(SQL.createMigrations);
      const current = (await c.query<{ v: number }>(SQL.appliedVersion)).rows[0]!.v;
      if (current > MIGRATIONS.length) {
        throw new Error(`the database is at schema version ${current}, newer than this program knows (${MIGRATIONS.length}); upgrade traverse`);
      }
      for (let v = current; v < MIGRATIONS.length; v++) {
        await c.query('BEGIN');
        try {
          await c.query(MIGRATIONS[v]!);
          await c.query(SQL.recordMigration, [v + 1, Date.now()]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${v + 1} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    } finally {
      await c.query(SQL.unlock, [MIGRATION_LOCK]).catch(() => undefined);
    }
  } finally {
    c.release();
  }
}

/** The error with the URL's password taken out of its message, wherever a library put it. */
function redactError(err: unknown, url: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  const clean = redactDatabaseUrl(message, url);
  if (err instanceof Error && clean === message) return err;
  return new Error(clean);
}

// The store's share of a peer connecting, on each engine: PostgreSQL (what several replicas
// share) against the embedded SQLite as the named peer, in the same run. One "connect" is what
// the server does for a peer joining and leaving: authenticate the token (hash lookup and its
// identity), record the connection, claim the node key, read the client's allow list, record the
// disconnect. Run with BENCH_CONCURRENCY connects in flight (peers arriving at once), several
// alternating rounds, median connects/s; plus the one-second policy poll's cost as a latency.
//
//   npm run bench:store          (BENCH_ROUNDS, BENCH_ROUND_MS, BENCH_CONCURRENCY; the defaults 5 x 1000 ms, 16)
//
// PostgreSQL is the throwaway test cluster (lab/postgres.ts: loopback, fsync off, so this is
// the cost of the protocol and the queries rather than of the disk), or TRAVERSE_TEST_DATABASE_URL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { postgresUnavailable, startTestPostgres } from '../lab/postgres.js';
import { openStore, type StoreLocation } from '../src/server/store/open.js';
import type { Store } from '../src/server/store/store.js';
import { generateToken, hashToken } from '../src/server/tokens.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const IDENTITIES = 200;

interface Prepared {
  readonly store: Store;
  readonly tokens: readonly string[];
}

async function prepare(location: StoreLocation): Promise<Prepared> {
  const store = await openStore(location);
  const tokens: string[] = [];
  const now = Date.now();
  for (let i = 0; i < IDENTITIES; i++) {
    const kind = i % 2 === 0 ? 'agent' : 'client';
    const identity = await store.ensureIdentity(kind, `peer-${i}`, now);
    if (kind === 'client') await store.allow(`peer-${i}`, [`peer-${i - 1}`], now);
    const secret = generateToken();
    await store.createToken(identity.id, hashToken(secret), now, null);
    tokens.push(secret);
  }
  return { store, tokens };
}

let serial = 0;

/** One peer joining and leaving, as the server's store calls go. */
async function connect(p: Prepared): Promise<void> {
  const n = serial++;
  const now = Date.now();
  const auth = await p.store.authenticate(hashToken(p.tokens[n % p.tokens.length]!), now);
  if (!auth) throw new Error('token refused');
  // The server writes history in batches (server/history.ts); one batch a row here, its worst case.
  const [id] = await p.store.recordHistory({ connects: [{ identityId: auth.identity.id, at: now, remote: '192.0.2.1:40000', replica: 'bench' }], disconnects: [], paths: [] });
  // A fresh key per connect, as client processes have; the agent's comes back the same.
  const key = auth.identity.kind === 'agent' ? `aa${auth.identity.id.toString(16).padStart(62, '0')}` : `cc${n.toString(16).padStart(62, '0')}`;
  if (!(await p.store.claimNodeKey(auth.identity.id, key, now))) throw new Error('key refused');
  if (auth.identity.kind === 'client') await p.store.allowedAgents(auth.identity.name);
  await p.store.recordHistory({ connects: [], disconnects: [{ id: id!, at: Date.now(), reason: 'disconnected: bench' }], paths: [] });
}

async function round(p: Prepared): Promise<number> {
  let done = 0;
  const until = performance.now() + ROUND_MS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await connect(p);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

async function pollLatencyMs(p: Prepared): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await p.store.policyVersion();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const missing = postgresUnavailable();
if (missing) {
  console.error(`bench:store needs PostgreSQL: ${missing}`);
  process.exit(1);
}
const pg = await startTestPostgres();
const dir = mkdtempSync(join(tmpdir(), 'traverse-bench-store-'));
try {
  const sqlite = await prepare({ dir });
  const postgres = await prepare({ url: await pg.createDatabase() });
  const rates = { sqlite: [] as number[], postgres: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternating, so a noisy moment of the shared machine hits both.
    rates.sqlite.push(await round(sqlite));
    rates.postgres.push(await round(postgres));
  }
  const s = median(rates.sqlite);
  const p = median(rates.postgres);
  const pollS = await pollLatencyMs(sqlite);
  const pollP = await pollLatencyMs(postgres);
  console.log(`store: a peer's connect and disconnect (authenticate, record, claim key, allow list, record end), ${CONCURRENCY} in flight, median of ${ROUNDS} x ${ROUND_MS} ms`);
  console.log(`  sqlite (embedded, the named peer)  ${s.toFixed(0).padStart(7)} connects/s`);
  console.log(`  postgres (loopback, fsync off)     ${p.toFixed(0).padStart(7)} connects/s   ratio ${(p / s).toFixed(2)}x`);
  console.log(`  policy poll (once a second per server): sqlite ${(pollS * 1000).toFixed(0)} us, postgres ${(pollP * 1000).toFixed(0)} us (${(pollP / pollS).toFixed(1)}x)`);
  await sqlite.store.close();
  await postgres.store.close();
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}

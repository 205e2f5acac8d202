// Two coordination-server replicas on one PostgreSQL: PEERS peers split across them (every agent on
// replica A, every client on replica B, so that every node update crosses replicas), node updates
// at RATE/s, delivery latency p50/p99 (target p99 < 200 ms) and server memory per peer (target
// < 20 KiB, mirrors of the other replica's nodes included). Named peers measured in the same run:
// - the same update load on ONE server holding all the peers (what replication adds to latency);
// - relayed throughput within one replica, against relayed throughput through the replica mesh;
// - the inter-replica bus: LISTEN/NOTIFY against polling a table (the design choice in README).
//
//   npm run bench:replicas                  # PEERS=10000 RATE=1000 SECONDS=10
//   PEERS=2000 SECONDS=5 npm run bench:replicas
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pg from 'pg';
import { startTestPostgres } from '../lab/postgres.js';
import { PostgresStore } from '../src/server/store/postgres.js';
import { generateToken, hashToken } from '../src/server/tokens.js';
import { encodeRelayFrame } from '../src/coordination/relay-frame.js';
import type { MemorySample } from './coordinator-server.js';
import { connectAll, forkServer, onNodeUpdates, sendAtRate, type BenchConn, type BenchIdentity, type ForkedServer } from './load.js';

const PEERS = Number(process.env.PEERS ?? 10_000);
const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 10);
const RELAY_SECONDS = Number(process.env.RELAY_SECONDS ?? 4);
const TARGET_BYTES_PER_PEER = 20 * 1024;
const TARGET_P99_MS = 200;
/** When set, a CPU profile of each server during the update phase is written there. */
const PROFILE_DIR = process.env.PROFILE_DIR;
/** When set, a heap snapshot of each server after the warm-up is written there (what a peer costs). */
const HEAP_SNAPSHOT_DIR = process.env.HEAP_SNAPSHOT_DIR;
const SERVER = fileURLToPath(new URL('./replica-server.js', import.meta.url));

type Server = ForkedServer;
type Identity = BenchIdentity;
type Conn = BenchConn;

const startServer = (mode: 'replica' | 'single', url: string): Promise<Server> => forkServer(SERVER, [mode, url]);

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nodeMsg = (c: Conn, updatedAt: number): string =>
  JSON.stringify({ type: 'node', node: { key: c.key, endpoints: ['198.51.100.7:41641', '10.1.2.3:41641'], preferredRelay: 'default', updatedAt }, proof: c.proof });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Makes the identities (agent wsN, client laptopN allowed to wsN) and their tokens. */
async function makeIdentities(url: string, pairs: number, prefix: string): Promise<{ agents: Identity[]; clients: Identity[] }> {
  const store = await PostgresStore.open(url);
  const agents: Identity[] = [];
  const clients: Identity[] = [];
  const now = Date.now();
  const make = async (i: number): Promise<void> => {
    for (const role of ['agent', 'client'] as const) {
      const name = role === 'agent' ? `${prefix}ws${i}` : `${prefix}laptop${i}`;
      const id = await store.ensureIdentity(role, name, now);
      if (role === 'client') await store.allow(name, [`${prefix}ws${i}`], now);
      const token = generateToken();
      await store.createToken(id.id, hashToken(token), now, null);
      (role === 'agent' ? agents : clients)[i] = { name, token, role };
    }
  };
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < pairs) await make(next++);
  }));
  await store.close();
  return { agents, clients };
}

/**
 * The connection history a server wrote for the connects of one run: rows, and rows ended. It
 * waits (up to 15 s) for the counts to settle, since history is written behind the peers' backs.
 */
async function historyRows(url: string, replica: string): Promise<{ rows: number; ended: number }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    let last = { rows: -1, ended: -1 };
    for (let i = 0; i < 30; i++) {
      const r = await db.query<{ rows: string; ended: string }>(
        'SELECT count(*) AS rows, count(disconnected_at) AS ended FROM connections WHERE replica = $1',
        [replica],
      );
      const now = { rows: Number(r.rows[0]!.rows), ended: Number(r.rows[0]!.ended) };
      if (now.rows === last.rows && now.ended === last.ended && now.rows === now.ended) return now;
      last = now;
      await sleep(500);
    }
    return last;
  } finally {
    await db.end();
  }
}

interface Busy {
  peers: number;
  mirrored: number;
  busy: number;
}

/**
 * Waits until the warm-up is over: every replica mirrors all of the other's nodes (`mirrored[i]`)
 * and every server's event loop has been nearly idle for a second (store writes of the connects,
 * mirroring, the tunnels' first node messages all done). Measuring before that puts the warm-up's
 * work into the first updates' latency. Returns how long it took (ms).
 */
async function settle(servers: Server[], mirrored: number[], timeoutMs = 120_000): Promise<number> {
  const start = performance.now();
  let quiet = 0;
  for (;;) {
    await sleep(500);
    const now = await Promise.all(servers.map((s) => s.ask<Busy>('peers')));
    const done = now.every((x, i) => x.mirrored >= mirrored[i]! && x.busy < 0.1);
    quiet = done ? quiet + 1 : 0;
    if (quiet >= 2) return performance.now() - start;
    if (performance.now() - start > timeoutMs) {
      process.stdout.write(`warm-up not over after ${timeoutMs / 1000} s (${JSON.stringify(now)}); measuring anyway\n`);
      return performance.now() - start;
    }
  }
}

interface LoadResult {
  sent: number;
  delivered: number;
  p50: number;
  p99: number;
  max: number;
  settledP99: number;
  perPeer: number[];
  /** What the RSS per peer is made of: V8's heap (used, reserved, its young generation) and memory outside it. */
  detail: { heapUsed: number; heapTotal: number; newSpace: number; external: number }[];
  /** How long the warm-up (connects, tunnels, mirroring) took to be over (ms). */
  warmUpMs: number;
  worstBySecond: number[];
  /** The machine's 1-minute load average when the update phase began and ended. */
  load: [number, number];
  /** The bench process's own event-loop delay p99 during the update phase: its share of the latency. */
  benchLagP99: number;
}

/** Agents on `a`, clients on `b` (may be the same server): tunnels, then RATE updates/s for SECONDS. */
async function updateLoad(label: string, a: Server, b: Server, ids: { agents: Identity[]; clients: Identity[] }): Promise<LoadResult> {
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  /** The same, for updates sent after the first two seconds: a stall of the machine at the start shows up in one only. */
  const settled: number[] = [];
  let settledFrom = Infinity;
  /** The worst latency of the updates sent in each second of the update phase: a stall shows as one bad second. */
  const worstBySecond: number[] = [];
  let phaseStart = Infinity;
  const onMessage = onNodeUpdates(sentAt, (t0, ms) => {
    latencies.push(ms);
    const second = Math.floor((t0 - phaseStart) / 1000);
    worstBySecond[second] = Math.max(worstBySecond[second] ?? 0, ms);
    if (t0 >= settledFrom) settled.push(ms);
  });
  const servers = a === b ? [a] : [a, b];
  const before = await Promise.all(servers.map((s) => s.measure()));
  const agentConns = await connectAll(a.port, ids.agents, onMessage);
  const clientConns = await connectAll(b.port, ids.clients, onMessage);
  for (const c of agentConns) c.ws.send(nodeMsg(c, 1));
  await sleep(1000);
  for (const [i, c] of clientConns.entries()) {
    c.ws.send(nodeMsg(c, 1));
    c.ws.send(JSON.stringify({ type: 'tunnel', agent: ids.agents[i]!.name }));
  }
  const warmUp = await settle(servers, a === b ? [0] : [ids.clients.length, ids.agents.length]);
  const after = await Promise.all(servers.map((s) => s.measure()));
  if (HEAP_SNAPSHOT_DIR) await Promise.all(servers.map((s, i) => s.ask(`heap-snapshot ${HEAP_SNAPSHOT_DIR}/${label}-${i === 0 ? 'a' : 'b'}.heapsnapshot`)));
  // Memory per peer on each server: what it holds for its own peers and its mirrors of the others.
  const perServerPeers = a === b ? [PEERS] : [ids.agents.length, ids.clients.length];
  const perPeer = servers.map((_, i) => (after[i]!.rss - before[i]!.rss) / perServerPeers[i]!);
  const delta = (i: number, k: keyof MemorySample): number => (after[i]![k] - before[i]![k]) / perServerPeers[i]!;
  const detail = servers.map((_, i) => ({ heapUsed: delta(i, 'heapUsed'), heapTotal: delta(i, 'heapTotal'), newSpace: delta(i, 'newSpace'), external: delta(i, 'external') }));

  let seq = 2;
  let sent = 0;
  if (PROFILE_DIR) await Promise.all(servers.map((s) => s.ask('profile-start')));
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const loadBefore = loadavg()[0]!;
  phaseStart = performance.now();
  settledFrom = phaseStart + 2000;
  await sendAtRate(RATE, SECONDS, 1500, () => {
    const c = agentConns[sent % agentConns.length]!;
    const id = seq++;
    sentAt.set(id, performance.now());
    c.ws.send(nodeMsg(c, id));
    sent++;
  });
  lag.disable();
  const loadAfter = loadavg()[0]!;
  if (PROFILE_DIR) await Promise.all(servers.map((s, i) => s.ask(`profile-stop ${PROFILE_DIR}/${label}-${i === 0 ? 'a' : 'b'}.cpuprofile`)));
  latencies.sort((x, y) => x - y);
  settled.sort((x, y) => x - y);
  for (const c of [...agentConns, ...clientConns]) c.ws.terminate();
  await sleep(1000);
  return {
    sent,
    delivered: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    settledP99: percentile(settled, 99),
    perPeer,
    detail,
    warmUpMs: warmUp,
    worstBySecond: Array.from(worstBySecond, (x) => Math.round(x ?? 0)),
    load: [loadBefore, loadAfter],
    benchLagP99: lag.percentile(99) / 1e6,
  };
}

/** Relayed bytes/s from a client on `from` to its agent on `to`, 1200-byte datagrams, sender-paced by its socket buffer. */
async function relayThroughput(from: Server, to: Server, ids: { agents: Identity[]; clients: Identity[] }): Promise<{ bytesPerSec: number; loss: number }> {
  const [agent] = await connectAll(to.port, ids.agents.slice(0, 1), () => undefined);
  const [client] = await connectAll(from.port, ids.clients.slice(0, 1), () => undefined);
  agent!.ws.send(nodeMsg(agent!, 1));
  await sleep(500);
  client!.ws.send(nodeMsg(client!, 1));
  client!.ws.send(JSON.stringify({ type: 'tunnel', agent: ids.agents[0]!.name }));
  await sleep(1000);
  const frame = encodeRelayFrame(agent!.key, Buffer.alloc(1200, 7));
  let sentBytes = 0;
  const start = performance.now();
  const end = start + RELAY_SECONDS * 1000;
  while (performance.now() < end) {
    // Keep about 256 KiB in flight from the sender, like a congestion-controlled stream would.
    while (client!.ws.bufferedAmount < 256 * 1024 && performance.now() < end) {
      client!.ws.send(frame);
      sentBytes += 1200;
    }
    await new Promise((r) => setImmediate(r));
  }
  await sleep(500);
  const seconds = (performance.now() - start - 500) / 1000;
  const got = agent!.received;
  agent!.ws.terminate();
  client!.ws.terminate();
  return { bytesPerSec: got / seconds, loss: 1 - got / sentBytes };
}

/** The bus: RATE messages/s from one connection to another, LISTEN/NOTIFY vs a table polled every pollMs. */
async function busLatency(url: string, how: 'notify' | number): Promise<{ p50: number; p99: number; queriesPerSec: number }> {
  // A pool: the writer sends RATE/s without waiting for each answer.
  const writer = new pg.Pool({ connectionString: url, max: 4 });
  writer.on('error', () => undefined); // an idle connection ended by the database's shutdown
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  await writer.query('CREATE TABLE IF NOT EXISTS bench_bus (id bigserial PRIMARY KEY, payload text NOT NULL)');
  const sentAt = new Map<number, number>();
  const lat: number[] = [];
  const got = (payload: string): void => {
    const t0 = sentAt.get(Number(payload));
    if (t0 !== undefined) lat.push(performance.now() - t0);
  };
  let readerQueries = 0;
  let poller: NodeJS.Timeout | undefined;
  let pollBusy = (): boolean => false;
  if (how === 'notify') {
    reader.on('notification', (n) => got(n.payload ?? ''));
    await reader.query('LISTEN bench_bus');
  } else {
    let last = Number((await reader.query<{ m: string | null }>('SELECT max(id) AS m FROM bench_bus')).rows[0]!.m ?? 0);
    let busy = false;
    pollBusy = () => busy;
    poller = setInterval(() => {
      if (busy) return;
      busy = true;
      readerQueries++;
      reader
        .query<{ id: string; payload: string }>('SELECT id, payload FROM bench_bus WHERE id > $1 ORDER BY id', [last])
        .then((r) => {
          for (const row of r.rows) {
            last = Number(row.id);
            got(row.payload);
          }
        })
        .finally(() => (busy = false));
    }, how);
  }
  const seconds = 3;
  let seq = 0;
  await sendAtRate(RATE, seconds, 500, () => {
    const id = ++seq;
    sentAt.set(id, performance.now());
    if (how === 'notify') void writer.query('SELECT pg_notify($1, $2)', ['bench_bus', String(id)]);
    else void writer.query('INSERT INTO bench_bus (payload) VALUES ($1)', [String(id)]);
  });
  if (poller) clearInterval(poller);
  while (pollBusy()) await sleep(5);
  await writer.end();
  await reader.end();
  lat.sort((x, y) => x - y);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), queriesPerSec: readerQueries / seconds };
}

async function main(): Promise<void> {
  const started = performance.now();
  const pairs = Math.floor(PEERS / 2);
  process.stdout.write(`replicas bench: ${PEERS} peers (${pairs} agents on replica A, ${pairs} clients on replica B, one tunnel each), ${RATE} updates/s for ${SECONDS} s\n`);
  const postgres = await startTestPostgres();
  try {
    const url = await postgres.createDatabase();
    const ids = await makeIdentities(url, pairs, '');
    const relayIds = await makeIdentities(url, 2, 'relay-');
    process.stdout.write(`identities made in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);

    // Named peer first: one server, every peer on it.
    const single = await startServer('single', url);
    const one = await updateLoad('single', single, single, ids);
    const historyOne = await historyRows(url, ''); // a lone server's records carry no replica name
    const relayLocalSingle = await relayThroughput(single, single, relayIds);
    single.child.kill();
    await sleep(500);

    const a = await startServer('replica', url);
    const b = await startServer('replica', url);
    for (;;) {
      const [pa, pb] = await Promise.all([a.ask<{ peers: number }>('peers'), b.ask<{ peers: number }>('peers')]);
      if (pa.peers === 1 && pb.peers === 1) break;
      await sleep(200);
    }
    await sleep(500); // mesh links up
    process.stdout.write(`replica A is pid ${a.child.pid}, replica B pid ${b.child.pid} (their warnings, if any, name them)\n`);
    const two = await updateLoad('replicas', a, b, ids);
    const history = await Promise.all([a, b].map((s) => historyRows(url, `bench-${s.child.pid}`)));
    const relayMesh = await relayThroughput(b, a, relayIds);
    const relayLocal = await relayThroughput(a, a, relayIds);
    a.child.kill();
    b.child.kill();

    const busNotify = await busLatency(url, 'notify');
    const busPoll100 = await busLatency(url, 100);
    const busPoll10 = await busLatency(url, 10);

    const mb = (x: number): string => `${((x * 8) / 1e6).toFixed(0)} Mbit/s`;
    const worst = Math.max(...two.perPeer);
    const lines = [
      `updates across replicas: ${two.sent} sent, ${two.delivered} delivered (${((two.delivered / Math.max(1, two.sent)) * 100).toFixed(1)}%)`,
      `latency across replicas: p50 ${two.p50.toFixed(2)} ms, p99 ${two.p99.toFixed(2)} ms, max ${two.max.toFixed(2)} ms  (target p99 < ${TARGET_P99_MS} ms: ${(two.p99 / TARGET_P99_MS).toFixed(3)}x of target)`,
      `p99 after the first 2 s: across replicas ${two.settledP99.toFixed(2)} ms, one server ${one.settledP99.toFixed(2)} ms`,
      `warm-up (connects, tunnels, mirroring) over after: ${(two.warmUpMs / 1000).toFixed(1)} s across replicas, ${(one.warmUpMs / 1000).toFixed(1)} s one server (measured from then on)`,
      `worst latency per second of updates (ms): across replicas ${two.worstBySecond.join(' ')}; one server ${one.worstBySecond.join(' ')}`,
      `machine load average during the updates: across replicas ${two.load.map((x) => x.toFixed(1)).join(' -> ')}, one server ${one.load.map((x) => x.toFixed(1)).join(' -> ')} (2 cores)`,
      `bench process event-loop delay p99 while updating: ${two.benchLagP99.toFixed(1)} ms across replicas, ${one.benchLagP99.toFixed(1)} ms one server (the clients' own share of the latency)`,
      `latency on one server:   p50 ${one.p50.toFixed(2)} ms, p99 ${one.p99.toFixed(2)} ms  (across replicas = ${(two.p50 / one.p50).toFixed(2)}x p50, ${(two.p99 / one.p99).toFixed(2)}x p99 of one server)`,
      `memory per peer:         replica A ${kib(two.perPeer[0]!)}, replica B ${kib(two.perPeer[1]!)} RSS (own peers + mirrors of the other's; target < 20 KiB: ${(worst / TARGET_BYTES_PER_PEER).toFixed(2)}x of target); one server ${kib(one.perPeer[0]!)}`,
      `connection history:      replica A ${history[0]!.rows} rows for ${pairs} connects (${history[0]!.ended} ended), replica B ${history[1]!.rows} rows for ${pairs} connects (${history[1]!.ended} ended); one server ${historyOne.rows} rows for ${PEERS} connects (${historyOne.ended} ended)`,
      `memory detail (KiB per own peer, after GC): ${two.detail.map((d, i) => `replica ${'AB'[i]} heap used ${kib(d.heapUsed)}, heap reserved ${kib(d.heapTotal)} (young generation ${kib(d.newSpace)}), external ${kib(d.external)}`).join('; ')}`,
      `relay through the mesh:  ${mb(relayMesh.bytesPerSec)} (loss ${(relayMesh.loss * 100).toFixed(1)}%)`,
      `relay within a replica:  ${mb(relayLocal.bytesPerSec)} (loss ${(relayLocal.loss * 100).toFixed(1)}%); one lone server ${mb(relayLocalSingle.bytesPerSec)}  (mesh = ${(relayMesh.bytesPerSec / relayLocal.bytesPerSec).toFixed(2)}x within a replica)`,
      `bus LISTEN/NOTIFY:       p50 ${busNotify.p50.toFixed(2)} ms, p99 ${busNotify.p99.toFixed(2)} ms, 0 reader queries/s`,
      `bus polling every 100ms: p50 ${busPoll100.p50.toFixed(2)} ms, p99 ${busPoll100.p99.toFixed(2)} ms, ${busPoll100.queriesPerSec.toFixed(0)} reader queries/s  (= ${(busPoll100.p50 / busNotify.p50).toFixed(1)}x p50 of NOTIFY)`,
      `bus polling every 10ms:  p50 ${busPoll10.p50.toFixed(2)} ms, p99 ${busPoll10.p99.toFixed(2)} ms, ${busPoll10.queriesPerSec.toFixed(0)} reader queries/s  (= ${(busPoll10.p50 / busNotify.p50).toFixed(1)}x p50 of NOTIFY)`,
      `total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await postgres.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

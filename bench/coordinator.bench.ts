// Coordination server at scale: N peers connected to one server process (a child, so that its
// memory is measured alone), then node updates fanned out at a fixed rate with delivery latency.
// Targets: 10,000 peers under 20 KiB of server memory each; p99 fan-out latency under 100 ms
// at 1,000 updates/s. The named peer: a bare `ws` server holding the same connections (the
// floor any WebSocket coordinator pays), measured in the same run.
//
//   npm run bench:coordinator                # PEERS=10000 RATE=1000 SECONDS=10 by default
//   PEERS=2000 SECONDS=5 npm run bench:coordinator
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../src/server/store/sqlite.js';
import { generateToken, hashToken } from '../src/server/tokens.js';
import { connectAll, forkServer, onNodeUpdates, sendAtRate, type BenchConn, type ForkedServer } from './load.js';

const PEERS = Number(process.env.PEERS ?? 10_000);
const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 10);
const TARGET_BYTES_PER_PEER = 20 * 1024;
const TARGET_P99_MS = 100;
const SERVER = fileURLToPath(new URL('./coordinator-server.js', import.meta.url));

const startServer = (mode: 'traverse' | 'bare', dir: string): Promise<ForkedServer> => forkServer(SERVER, [mode, dir]);
type Conn = BenchConn;

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

async function bareFloor(): Promise<{ rss: number; heap: number }> {
  const server = await startServer('bare', '');
  const before = await server.measure();
  const conns = await connectAll(server.port, Array.from({ length: PEERS }, (_, i) => ({ name: `p${i}`, token: 'x', role: 'client' as const })), () => undefined);
  await new Promise((r) => setTimeout(r, 500));
  const after = await server.measure();
  for (const c of conns) c.ws.terminate();
  server.child.kill();
  return { rss: (after.rss - before.rss) / PEERS, heap: (after.heapUsed - before.heapUsed + after.external - before.external) / PEERS };
}

async function main(): Promise<void> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'traverse-bench-'));
  const half = Math.floor(PEERS / 2);
  process.stdout.write(`coordinator bench: ${PEERS} peers (${half} agents, ${PEERS - half} clients, one tunnel each), ${RATE} updates/s for ${SECONDS} s\n`);

  // Identities and tokens go straight into the store before the server opens it.
  const store = SqliteStore.open(dir);
  const agents: { name: string; token: string; role: 'agent' | 'client' }[] = [];
  const clients: { name: string; token: string; role: 'agent' | 'client' }[] = [];
  const now = Date.now();
  for (let i = 0; i < PEERS; i++) {
    const agent = i < half;
    const name = agent ? `ws${i}` : `laptop${i - half}`;
    const id = await store.ensureIdentity(agent ? 'agent' : 'client', name, now);
    if (!agent) await store.allow(name, [`ws${i - half}`], now);
    const token = generateToken();
    await store.createToken(id.id, hashToken(token), now, null);
    (agent ? agents : clients).push({ name, token, role: agent ? 'agent' : 'client' });
  }
  await store.close();

  const server = await startServer('traverse', dir);
  const before = await server.measure();

  // Delivery latency: every update carries a unique updatedAt; its send time is kept here.
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const onMessage = onNodeUpdates(sentAt, (_t0, ms) => latencies.push(ms));
  const t0 = performance.now();
  const agentConns = await connectAll(server.port, agents, onMessage);
  const clientConns = await connectAll(server.port, clients, onMessage);
  const connectSeconds = (performance.now() - t0) / 1000;
  const nodeMsg = (c: Conn, updatedAt: number): string =>
    JSON.stringify({ type: 'node', node: { key: c.key, endpoints: ['198.51.100.7:41641', '10.1.2.3:41641'], preferredRelay: 'default', updatedAt }, proof: c.proof });
  for (const c of agentConns) c.ws.send(nodeMsg(c, 1));
  for (const [i, c] of clientConns.entries()) {
    c.ws.send(nodeMsg(c, 1));
    c.ws.send(JSON.stringify({ type: 'tunnel', agent: agents[i]!.name }));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = await server.measure();
  const rssPerPeer = (after.rss - before.rss) / PEERS;
  const heapPerPeer = (after.heapUsed - before.heapUsed + after.external - before.external) / PEERS;

  // Fan-out at RATE updates/s, round-robin over the agents, each to its client.
  let seq = 2;
  let sent = 0;
  await sendAtRate(RATE, SECONDS, 1000, () => {
    const c = agentConns[sent % agentConns.length]!;
    const id = seq++;
    sentAt.set(id, performance.now());
    c.ws.send(nodeMsg(c, id));
    sent++;
  });
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const p50 = pct(50);
  const p99 = pct(99);
  const final = await server.measure();
  for (const c of [...agentConns, ...clientConns]) c.ws.terminate();
  server.child.kill();

  const floor = await bareFloor();
  rmSync(dir, { recursive: true, force: true });

  const lines = [
    `connect:  ${PEERS} peers in ${connectSeconds.toFixed(1)} s (${Math.round(PEERS / connectSeconds)} connections/s)`,
    `memory:   server RSS ${mib(before.rss)} -> ${mib(after.rss)}, heap+external ${mib(before.heapUsed + before.external)} -> ${mib(after.heapUsed + after.external)}`,
    `per peer: RSS ${kib(rssPerPeer)}, heap+external ${kib(heapPerPeer)}  (target < 20 KiB: ${(rssPerPeer / TARGET_BYTES_PER_PEER).toFixed(2)}x of target)`,
    `floor:    bare ws server with the same connections: RSS ${kib(floor.rss)}/peer, heap+external ${kib(floor.heap)}/peer` +
      `  (traverse = ${(rssPerPeer / floor.rss).toFixed(2)}x RSS of bare ws)`,
    `fan-out:  ${sent} updates sent, ${latencies.length} delivered (${((latencies.length / Math.max(1, sent)) * 100).toFixed(1)}%), ` +
      `${Math.round(latencies.length / SECONDS)} deliveries/s`,
    `latency:  p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(2)} ms` +
      `  (target p99 < ${TARGET_P99_MS} ms: ${(p99 / TARGET_P99_MS).toFixed(3)}x of target)`,
    `after fan-out: server RSS ${mib(final.rss)}`,
    `total bench time ${((performance.now() - started) / 1000).toFixed(0)} s`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

// The relay's own cost, on loopback: a `traverse server` process (--relay-rate 0) between two
// nodes in this process, and what it takes of the CPU per GB it carries, measured from its
// /proc/PID/stat in the same run for each way of relaying:
//
//   datagrams, format 1   one WebSocket frame per 1200-byte datagram (what old nodes send)
//   datagrams, format 2   relay batches of 32 datagrams a frame (coordination/relay-batch.ts; a node's
//                         batcher puts up to 64 in 64 KiB, as many as one turn of its event loop has)
//   relay lane            a byte stream spliced by the server (coordination/relay-lane.ts)
//   relay lane, TLS       the same through a server with --tls-cert (a throw-away self-signed
//                         certificate): the server decrypts and encrypts what it splices
//
// The sender keeps at most 1 MiB queued on its socket and 512 datagrams in flight; the receiver
// counts what arrives (the server drops datagrams for a receiver that does not keep up, so
// "delivered" may be less than sent). Ratios are against format 1 in the same run.
//
//   npm run bench:relay    (BENCH_DATAGRAM_BYTES=268435456, BENCH_LANE_BYTES=1073741824, BENCH_RUNS=3)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { startServerProcess, type Running } from '../test/helpers/processes.js';
import { createToken } from '../lab/peers.js';
import { RawPeer, randomKey, sampleNode } from '../test/server/helpers.js';
import { encodeRelayFrame } from '../src/coordination/relay-frame.js';
import { encodeRelayBatch, RELAY_BATCH_FORMAT, RELAY_FRAMES_HEADER } from '../src/coordination/relay-batch.js';
import { dialRelayLane } from '../src/node/relay-lane-dial.js';
import { cpuSeconds } from './cpu.js';

const DATAGRAM_BYTES = Number(process.env.BENCH_DATAGRAM_BYTES ?? 256 << 20);
const LANE_BYTES = Number(process.env.BENCH_LANE_BYTES ?? 1 << 30);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DATAGRAM = 1200;
const BATCH = 32;
const MAX_QUEUED = 1 << 20;
/**
 * Datagrams sent and not yet received at most: about 600 KB, within what the server queues for a
 * receiver (1 MiB) before it drops, so that both formats deliver everything and the CPU per GB
 * compares like with like.
 */
const WINDOW = 512;

/** The server's user + system CPU so far (ms). */
const cpuMs = (pid: number): number => cpuSeconds([pid]) * 1000;

interface Result {
  gbit: number;
  cpuSecPerGB: number;
  delivered: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

interface Server {
  /** ws:// or wss:// */
  readonly url: string;
  readonly dataDir: string;
  readonly process: Running;
  /** The certificate to trust, for a TLS server. */
  readonly ca?: string[];
}

/** A server on a free loopback port (its URL read from its banner), its data in a folder of its own. */
async function startServer(tls: boolean): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'traverse-bench-relay-'));
  const args = ['--relay-rate', '0'];
  let ca: string[] | undefined;
  if (tls) {
    const cert = join(dataDir, 'cert.pem');
    const key = join(dataDir, 'key.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
    args.push('--tls-cert', cert, '--tls-key', key);
    ca = [readFileSync(cert, 'utf8')];
  }
  const { server, url } = await startServerProcess(dataDir, args, { TRAVERSE_LOG_LEVEL: 'warn' });
  return { url: url.replace(/^http/, 'ws').replace(/\/$/, ''), dataDir, process: server, ...(ca ? { ca } : {}) };
}

interface Pair {
  agent: RawPeer;
  client: RawPeer;
  agentKey: string;
  clientKey: string;
  agentToken: string;
  clientToken: string;
}

async function pair(server: Server, name: string, batches: boolean): Promise<Pair> {
  const agentToken = await createToken(server.dataDir, ['--agent', `${name}-ws`]);
  const clientToken = await createToken(server.dataDir, ['--client', `${name}-laptop`, '--allow', `${name}-ws`]);
  const headers: Record<string, string> = batches ? { [RELAY_FRAMES_HEADER]: String(RELAY_BATCH_FORMAT) } : {};
  const options = server.ca ? { ca: server.ca } : {};
  const agent = await RawPeer.connect(`${server.url}/api/v1/coordinate`, agentToken, 'agent', headers, options);
  const client = await RawPeer.connect(`${server.url}/api/v1/coordinate`, clientToken, 'client', headers, options);
  const agentKey = randomKey();
  const clientKey = randomKey();
  agent.send({ type: 'node', node: sampleNode(agentKey) });
  client.send({ type: 'node', node: sampleNode(clientKey) });
  client.send({ type: 'tunnel', agent: `${name}-ws` });
  await client.waitFor((m) => m.type === 'peers');
  await agent.waitFor((m) => m.type === 'peers');
  return { agent, client, agentKey, clientKey, agentToken, clientToken };
}

/** Sends `bytes` of datagrams client -> agent, as format 1 frames or format 2 batches. */
async function datagrams(p: Pair, pid: number, batches: boolean): Promise<Result> {
  const total = Math.floor(DATAGRAM_BYTES / DATAGRAM);
  const payload = randomBytes(DATAGRAM);
  const frame = batches ? encodeRelayBatch(p.agentKey, Array.from({ length: BATCH }, () => payload)) : encodeRelayFrame(p.agentKey, payload);
  const perFrame = batches ? BATCH : 1;
  let received = 0;
  let lastAt = performance.now();
  const sink = p.agent.ws;
  sink.removeAllListeners('message');
  sink.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    received += batches ? Math.floor((data.length - 32) / (DATAGRAM + 2)) : 1;
    lastAt = performance.now();
  });
  const ws = p.client.ws;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < total && ws.bufferedAmount < MAX_QUEUED && sent - received < WINDOW) {
        ws.send(frame, { binary: true });
        sent += perFrame;
      }
      if (sent < total) setImmediate(pump);
      else resolve();
    };
    pump();
  });
  // Done when everything arrived, or nothing more has for 500 ms (the rest was dropped).
  while (received < sent && performance.now() - lastAt < 500) await new Promise((r) => setTimeout(r, 5));
  const ms = lastAt - t0;
  const cpu = cpuMs(pid) - cpu0;
  const bytes = received * DATAGRAM;
  return { gbit: (bytes * 8) / (ms / 1000) / 1e9, cpuSecPerGB: cpu / 1000 / (bytes / 1e9), delivered: received / sent };
}

/** Pushes LANE_BYTES through a relay lane between the pair, client -> agent. */
async function lane(p: Pair, server: Server): Promise<Result> {
  const pid = server.process.proc.pid!;
  const id = randomBytes(16);
  const dial = (role: 'agent' | 'client'): Promise<Socket> =>
    dialRelayLane({
      server: server.url,
      ...(server.ca ? { trust: { ca: server.ca, caFile: 'the bench certificate' } } : {}),
      token: role === 'agent' ? p.agentToken : p.clientToken,
      role,
      nodeKey: role === 'agent' ? p.agentKey : p.clientKey,
      peerKey: role === 'agent' ? p.clientKey : p.agentKey,
      lane: id,
      timeoutMs: 10_000,
    });
  const [a, c] = await Promise.all([dial('agent'), dial('client')]);
  const block = randomBytes(1 << 20);
  let received = 0;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const done = new Promise<number>((resolve) => {
    a.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= LANE_BYTES) resolve(performance.now());
    });
    a.resume();
  });
  let sent = 0;
  const write = (): void => {
    while (sent < LANE_BYTES) {
      sent += block.length;
      if (!c.write(block)) return void c.once('drain', write);
    }
  };
  write();
  const t1 = await done;
  const cpu = cpuMs(pid) - cpu0;
  a.destroy();
  c.destroy();
  return { gbit: (received * 8) / ((t1 - t0) / 1000) / 1e9, cpuSecPerGB: cpu / 1000 / (received / 1e9), delivered: 1 };
}

async function main(): Promise<void> {
  const servers: Server[] = [];
  try {
    const server = await startServer(false);
    servers.push(server);
    const tlsServer = await startServer(true);
    servers.push(tlsServer);
    const pid = server.process.proc.pid!;
    const f1 = await pair(server, 'f1', false);
    const f2 = await pair(server, 'f2', true);
    const overTls = await pair(tlsServer, 'tls', true);
    const rows: Record<string, Result[]> = {
      'datagrams, format 1 (a frame each)': [],
      [`datagrams, format 2 (batches of ${BATCH})`]: [],
      'relay lane': [],
      'relay lane, server with TLS': [],
    };
    const keys = Object.keys(rows);
    for (let i = 0; i < RUNS; i++) {
      rows[keys[0]!]!.push(await datagrams(f1, pid, false));
      rows[keys[1]!]!.push(await datagrams(f2, pid, true));
      rows[keys[2]!]!.push(await lane(f2, server));
      rows[keys[3]!]!.push(await lane(overTls, tlsServer));
    }
    const base = rows[keys[0]!]!;
    const baseCpu = median(base.map((r) => r.cpuSecPerGB));
    const baseG = median(base.map((r) => r.gbit));
    console.log(`the relay on loopback, server at --relay-rate 0: ${RUNS} runs each, median; Node ${process.version}`);
    console.log(`datagrams: ${(DATAGRAM_BYTES / 2 ** 20).toFixed(0)} MiB of ${DATAGRAM}-byte datagrams; relay lane: ${(LANE_BYTES / 2 ** 20).toFixed(0)} MiB`);
    const w = Math.max(...keys.map((k) => k.length));
    for (const k of keys) {
      const rs = rows[k]!;
      const g = median(rs.map((r) => r.gbit));
      const cpu = median(rs.map((r) => r.cpuSecPerGB));
      const delivered = Math.min(...rs.map((r) => r.delivered));
      console.log(
        `${k.padEnd(w)}  ${g.toFixed(2).padStart(6)} Gbit/s (runs ${rs.map((r) => r.gbit.toFixed(2)).join(', ')})  server ${cpu.toFixed(2).padStart(5)} CPU s/GB` +
          `  delivered >= ${(delivered * 100).toFixed(0)}%  ${(g / baseG).toFixed(2)}x the rate, ${(cpu / baseCpu).toFixed(2)}x the CPU/GB of format 1`,
      );
    }
    for (const p of [f1, f2, overTls]) {
      p.agent.ws.close();
      p.client.ws.close();
    }
  } finally {
    for (const s of servers) {
      await s.process.stop();
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);

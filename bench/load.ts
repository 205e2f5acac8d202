// Pieces the coordinator benchmarks share: servers forked so that their memory is measured alone
// (and the child's side of that measurement), peers connected by the thousand, and a sender paced
// to a fixed rate.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import WebSocket from 'ws';
import { PROTOCOL_PATH, ROLE_HEADER, type ServerMessage } from '../src/coordination/protocol.js';
import { keyProof } from '../src/coordination/key-proof.js';
import { NodeKey } from '../src/identity/node-key.js';
import type { MemorySample } from './coordinator-server.js';

export interface ForkedServer {
  readonly child: ChildProcess;
  readonly port: number;
  measure(): Promise<MemorySample>;
  /** Sends `what` over IPC and resolves with the child's next message. */
  ask<T>(what: string): Promise<T>;
}

/** Forks `script` with --expose-gc and waits for the port it reports. */
export async function forkServer(script: string, args: string[]): Promise<ForkedServer> {
  const child = fork(script, args, { execArgv: ['--expose-gc'], env: { ...process.env, TRAVERSE_LOG_LEVEL: 'warn' } });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const ask = <T>(what: string): Promise<T> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as T));
      child.send(what);
    });
  return { child, port, ask, measure: () => ask<MemorySample>('measure') };
}

export interface BenchIdentity {
  readonly name: string;
  readonly token: string;
  readonly role: 'agent' | 'client';
}

export interface BenchConn {
  readonly ws: WebSocket;
  readonly name: string;
  readonly key: string;
  /** The key proof for this connection's challenge (the server takes a key only with it). */
  proof: string;
  /** Relay payload bytes received. */
  received: number;
}

/** Opens the connections, `concurrency` at a time, from 127.0.0.1..4 so ports do not run out. */
export async function connectAll(port: number, ids: readonly BenchIdentity[], onMessage: (c: BenchConn, m: ServerMessage) => void, concurrency = 200): Promise<BenchConn[]> {
  const conns: BenchConn[] = new Array(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      const t = ids[i]!;
      const ws = new WebSocket(`ws://127.0.0.1:${port}${PROTOCOL_PATH}`, {
        headers: { authorization: `Bearer ${t.token}`, [ROLE_HEADER]: t.role },
        perMessageDeflate: false,
        localAddress: `127.0.0.${1 + (i % 4)}`,
      });
      const nodeKey = NodeKey.generate();
      const c: BenchConn = { ws, name: t.name, key: nodeKey.publicHex, proof: '', received: 0 };
      conns[i] = c;
      await new Promise<void>((resolve, reject) => {
        ws.once('message', (data: Buffer) => {
          const config = JSON.parse(data.toString()) as ServerMessage;
          // The bare floor server sends a stand-in config without a challenge.
          if (config.type === 'config' && config.challenge) c.proof = keyProof(nodeKey.sharedSecret(Buffer.from(config.challenge.key, 'hex')), config.challenge.nonce, c.key);
          resolve();
        });
        ws.once('error', reject);
      });
      ws.on('message', (data: Buffer, binary: boolean) => {
        if (binary) c.received += data.length - 32;
        else onMessage(c, JSON.parse(data.toString()) as ServerMessage);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return conns;
}

/** Calls `send` RATE times a second (in 10 ms ticks) for `seconds`, then waits `settleMs`. */
export function sendAtRate(rate: number, seconds: number, settleMs: number, send: () => void): Promise<void> {
  const tickMs = 10;
  const perTick = rate / (1000 / tickMs);
  let owed = 0;
  return new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      owed += perTick;
      while (owed >= 1) {
        owed -= 1;
        send();
      }
    }, tickMs);
    setTimeout(() => {
      clearInterval(timer);
      setTimeout(resolve, settleMs); // let the last ones arrive
    }, seconds * 1000);
  });
}

/**
 * In a forked server: answers 'measure' with its memory after two full collections,
 * 'profile-start' / 'profile-stop FILE' with a CPU profile of what happened in between (written
 * to FILE, readable in Chrome's DevTools), so that a bench can profile one phase of its run, and
 * 'heap-snapshot FILE' with a heap snapshot (what the memory per peer is made of).
 */
export function answerMemoryMeasurements(): void {
  let profiler: Session | null = null;
  process.on('message', (m) => {
    if (m === 'profile-start') {
      profiler = new Session();
      profiler.connect();
      profiler.post('Profiler.enable', () => profiler!.post('Profiler.start', () => process.send!({ ok: true })));
      return;
    }
    if (typeof m === 'string' && m.startsWith('profile-stop ') && profiler) {
      const session = profiler;
      profiler = null;
      session.post('Profiler.stop', (err, res) => {
        if (!err) writeFileSync(m.slice('profile-stop '.length), JSON.stringify(res.profile));
        session.disconnect();
        process.send!({ ok: !err });
      });
      return;
    }
    if (typeof m === 'string' && m.startsWith('heap-snapshot ')) {
      writeHeapSnapshot(m.slice('heap-snapshot '.length));
      process.send!({ ok: true });
      return;
    }
    if (m !== 'measure') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
    process.send!({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, heapTotal: u.heapTotal, newSpace } satisfies MemorySample);
  });
}

/**
 * Delivery latency of node updates: each update the bench sends carries a unique updatedAt, whose
 * send time goes into `sentAt`; the returned handler (connectAll's onMessage) finds it again when
 * the update arrives and hands `delivered` the send time and the latency, once per update.
 */
export function onNodeUpdates(sentAt: Map<number, number>, delivered: (sentAtMs: number, latencyMs: number) => void): (c: BenchConn, m: ServerMessage) => void {
  return (_c, m) => {
    if (m.type !== 'peers') return;
    for (const u of m.updates) {
      if (u.kind !== 'node') continue;
      const t0 = sentAt.get(u.node.updatedAt);
      if (t0 === undefined) continue;
      delivered(t0, performance.now() - t0);
      sentAt.delete(u.node.updatedAt);
    }
  };
}

// Several worker processes answering on the same sockets (node:cluster shares a UDP handle among
// workers: each datagram wakes one of them), so the server uses more than one core.
//
// The primary binds nothing itself: it fixes the ports (so every worker asks for the same shared
// handles), forks the workers, waits until each reports its sockets bound, serves the aggregated
// metrics, and on close asks each worker to close its sockets and exit.
import cluster, { type Worker } from 'node:cluster';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import type { BoundAddress, StunServerOptions } from './server.js';
import { serveMetrics, type MetricsHttpServer } from './server-metrics-http.js';
import { DEFAULT_RATE_LIMIT } from './server-rate-limit.js';

/** What the primary tells each worker, through the environment. */
export interface WorkerConfig {
  readonly listen: { readonly address: string; readonly port: number };
  readonly altAddress?: string;
  readonly altPort?: number;
  readonly tcp?: boolean;
  readonly rateLimit: number;
}

export const WORKER_ENV = 'TRAVERSE_STUN_WORKER';

export type WorkerMessage =
  | { readonly type: 'traverse-stun-ready'; readonly udp: BoundAddress[]; readonly tcp: BoundAddress | null }
  | { readonly type: 'traverse-stun-failed'; readonly message: string };

export interface ClusterOptions {
  readonly server: Omit<StunServerOptions, 'logger' | 'registry' | 'exclusive'>;
  readonly workers: number;
  readonly metrics?: { readonly host: string; readonly port: number };
  readonly logger: Logger;
}

export interface StunCluster {
  readonly udp: readonly BoundAddress[];
  readonly tcp: BoundAddress | null;
  readonly metrics: MetricsHttpServer | null;
  close(): Promise<void>;
}

/** A free UDP port on `address`, found by binding port 0 and letting it go. */
function freeUdpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export async function startStunCluster(options: ClusterOptions): Promise<StunCluster> {
  const log = options.logger;
  const s = options.server;
  let port = s.listen.port;
  let altPort = s.altPort;
  if (port === 0) port = await freeUdpPort(s.listen.address);
  if (s.altAddress !== undefined && altPort === undefined) {
    altPort = s.listen.port === 0 ? await freeUdpPort(s.listen.address) : port + 1;
  }
  // Datagrams spread over the workers, so each enforces its share of the per-source limit.
  const rate = s.rateLimit ?? DEFAULT_RATE_LIMIT;
  const config: WorkerConfig = {
    listen: { address: s.listen.address, port },
    ...(s.altAddress !== undefined ? { altAddress: s.altAddress, altPort } : {}),
    tcp: s.tcp === true,
    rateLimit: rate === 0 ? 0 : Math.max(1, rate / options.workers),
  };
  cluster.setupPrimary({
    exec: fileURLToPath(new URL('./server-worker.js', import.meta.url)),
    args: [],
    silent: false,
  });
  const aggregator = new AggregatorRegistry();
  const workers = new Set<Worker>();
  let closing = false;

  const fork = (): Promise<WorkerMessage & { type: 'traverse-stun-ready' }> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ [WORKER_ENV]: JSON.stringify(config) });
      workers.add(w);
      let ready = false;
      w.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        if (m.type === 'traverse-stun-ready') {
          ready = true;
          resolve(m);
        } else reject(new Error(m.message));
      });
      w.on('exit', (code, signal) => {
        workers.delete(w);
        if (!ready) reject(new Error(`STUN worker exited before it was ready (code ${code}, signal ${signal})`));
        else if (!closing) {
          log.error({ worker: w.process.pid, code, signal }, 'STUN worker died; starting a replacement');
          fork().catch((err: unknown) => log.error({ err }, 'replacement STUN worker failed'));
        }
      });
    });

  const stopAll = async (): Promise<void> => {
    closing = true;
    await Promise.all(
      [...workers].map(
        (w) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => w.process.kill('SIGKILL'), 800);
            w.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            if (w.isConnected()) w.send({ type: 'traverse-stun-close' });
            else w.process.kill('SIGTERM');
          }),
      ),
    );
  };

  let first: WorkerMessage & { type: 'traverse-stun-ready' };
  try {
    first = await fork();
    for (let i = 1; i < options.workers; i++) await fork();
  } catch (err) {
    await stopAll();
    throw err;
  }
  const metrics =
    options.metrics === undefined
      ? null
      : await serveMetrics(options.metrics.host, options.metrics.port, () => aggregator.clusterMetrics(), aggregator.contentType);
  return {
    udp: first.udp,
    tcp: first.tcp,
    metrics,
    async close() {
      await Promise.all([stopAll(), metrics?.close()]);
    },
  };
}

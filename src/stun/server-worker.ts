// Entry point of a cluster worker (see server-cluster.ts): start the server on the shared sockets,
// report the bound addresses, and close cleanly when the primary asks or a signal arrives.
import { AggregatorRegistry, Registry } from 'prom-client';
import { createLogger } from '../log/logger.js';
import { startStunServer, type StunServer } from './server.js';
import { WORKER_ENV, type WorkerConfig, type WorkerMessage } from './server-cluster.js';

function send(m: WorkerMessage): void {
  process.send?.(m);
}

async function run(): Promise<void> {
  const raw = process.env[WORKER_ENV];
  if (raw === undefined) throw new Error(`${WORKER_ENV} is not set: this file is started by server-cluster.ts`);
  const config = JSON.parse(raw) as WorkerConfig;
  const registry = new Registry();
  // Constructing an AggregatorRegistry installs the listener that answers the primary's scrapes.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let server: StunServer;
  try {
    server = await startStunServer({ ...config, exclusive: false, registry, logger: createLogger('stun-server') });
  } catch (err) {
    send({ type: 'traverse-stun-failed', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  const stop = (): void => {
    const timer = setTimeout(() => process.exit(0), 500);
    timer.unref();
    server.close().finally(() => process.exit(0));
  };
  process.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'traverse-stun-close') stop();
  });
  process.on('disconnect', stop); // the primary is gone
  process.on('SIGINT', stop); // a terminal's Ctrl-C reaches the whole process group
  process.on('SIGTERM', stop);
  send({ type: 'traverse-stun-ready', udp: [...server.udp], tcp: server.tcp });
}

void run();

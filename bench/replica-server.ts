// The server side of bench/replicas.bench.ts, forked with --expose-gc so that each replica's
// memory is measured alone: `replica URL` runs one replica on the PostgreSQL database at URL;
// `single URL` runs a lone server on the same database (the named peer: everything on one process).
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/log/logger.js';
import { startCoordinatorServer } from '../src/server/server.js';
import { PostgresStore } from '../src/server/store/postgres.js';
import { answerMemoryMeasurements } from './load.js';

async function main(): Promise<void> {
  const [mode, url] = process.argv.slice(2);
  const store = await PostgresStore.open(url!);
  const server = await startCoordinatorServer({
    listen: { host: '127.0.0.1', port: 0 },
    store,
    stun: [],
    // Warnings on stderr: a replica declared dead in the middle of a run is a result to see.
    logger: createLogger(`bench-${mode}`, 'warn'),
    // Bench peers come from four loopback addresses; relay throughput is measured without the per-peer cap.
    maxConnectionsPerAddress: 0,
    limits: { relayBytesPerSec: 0, messagesPerSec: 1000 },
    replica: mode === 'replica' ? `bench-${process.pid}` : '',
    ...(mode === 'replica' ? { replication: { databaseUrl: url! } } : {}),
  });
  answerMemoryMeasurements();
  // `busy` is the share of time the event loop worked since the previous question: the bench waits
  // for the warm-up (connections, store writes, mirroring) to be over before it measures.
  let since = performance.eventLoopUtilization();
  process.on('message', (m) => {
    if (m !== 'peers') return;
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, since).utilization;
    since = now;
    process.send!({ peers: server.replica?.peers.size ?? 0, mirrored: server.replica?.mirrored ?? 0, busy });
  });
  process.send!({ port: server.port });
}

void main();

// The server side of bench/replicas.bench.ts, forked with --expose-gc so that each replica's
// memory is measured alone: `replica URL` runs one replica on the PostgreSQL database at URL;
// `single URL` runs a lone server on the same database (the named peer: everything on one process).
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
    // Bench peers come from four loopback addresses; relay throughput is measured without the per-peer cap.
    maxConnectionsPerAddress: 0,
    limits: { relayBytesPerSec: 0, messagesPerSec: 1000 },
    replica: mode === 'replica' ? `bench-${process.pid}` : '',
    ...(mode === 'replica' ? { replication: { databaseUrl: url! } } : {}),
  });
  answerMemoryMeasurements();
  process.on('message', (m) => {
    if (m === 'peers') process.send!({ peers: server.replica?.peers.size ?? 0, mirrored: server.replica?.mirrored ?? 0 });
  });
  process.send!({ port: server.port });
}

void main();

// The server side of bench/coordinator.bench.ts, forked with --expose-gc so that its memory
// is measured alone. Mode "traverse" runs the real coordination server; mode "bare" is the
// floor to compare against: a plain `ws` server that accepts the same upgrades and does nothing.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { answerMemoryMeasurements } from './load.js';
import { startCoordinatorServer } from '../src/server/server.js';
import { SqliteStore } from '../src/server/store/sqlite.js';

export interface MemorySample {
  rss: number;
  heapUsed: number;
  external: number;
  /** V8's heap as reserved (used plus free pages kept), and the young generation's share of it. */
  heapTotal: number;
  newSpace: number;
}

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2);
  let port: number;
  if (mode === 'bare') {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
    const http = createServer();
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.send('{"type":"config"}')));
    await new Promise<void>((r) => http.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
    port = (http.address() as AddressInfo).port;
  } else {
    const store = SqliteStore.open(dir!);
    // Every peer of the bench comes from four loopback addresses: no per-address cap here.
    const server = await startCoordinatorServer({ listen: { host: '127.0.0.1', port: 0 }, store, stun: [], maxConnectionsPerAddress: 0 });
    port = server.port;
  }
  answerMemoryMeasurements();
  process.send!({ port });
}

void main();

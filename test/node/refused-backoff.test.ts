// A server that accepts a node and then refuses it at once (the key squatting attack made the
// real agent reconnect 49 times in 8 s) gets an ever slower node, not a reconnect storm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { CoordinatorClient } from '../../src/node/coordinator-client.js';
import { CloseCode } from '../../src/coordination/protocol.js';
import { proverFor, randomKey } from '../server/helpers.js';

test('a node accepted and then refused at once backs off exponentially', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    ws.send(
      JSON.stringify({
        type: 'config', version: 1, identity: { name: 'dev-box', kind: 'agent' }, stun: [], relay: { enabled: true, maxPayload: 4096 },
        blockDirect: false, pingIntervalMs: 15_000, challenge: { key: '00'.repeat(32), nonce: '00'.repeat(32) },
      }),
    );
    ws.close(CloseCode.policy, 'this node key belongs to another connected node');
  });
  const key = randomKey();
  const client = new CoordinatorClient({
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    token: 'trv1_' + 'A'.repeat(43),
    key,
    role: 'agent',
    proveKey: proverFor(key),
    backoff: { baseMs: 100, maxMs: 10_000 },
  });
  try {
    await client.connect();
    await new Promise((r) => setTimeout(r, 3000));
    // With the backoff reset at every config this was one attempt per 50-100 ms (30-60 in 3 s);
    // growing from 100 ms it is at most about log2(3000/50) + 1.
    assert.ok(connections <= 8, `${connections} connections in 3 s`);
    assert.ok(connections >= 2, 'it does retry');
  } finally {
    client.close();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});

// Spare TCP lanes between two PeerNodes on loopback: once a stream to the agent runs on a TCP
// lane, the next stream starts on a lane at once (the spare opened ahead), its bytes intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { waitForDirect } from '../../src/node/speedtest.js';
import { eventually } from '../server/helpers.js';
import { loopbackPair } from './loopback-node.js';
import { echoThrough, startEcho } from '../helpers/echo.js';

test('after a stream ran on a TCP lane, the next one starts on a spare lane, and its bytes arrive intact', async () => {
  const { target, server: echo } = await startEcho();
  const pair = await loopbackPair({ client: { tcpLane: true }, agent: { tcpLane: true } });
  const { client, agentKey: key } = pair;
  try {
    await waitForDirect(client, key, 5000);
    const first = await client.streams.open(key, { kind: 'tcp', target });
    assert.equal(client.streams.carrierKind(first), 'udx', 'a first stream starts on UDX');
    await eventually(async () => (client.streams.carrierKind(first) === 'tcp' ? true : undefined), 5000);
    const a = randomBytes(1 << 20);
    assert.ok((await echoThrough(first, a)).equals(a));
    // The spare opens beside it; give it a moment.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 2; i++) {
      const next = await client.streams.open(key, { kind: 'tcp', target });
      assert.equal(client.streams.carrierKind(next), 'tcp', `stream ${i + 2} starts on a lane`);
      const b = randomBytes(4 << 20);
      assert.ok((await echoThrough(next, b)).equals(b), `stream ${i + 2}: the bytes came back intact`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    echo.close();
    await pair.close();
  }
});

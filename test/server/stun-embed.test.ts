// The embedded STUN server (the STUN layer's) answers, and its address reaches the peers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { startEmbeddedStun } from '../../src/server/stun-embed.js';
import { RawPeer, startTestServer } from './helpers.js';

test('--stun-listen: the embedded server answers Binding requests and is sent to peers first', async () => {
  const stun = await startEmbeddedStun({ listen: { address: '127.0.0.1', port: 0 } });
  const t = await startTestServer({ stun: [], embeddedStun: { host: '127.0.0.1', port: stun.address.port } });
  const sock = createSocket('udp4');
  try {
    const peer = await RawPeer.connect(t.wsUrl, await t.token('agent', 'ws1'));
    const config = peer.messages[0];
    assert.deepEqual(config?.type === 'config' && config.stun, [`127.0.0.1:${stun.address.port}`]);
    // A bare RFC 8489 Binding request: type 0x0001, length 0, magic cookie, transaction id.
    const req = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
    const res = await new Promise<Buffer>((resolve) => {
      sock.once('message', (m) => resolve(m));
      sock.send(req, stun.address.port, '127.0.0.1');
    });
    assert.equal(res.readUInt16BE(0), 0x0101); // Binding success response
    assert.ok(res.subarray(8, 20).equals(req.subarray(8, 20)));
    peer.ws.close();
  } finally {
    sock.close();
    await t.close();
    await stun.close();
  }
});

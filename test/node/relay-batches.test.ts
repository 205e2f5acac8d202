// The node's side of relay batches (coordination/relay-batch.ts), against a scripted server: it
// asks for format 2, batches what it relays in one turn only when the server agreed, and drops a
// malformed batch whole (counted) while later ones still arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CoordinatorClient } from '../../src/node/coordinator-client.js';
import { decodeRelayFrame } from '../../src/coordination/relay-frame.js';
import { decodeRelayBatch, encodeRelayBatch, RELAY_BATCH_FORMAT, RELAY_FRAMES_HEADER } from '../../src/coordination/relay-batch.js';
import { proverFor, randomKey } from '../server/helpers.js';

const PEER = 'cd'.repeat(32);

/** A server that answers every node with a config (relay.frames as given) and records what it gets. */
async function scriptedServer(frames: number | undefined) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const got: Buffer[] = [];
  const asked: (string | undefined)[] = [];
  /** The close codes the node's connections ended with, as the server saw them. */
  const closeCodes: number[] = [];
  let socket: WebSocket | null = null;
  wss.on('connection', (ws, req) => {
    socket = ws;
    ws.on('close', (code) => closeCodes.push(code));
    asked.push(req.headers[RELAY_FRAMES_HEADER] as string | undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) got.push(data);
    });
    ws.send(
      JSON.stringify({
        type: 'config', version: 1, identity: { name: 'laptop', kind: 'client' }, stun: [],
        relay: { enabled: true, maxPayload: 4096, ...(frames === undefined ? {} : { frames }) },
        blockDirect: false, pingIntervalMs: 15_000, challenge: { key: '00'.repeat(32), nonce: '00'.repeat(32) },
      }),
    );
  });
  const key = randomKey();
  const client = new CoordinatorClient({ url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, token: 'trv1_' + 'A'.repeat(43), key, role: 'client', proveKey: proverFor(key) });
  await client.connect();
  const until = async (ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(ok(), 'timed out');
  };
  return {
    client,
    got,
    asked,
    closeCodes,
    until,
    send: (frame: Buffer) => socket!.send(frame, { binary: true }),
    close: async () => {
      client.close();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

test('relay batches: the node asks for them, and with the server agreeing sends one frame per peer per turn', async () => {
  const s = await scriptedServer(RELAY_BATCH_FORMAT);
  try {
    assert.deepEqual(s.asked, [String(RELAY_BATCH_FORMAT)]);
    for (const p of ['one', 'two', 'three']) assert.equal(s.client.sendRelay(PEER, Buffer.from(p)), true);
    await s.until(() => s.got.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.got.length, 1, 'one frame for the three');
    const batch = decodeRelayBatch(s.got[0]!);
    assert.ok(typeof batch !== 'string');
    assert.equal(batch.key.toString('hex'), PEER);
    assert.deepEqual(batch.payloads.map(String), ['one', 'two', 'three']);

    const relayed: [string, string][] = [];
    s.client.on('relay', (from, payload) => relayed.push([from, payload.toString()]));
    const good = encodeRelayBatch(PEER, [Buffer.from('a'), Buffer.from('b')]);
    s.send(good.subarray(0, good.length - 1)); // cut short: dropped whole, not 'a' alone
    s.send(good);
    await s.until(() => relayed.length >= 2);
    assert.deepEqual(relayed, [[PEER, 'a'], [PEER, 'b']]);
    assert.equal(s.client.malformedRelayFrames, 1);
    assert.equal(s.client.state, 'connected');
  } finally {
    await s.close();
  }
});

test('relay batches: against a server that does not speak them, one frame per datagram', async () => {
  const s = await scriptedServer(undefined);
  try {
    for (const p of ['one', 'two']) s.client.sendRelay(PEER, Buffer.from(p));
    await s.until(() => s.got.length >= 2);
    assert.deepEqual(
      s.got.map((f) => {
        const d = decodeRelayFrame(f);
        return typeof d === 'string' ? d : [d.key, d.payload.toString()];
      }),
      [[PEER, 'one'], [PEER, 'two']],
    );
  } finally {
    await s.close();
  }
});

test('a frame from the server over 1 MiB closes the connection (1009) and the node reconnects', async () => {
  const s = await scriptedServer(RELAY_BATCH_FORMAT);
  try {
    const states: string[] = [];
    s.client.on('state', (state) => states.push(state));
    s.send(Buffer.alloc((1 << 20) + 1));
    await s.until(() => states.includes('reconnecting'));
    await s.until(() => s.closeCodes.length >= 1);
    assert.equal(s.closeCodes[0], 1009, 'closed as too big (1009)');
    await s.until(() => s.asked.length >= 2 && s.client.state === 'connected');
  } finally {
    await s.close();
  }
});

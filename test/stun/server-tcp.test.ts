// STUN over TCP: framing by the length field, and the connection limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStunServer, type StunServer } from '../../src/stun/server.js';
import { decodeMessage } from '../../src/stun/message.js';
import { readAttribute } from '../../src/stun/attributes.js';
import { bindingRequest, sleep } from './server-helpers.js';

let server: StunServer;
before(async () => {
  server = await startStunServer({ listen: { address: '127.0.0.1', port: 0 }, tcp: true, rateLimit: 0, tcpLimits: { idleTimeoutMs: 300 } });
});
after(() => server.close());

/** Connects and collects everything the server sends until it closes or `ms` pass. */
async function session(write: (s: net.Socket) => Promise<void>, ms = 300): Promise<{ data: Buffer; closed: boolean; local: number }> {
  const s = net.connect(server.tcp!.port, '127.0.0.1');
  await new Promise<void>((resolve) => s.once('connect', resolve));
  const chunks: Buffer[] = [];
  let closed = false;
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => undefined);
  s.on('close', () => (closed = true));
  await write(s);
  await sleep(ms);
  const local = s.localPort ?? 0;
  s.destroy();
  return { data: Buffer.concat(chunks), closed, local };
}

function split(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < data.length; ) {
    const n = 20 + data.readUInt16BE(p + 2);
    out.push(data.subarray(p, p + n));
    p += n;
  }
  return out;
}

test('TCP listens on the same port as UDP', () => {
  assert.equal(server.tcp?.port, server.address.port);
});

test('two messages in one write get two responses', async () => {
  const a = bindingRequest();
  const b = bindingRequest([], { fingerprint: true });
  const { data, local } = await session(async (s) => void s.write(Buffer.concat([a, b])), 150);
  const msgs = split(data).map((m) => decodeMessage(m));
  assert.equal(msgs.length, 2);
  assert.deepEqual(msgs[0]!.transactionId, a.subarray(8, 20));
  assert.deepEqual(msgs[1]!.transactionId, b.subarray(8, 20));
  const xma = readAttribute(msgs[0]!, msgs[0]!.attributes[0]!);
  assert.deepEqual(xma, { type: 'XOR-MAPPED-ADDRESS', family: 4, address: '127.0.0.1', port: local });
});

test('one message split across writes (even inside the header) gets one response', async () => {
  const req = bindingRequest([{ type: 'SOFTWARE', value: 'split test' }]);
  const { data } = await session(async (s) => {
    for (const [from, to] of [[0, 3], [3, 21], [21, req.length]] as const) {
      s.write(req.subarray(from, to));
      await sleep(30);
    }
  }, 150);
  const msgs = split(data);
  assert.equal(msgs.length, 1);
  assert.deepEqual(decodeMessage(msgs[0]!).transactionId, req.subarray(8, 20));
});

test('a stream that is not STUN, or a message over the size bound, closes the connection', async () => {
  const before = server.stats().tcp;
  const garbage = await session(async (s) => void s.write('GET / HTTP/1.1\r\n\r\n'), 100);
  assert.equal(garbage.closed, true);
  const huge = Buffer.alloc(24);
  huge.writeUInt16BE(0x0001, 0);
  huge.writeUInt16BE(60000, 2);
  huge.writeUInt32BE(0x2112a442, 4);
  const big = await session(async (s) => void s.write(huge), 100);
  assert.equal(big.closed, true);
  const after = server.stats().tcp;
  assert.equal(after.malformed - before.malformed, 1);
  assert.equal(after.tcpOversize - before.tcpOversize, 1);
});

test('an idle connection is closed after the idle timeout', async () => {
  const idle = await session(async () => undefined, 600);
  assert.equal(idle.closed, true);
});

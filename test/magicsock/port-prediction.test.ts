// Port prediction: when to try it (planPortPrediction, pure), and the PortPredictor's bounds on
// both sides, driven with mocked timers and hooks that record what would be sent.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import UDX, { type UDXSocket } from 'udx-native';
import {
  BIRTHDAY_BATCH,
  BIRTHDAY_BATCH_INTERVAL_MS,
  BIRTHDAY_LIFETIME_MS,
  BIRTHDAY_PROBES,
  BIRTHDAY_SEND_AT_MS,
  BIRTHDAY_SOCKETS,
  PortPredictor,
  planPortPrediction,
  randomPorts,
  type NatSummary,
  type PortPredictorHooks,
} from '../../src/magicsock/port-prediction.js';
import { decodeDisco, encodeDisco, type DiscoMessage } from '../../src/disco/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Path } from '../../src/net/path.js';

test('probe ports are distinct, within 1024-65535, and as many as asked', () => {
  const ports = randomPorts(BIRTHDAY_PROBES);
  assert.equal(ports.length, BIRTHDAY_PROBES);
  assert.equal(new Set(ports).size, ports.length);
  assert.ok(ports.every((p) => Number.isInteger(p) && p >= 1024 && p <= 65535));
  assert.equal(randomPorts(100_000).length, 65535 - 1024 + 1, 'never more than the range holds');
});

test('the chosen sizes give a better than 99.9% chance that a probe meets a mapping', () => {
  const miss = (1 - BIRTHDAY_SOCKETS / (65535 - 1024 + 1)) ** BIRTHDAY_PROBES;
  assert.ok(1 - miss > 0.999, `hit probability ${(1 - miss).toFixed(5)}`);
});

test('the birthday disco message carries the hard side\'s public IP, v4 or v6', () => {
  for (const ip of ['203.0.113.5', '2001:db8::5']) assert.deepEqual(decodeDisco(encodeDisco({ type: 'birthday', ip })), { type: 'birthday', ip });
  assert.equal(decodeDisco(Buffer.from([9, 1, 4, 0])), null, 'truncated');
});

// ---- planPortPrediction ----------------------------------------------------------------------

const hard: NatSummary = { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', globalV4: '203.0.113.1:4001' };
const easyFiltering: NatSummary = { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', globalV4: '198.51.100.1:5000' };
const peerEndpoints = ['192.168.1.5:5000', '10.0.0.5:5000', '198.51.100.1:5000', '[fd00::5]:5000', '198.51.100.1:5001'];

test('plan: our NAT hard, the peer\'s easy but filtering: our public IP, the peer\'s public endpoints', () => {
  assert.deepEqual(planPortPrediction(hard, easyFiltering, peerEndpoints), {
    publicIp: '203.0.113.1',
    targets: ['198.51.100.1:5000', '198.51.100.1:5001'],
  });
  assert.deepEqual(planPortPrediction({ ...hard, mapping: 'address-dependent' }, easyFiltering, peerEndpoints)?.publicIp, '203.0.113.1');
  for (const filtering of ['address-dependent', 'unknown', undefined] as const) {
    assert.notEqual(planPortPrediction(hard, { ...easyFiltering, filtering }, peerEndpoints), null, `peer filtering ${filtering}`);
  }
});

test('plan: not when our NAT is easy or unknown, both are hard, or the peer does not filter', () => {
  for (const mapping of ['endpoint-independent', 'unknown', undefined] as const) {
    assert.equal(planPortPrediction({ ...hard, mapping }, easyFiltering, peerEndpoints), null, `our mapping ${mapping}`);
  }
  for (const mapping of ['address-dependent', 'address-and-port-dependent', 'unknown', undefined] as const) {
    assert.equal(planPortPrediction(hard, { ...easyFiltering, mapping }, peerEndpoints), null, `peer mapping ${mapping}`);
  }
  assert.equal(planPortPrediction(hard, { ...easyFiltering, filtering: 'endpoint-independent' }, peerEndpoints), null, 'peer does not filter');
});

test('plan: not without both summaries, our public IP, or a public endpoint of the peer', () => {
  assert.equal(planPortPrediction(undefined, easyFiltering, peerEndpoints), null);
  assert.equal(planPortPrediction(hard, undefined, peerEndpoints), null);
  assert.equal(planPortPrediction({ ...hard, globalV4: null }, easyFiltering, peerEndpoints), null);
  assert.equal(planPortPrediction({ ...hard, globalV4: undefined }, easyFiltering, peerEndpoints), null);
  assert.equal(planPortPrediction({ ...hard, globalV4: 'not an endpoint' }, easyFiltering, peerEndpoints), null);
  assert.equal(planPortPrediction(hard, easyFiltering, []), null);
  assert.equal(planPortPrediction(hard, easyFiltering, ['192.168.1.5:5000', '100.64.0.9:5000', '[fd00::5]:5000', 'junk']), null, 'only private or unsplittable');
});

// ---- PortPredictor ---------------------------------------------------------------------------

interface Sent {
  readonly port: number;
  readonly address: string;
  readonly via: UDXSocket | undefined;
}

function harness(over: Partial<PortPredictorHooks> = {}): {
  sent: Sent[];
  relayed: DiscoMessage[];
  received: { from: string; via: UDXSocket }[];
  path: { current: Path | null };
  hooks: PortPredictorHooks;
} {
  const sent: Sent[] = [];
  const relayed: DiscoMessage[] = [];
  const received: { from: string; via: UDXSocket }[] = [];
  const path: { current: Path | null } = { current: { kind: 'relay' } };
  const hooks: PortPredictorHooks = {
    seal: (_k, m) => encodeDisco(m),
    sendRelayed: (_k, m) => relayed.push(m),
    send: (_b, port, address, via) => sent.push({ port, address, via }),
    receive: (_b, from, via) => received.push({ from, via }),
    directAllowed: () => true,
    currentPath: () => path.current,
    ...over,
  };
  return { sent, relayed, received, path, hooks };
}

const KEY = 'ab'.repeat(32);

test('easy side: 2000 distinct probes to the hard side\'s IP, in batches of 100 every 100 ms, from the node\'s own socket', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const h = harness();
  const p = new PortPredictor(new UDX(), h.hooks, silentLogger);
  p.probe(KEY, '203.0.113.1');
  t.mock.timers.tick(0);
  assert.equal(h.sent.length, BIRTHDAY_BATCH);
  t.mock.timers.tick(BIRTHDAY_BATCH_INTERVAL_MS);
  assert.equal(h.sent.length, 2 * BIRTHDAY_BATCH);
  t.mock.timers.tick((BIRTHDAY_PROBES / BIRTHDAY_BATCH) * BIRTHDAY_BATCH_INTERVAL_MS);
  assert.equal(h.sent.length, BIRTHDAY_PROBES);
  assert.equal(new Set(h.sent.map((s) => s.port)).size, BIRTHDAY_PROBES);
  assert.ok(h.sent.every((s) => s.address === '203.0.113.1' && s.via === undefined));
  // Once a minute per peer: asked again at once, it sends nothing more.
  p.probe(KEY, '203.0.113.1');
  t.mock.timers.tick(10_000);
  assert.equal(h.sent.length, BIRTHDAY_PROBES);
  p.close();
});

test('easy side: probing stops once a direct path exists, or the peer is gone', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  for (const after of [{ kind: 'direct', endpoint: '203.0.113.1:4001' } as const, null]) {
    const h = harness();
    const p = new PortPredictor(new UDX(), h.hooks, silentLogger);
    p.probe(KEY, '203.0.113.1');
    t.mock.timers.tick(BIRTHDAY_BATCH_INTERVAL_MS);
    assert.equal(h.sent.length, 2 * BIRTHDAY_BATCH);
    h.path.current = after;
    t.mock.timers.tick(10_000);
    assert.equal(h.sent.length, 2 * BIRTHDAY_BATCH, `after ${JSON.stringify(after)}`);
    p.close();
  }
});

test('either side: nothing while direct paths are off, and nothing after close', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const off = harness({ directAllowed: () => false });
  const p = new PortPredictor(new UDX(), off.hooks, silentLogger);
  p.probe(KEY, '203.0.113.1');
  assert.equal(p.start(KEY, { publicIp: '203.0.113.1', targets: ['127.0.0.1:9'] }), false);
  t.mock.timers.tick(30_000);
  assert.deepEqual([off.sent.length, off.relayed.length], [0, 0]);

  const h = harness();
  const q = new PortPredictor(new UDX(), h.hooks, silentLogger);
  q.probe(KEY, '203.0.113.1');
  q.close();
  t.mock.timers.tick(30_000);
  assert.equal(h.sent.length, 0, 'pending batches are cancelled');
  assert.equal(q.start('cd'.repeat(32), { publicIp: '203.0.113.1', targets: ['127.0.0.1:9'] }), false);
});

test('hard side: 256 sockets send to at most two targets on schedule, ask the peer twice, and only winners outlive 20 s', async (t) => {
  const target = createSocket('udp4');
  target.bind(0, '127.0.0.1');
  await once(target, 'listening');
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const h = harness();
  const p = new PortPredictor(new UDX(), h.hooks, silentLogger);
  try {
    const targets = [`127.0.0.1:${target.address().port}`, '127.0.0.1:9', '127.0.0.1:10'];
    assert.equal(p.start(KEY, { publicIp: '203.0.113.1', targets }), true);
    assert.equal(p.start(KEY, { publicIp: '203.0.113.1', targets }), false, 'once a minute per peer');
    t.mock.timers.tick(0);
    const sockets = [...new Set(h.sent.map((s) => s.via))];
    assert.equal(sockets.length, BIRTHDAY_SOCKETS);
    assert.ok(sockets.every((s) => s !== undefined));
    assert.equal(h.sent.length, BIRTHDAY_SOCKETS * 2, 'each socket to the first two targets');
    assert.deepEqual(new Set(h.sent.map((s) => s.port)), new Set([target.address().port, 9]));
    assert.deepEqual(h.relayed, [{ type: 'birthday', ip: '203.0.113.1' }]);
    t.mock.timers.tick(BIRTHDAY_SEND_AT_MS.at(-1)!);
    assert.equal(h.sent.length, BIRTHDAY_SOCKETS * 2 * BIRTHDAY_SEND_AT_MS.length);
    assert.equal(h.relayed.length, 2);

    // A datagram reaching one of the sockets goes up with where it came from, and once the owner
    // says it was authentic, that socket is the way to that endpoint.
    const winner = sockets[17]!;
    target.send(Buffer.from('hello'), winner.address().port, '127.0.0.1');
    while (h.received.length === 0) await new Promise((r) => setImmediate(r));
    const from = `127.0.0.1:${target.address().port}`;
    assert.deepEqual(h.received, [{ from, via: winner }]);
    assert.equal(p.socketFor(KEY, from), undefined, 'not before it is vouched for');
    p.answered(KEY, from, winner);
    p.answered(KEY, from, sockets[3]!);
    assert.equal(p.socketFor(KEY, from), winner, 'the first socket to answer keeps the endpoint');

    t.mock.timers.tick(BIRTHDAY_LIFETIME_MS);
    // udx-native has `closing`; its hand-written types here do not list it.
    const closing = (s: UDXSocket): boolean => (s as unknown as { closing: boolean }).closing;
    assert.equal(sockets.filter(closing).length, BIRTHDAY_SOCKETS - 1);
    assert.equal(closing(winner), false);

    // The peer goes: its winner is closed too, and no endpoint of it is remembered.
    p.forget(KEY);
    assert.equal(closing(winner), true);
    assert.equal(p.socketFor(KEY, from), undefined);
  } finally {
    p.close();
    target.close();
    mock.timers.reset();
  }
});

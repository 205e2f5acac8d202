// The project's client against coturn's STUN server on loopback (UDP v4, UDP v6, TCP), and the
// `traverse stun` command as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { StunClient } from '../../src/stun/client.js';
import { bindingOverTcp } from '../../src/stun/tcp-client.js';
import { coturnMissing, startLocalCoturn, type LocalCoturn } from '../../lab/coturn.js';
import { skipOrFail } from '../helpers/required.js';
import { runCli } from '../helpers/cli.js';

let v4: LocalCoturn | null = null;
let v6: LocalCoturn | null = null;
const missing = coturnMissing();

before(async () => {
  if (missing) return;
  v4 = await startLocalCoturn('127.0.0.1');
  v6 = await startLocalCoturn('::1');
});
after(async () => {
  await v4?.stop();
  await v6?.stop();
});

for (const family of [4, 6] as const) {
  test(`UDP IPv${family}: our client learns its mapped address from coturn, on a socket it does not own`, async (t) => {
    if (missing) return skipOrFail(t, missing);
    const server = family === 4 ? v4! : v6!;
    const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
    await new Promise<void>((r) => socket.bind(0, server.address, () => r()));
    // The owner routes datagrams: the client sees only what is handed to it.
    const others: Buffer[] = [];
    const client = new StunClient(socket);
    socket.on('message', (m, rinfo) => {
      if (!client.handleDatagram(m, rinfo)) others.push(m);
    });
    try {
      const r = await client.binding({ address: server.address, port: server.port }, { timeoutMs: 3000 });
      assert.equal(r.mapped.address, server.address);
      assert.equal(r.mapped.port, socket.address().port);
      assert.equal(r.mapped.family, family);
      assert.ok(r.rttMs >= 0 && r.rttMs < 1000);
      assert.deepEqual(others, []);
    } finally {
      client.close();
      socket.close();
    }
  });
}

test('TCP: a Binding transaction over a stream', async (t) => {
  if (missing) return skipOrFail(t, missing);
  const r = await bindingOverTcp({ address: '127.0.0.1', port: v4!.port }, { timeoutMs: 3000 });
  assert.equal(r.mapped.address, '127.0.0.1');
  assert.equal(r.mapped.port, r.local.port);
});

test('`traverse stun --json` prints the documented object', async (t) => {
  if (missing) return skipOrFail(t, missing);
  const res = await runCli(['stun', `127.0.0.1:${v4!.port}`, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const o = JSON.parse(res.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(o).sort(), ['local', 'mapped', 'otherAddress', 'responseOrigin', 'rttMs', 'server']);
  assert.equal(o.server, `127.0.0.1:${v4!.port}`);
  assert.equal(o.mapped, o.local);
  assert.equal(typeof o.rttMs, 'number');
});

test('`traverse stun` human output over TCP and IPv6 names the mapped address, server and round trip', async (t) => {
  if (missing) return skipOrFail(t, missing);
  const res = await runCli(['stun', `[::1]:${v6!.port}`, '--tcp']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /mapped address {2}\[::1\]:\d+/);
  assert.match(res.stdout, new RegExp(`server +\\[::1\\]:${v6!.port} +\\(round trip [\\d.]+ ms\\)`));
});

test('`traverse stun` exits 1 with one line when nothing answers, 2 on bad arguments', async () => {
  const quiet = createSocket('udp4'); // bound but silent: requests go nowhere
  await new Promise<void>((r) => quiet.bind(0, '127.0.0.1', () => r()));
  try {
    const res = await runCli(['stun', `127.0.0.1:${quiet.address().port}`, '--timeout', '600']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.match(res.stderr, /no answer from 127\.0\.0\.1:\d+/);
  } finally {
    quiet.close();
  }
  for (const args of [['stun'], ['stun', '1.2.3.4:70000'], ['stun', '127.0.0.1', '--timeout', 'soon'], ['stun', '127.0.0.1', '--bogus']]) {
    const res = await runCli(args);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
  }
});

// Netcheck against coturn in RFC 5780 mode on loopback (127.0.0.1 and 127.0.0.2): no NAT, so
// everything is endpoint-independent; and a silent server is reported quickly, not waited on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { coturnMissing, startLocalCoturn, type LocalCoturn } from '../../lab/coturn.js';
import { skipOrFail } from '../helpers/required.js';
import { runCli } from '../helpers/cli.js';

const missing = coturnMissing();
let coturn: LocalCoturn | null = null;
before(async () => {
  if (!missing) coturn = await startLocalCoturn('127.0.0.1', ['-L', '127.0.0.2']);
});
after(async () => coturn?.stop());

test('netcheck --json on an open network: no NAT, endpoint-independent, the documented keys', async (t) => {
  if (missing) return skipOrFail(t, missing);
  const res = await runCli(['netcheck', '--stun', `127.0.0.1:${coturn!.port}`, '--stun', `127.0.0.2:${coturn!.port}`, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const r = JSON.parse(res.stdout) as Record<string, unknown>;
  for (const k of ['udp', 'ipv4', 'ipv6', 'globalV4', 'globalV6', 'mappingVariesByDestIP', 'mapping', 'filtering', 'hairpinning', 'preferredServer', 'servers']) {
    assert.ok(k in r, `missing ${k}`);
  }
  assert.equal(r.udp, true);
  assert.equal(r.behindNat, false);
  assert.equal(r.mappingVariesByDestIP, false);
  assert.equal(r.mapping, 'endpoint-independent');
  assert.equal(r.filtering, 'endpoint-independent');
  assert.equal(r.hairpinning, null);
  assert.match(String(r.globalV4), /^127\.0\.0\.1:\d+$/);
});

test('netcheck with no server answering reports udp:false within its budget', async () => {
  const quiet = createSocket('udp4');
  await new Promise<void>((r) => quiet.bind(0, '127.0.0.1', () => r()));
  try {
    const t0 = Date.now();
    const res = await runCli(['netcheck', '--stun', `127.0.0.1:${quiet.address().port}`, '--timeout', '1500', '--json']);
    const elapsed = Date.now() - t0;
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as { udp: boolean; servers: { error: string }[] };
    assert.equal(r.udp, false);
    assert.equal(r.servers[0]?.error, 'timeout');
    assert.ok(elapsed < 4000, `took ${elapsed} ms`);
  } finally {
    quiet.close();
  }
});

test('netcheck without servers is a usage error; --stun disable is honoured', async () => {
  const none = await runCli(['netcheck'], { env: { TRAVERSE_STUN: '' } });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no STUN servers/);
  const off = await runCli(['netcheck', '--stun', 'disable']);
  assert.equal(off.code, 0, off.stderr);
  assert.match(off.stdout, /STUN is disabled/);
});

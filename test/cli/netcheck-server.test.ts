// `traverse netcheck --server`: the STUN servers the coordination server gives its nodes are
// probed, and the relay's latency is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStunServer } from '../../src/stun/server.js';
import { startTestServer } from '../server/helpers.js';
import { runCli } from '../helpers/cli.js';

test('netcheck with --server and a token probes the server\'s STUN servers and reports the relay latency', async () => {
  const stun = await startStunServer({ listen: { address: '127.0.0.1', port: 0 } });
  const stunAddress = `127.0.0.1:${stun.udp[0]!.port}`;
  const t = await startTestServer({ stun: [stunAddress] });
  try {
    const token = await t.token('client', 'laptop');
    const r = await runCli(['netcheck', '--json', '--timeout', '1500', '--server', t.server.url], { env: { TRAVERSE_TOKEN: token, TRAVERSE_STUN: '' } });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { udp: boolean; servers: { address: string }[]; relay: { latencyMs: number } | null };
    assert.equal(report.udp, true);
    assert.deepEqual(report.servers.map((s) => s.address), [stunAddress]);
    assert.ok(report.relay && report.relay.latencyMs > 0 && report.relay.latencyMs < 1000, JSON.stringify(report.relay));
    // A bad token is refused with the server's reason, in one line.
    const bad = await runCli(['netcheck', '--server', t.server.url], { env: { TRAVERSE_TOKEN: 'trv1_' + 'Z'.repeat(43), TRAVERSE_STUN: '' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^traverse: .*HTTP 401: the server does not know this token/);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  } finally {
    await t.close();
    await stun.close();
  }
});

test('TRAVERSE_SERVER exported for the other commands, without a token, does not stop netcheck --stun', async () => {
  const stun = await startStunServer({ listen: { address: '127.0.0.1', port: 0 } });
  try {
    const r = await runCli(['netcheck', '--json', '--timeout', '800', '--stun', `127.0.0.1:${stun.udp[0]!.port}`], {
      env: { TRAVERSE_SERVER: 'http://127.0.0.1:9', TRAVERSE_TOKEN: '' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { relay: unknown }).relay, null);
    // Typed on the command line, --server does need a token.
    const typed = await runCli(['netcheck', '--server', 'http://127.0.0.1:9'], { env: { TRAVERSE_TOKEN: '' } });
    assert.equal(typed.code, 2);
    assert.match(typed.stderr, /--server needs a token/);
  } finally {
    await stun.close();
  }
});

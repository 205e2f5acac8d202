// ACME against a real ACME server: pebble on loopback. The server gets its certificate through
// TLS-ALPN-01 answered on its own listen port, keeps it in the data folder (0600) so a restart
// does not ask again, and renews it at two thirds of its lifetime (pebble issues 12-second
// certificates here) while a connected agent stays connected; peers trust pebble's root with --ca.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { runCli } from '../helpers/cli.js';
import { startServerProcess, startTraverse, type Running } from '../helpers/processes.js';
import { hasOpenssl } from '../helpers/test-ca.js';
import { freePort, hasPebble, startPebble } from '../helpers/pebble.js';
import { skipOrFail } from '../helpers/required.js';

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

function served(port: number, ca: string): Promise<{ fingerprint: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      const c = s.getPeerCertificate();
      resolve({ fingerprint: c.fingerprint256, issuer: String(c.issuer.CN) });
      s.end();
    });
    s.on('error', reject);
  });
}

test('ACME (pebble): TLS-ALPN-01 on the listen port, stored for restarts, renewed while peers stay', async (t) => {
  if (!hasPebble()) return skipOrFail(t, 'pebble is not installed (Debian package pebble)');
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const port = await freePort();
  const pebble = await startPebble({ tlsPort: port, validitySeconds: 12 });
  const dir = mkdtempSync(join(tmpdir(), 'traverse-acme-'));
  const agentState = mkdtempSync(join(tmpdir(), 'traverse-acme-agent-'));
  const flags = ['--listen', `127.0.0.1:${port}`, '--acme-domain', 'localhost', '--acme-email', 'ops@example.com', '--acme-directory', pebble.directoryUrl, '--ca', pebble.apiCaFile];
  let server: Running | undefined;
  let agent: Running | undefined;
  try {
    // Without --ca the directory's own certificate is not trusted: said at once, exit 1.
    const untrusted = await runCli(['server', '--data', dir, ...flags.slice(0, -2)], { env: { TRAVERSE_CA: '' } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^traverse: cannot get a certificate for localhost from https:\/\/127\.0\.0\.1:\d+\/dir: the ACME directory cannot be read: the server's certificate is not trusted/m);
    // First start: no certificate yet; the CA validates on the listen port, then the banner.
    const first = await startServerProcess(dir, flags);
    server = first.server;
    assert.equal(first.url, `https://127.0.0.1:${port}`);
    assert.match(server.out(), /asking the ACME CA for a certificate/);
    assert.match(server.out(), /answered a TLS-ALPN-01 validation/, 'validated through the TLS-ALPN-01 answer on the listen port');
    assert.match(server.out(), /TLS {11}localhost until \d{4}-\d\d-\d\d from ACME https:\/\/127\.0\.0\.1:\d+\/dir, renewed from /);
    for (const f of ['account.key', 'localhost.key', 'localhost.crt', 'localhost.json']) {
      assert.equal(statSync(join(dir, 'acme', f)).mode & 0o777, 0o600, f);
    }
    assert.equal(statSync(join(dir, 'acme')).mode & 0o777, 0o700);
    const rootFile = join(dir, 'pebble-root.pem');
    writeFileSync(rootFile, await pebble.rootPem());
    const root = readFileSync(rootFile);
    const issued = await served(port, root.toString());
    assert.match(issued.issuer, /Pebble Intermediate CA/);
    await server.stop();

    // A restart serves the stored certificate: no new order.
    const orders = (pebble.log().match(/Issued certificate serial/g) ?? []).length;
    const second = await startServerProcess(dir, flags);
    server = second.server;
    assert.doesNotMatch(server.out(), /asking the ACME CA/, 'the stored certificate is served after a restart');
    assert.equal((await served(port, root.toString())).fingerprint, issued.fingerprint);
    assert.equal((pebble.log().match(/Issued certificate serial/g) ?? []).length, orders);

    // Peers trust pebble's root with --ca and connect over wss.
    const https = `https://localhost:${port}`;
    const agentToken = lastLine((await runCli(['token', 'create', '--data', dir, '--agent', 'ws1'])).stdout);
    const clientToken = lastLine((await runCli(['token', 'create', '--data', dir, '--client', 'lap', '--allow', 'ws1'])).stdout);
    agent = startTraverse(['agent', '--server', https, '--ca', rootFile, '--stun', 'disable'], { TRAVERSE_TOKEN: agentToken, TRAVERSE_STATE_DIR: agentState });
    const env = { TRAVERSE_TOKEN: clientToken, TRAVERSE_SERVER: https, TRAVERSE_CA: rootFile };
    const ping = await runCli(['ping', 'ws1', '--count', '1', '--stun', 'disable'], { env, timeoutMs: 30_000 });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    const since = (JSON.parse((await runCli(['status', '--json'], { env })).stdout) as { peers: { name: string; connectedAt: number }[] }).peers.find((p) => p.name === 'ws1')!.connectedAt;

    // Renewal at two thirds of 12 s, by the server's own timer; the agent keeps its connection.
    await server.waitFor(/asking the ACME CA[\s\S]*ACME certificate issued and served/, 20_000);
    const renewed = await served(port, root.toString());
    assert.notEqual(renewed.fingerprint, issued.fingerprint, 'a new certificate is served');
    const status = JSON.parse((await runCli(['status', '--json'], { env })).stdout) as { peers: { name: string; connectedAt: number }[] };
    assert.equal(status.peers.find((p) => p.name === 'ws1')?.connectedAt, since, 'the agent stayed connected through the renewal');
  } finally {
    await agent?.stop();
    await server?.stop();
    await pebble.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(agentState, { recursive: true, force: true });
  }
});

// ACME against a real ACME server: pebble on loopback. The server gets its certificate through
// TLS-ALPN-01 answered on its own listen port, keeps it in the data folder (0600) so a restart
// does not ask again, and renews it at two thirds of its lifetime (a second pebble issues
// 6-second certificates) while a connected agent stays connected; peers trust pebble's root.
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

type Peers = { peers: { name: string; connectedAt: number }[] };

/** Pebble, a server on its TLS-ALPN-01 port with ACME flags, tokens, and cleanup. */
async function acmeSetup(validitySeconds?: number): Promise<{
  port: number;
  dir: string;
  flags: string[];
  pebble: Awaited<ReturnType<typeof startPebble>>;
  cleanup: () => Promise<void>;
  running: Running[];
}> {
  const port = await freePort();
  const pebble = await startPebble({ tlsPort: port, ...(validitySeconds ? { validitySeconds } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'traverse-acme-'));
  const flags = ['--listen', `127.0.0.1:${port}`, '--acme-domain', 'localhost', '--acme-email', 'ops@example.com', '--acme-directory', pebble.directoryUrl, '--ca', pebble.apiCaFile];
  const running: Running[] = [];
  return {
    port,
    dir,
    flags,
    pebble,
    running,
    cleanup: async () => {
      for (const r of running.reverse()) await r.stop();
      await pebble.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function peersWith(dir: string, https: string, rootFile: string): Promise<{ agent: Running; env: NodeJS.ProcessEnv }> {
  const agentToken = lastLine((await runCli(['token', 'create', '--data', dir, '--agent', 'ws1'])).stdout);
  const clientToken = lastLine((await runCli(['token', 'create', '--data', dir, '--client', 'lap', '--allow', 'ws1'])).stdout);
  const agent = startTraverse(['agent', '--server', https, '--ca', rootFile, '--stun', 'disable'], { TRAVERSE_TOKEN: agentToken, TRAVERSE_STATE_DIR: join(dir, 'agent-state') });
  return { agent, env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_SERVER: https, TRAVERSE_CA: rootFile } };
}

test('ACME (pebble): TLS-ALPN-01 on the listen port, stored 0600 and served again after a restart', async (t) => {
  if (!hasPebble()) return skipOrFail(t, 'pebble is not installed (Debian package pebble)');
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const { port, dir, flags, pebble, cleanup, running } = await acmeSetup();
  try {
    // Without --ca the directory's own certificate is not trusted: said at once, exit 1.
    const untrusted = await runCli(['server', '--data', dir, ...flags.slice(0, -2)], { env: { TRAVERSE_CA: '' } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^traverse: cannot get a certificate for localhost from https:\/\/127\.0\.0\.1:\d+\/dir: the ACME directory cannot be read: the server's certificate is not trusted/m);
    // First start: no certificate yet; the CA validates on the listen port, then the banner.
    const first = await startServerProcess(dir, flags);
    running.push(first.server);
    assert.equal(first.url, `https://127.0.0.1:${port}`);
    assert.match(first.server.out(), /asking the ACME CA for a certificate/);
    assert.match(first.server.out(), /answered a TLS-ALPN-01 validation/, 'validated through the TLS-ALPN-01 answer on the listen port');
    assert.match(first.server.out(), /TLS {11}localhost until \d{4}-\d\d-\d\d from ACME https:\/\/127\.0\.0\.1:\d+\/dir, renewed from /);
    for (const f of ['account.key', 'localhost.key', 'localhost.crt', 'localhost.json']) {
      assert.equal(statSync(join(dir, 'acme', f)).mode & 0o777, 0o600, f);
    }
    assert.equal(statSync(join(dir, 'acme')).mode & 0o777, 0o700);
    const rootFile = join(dir, 'pebble-root.pem');
    writeFileSync(rootFile, await pebble.rootPem());
    const root = readFileSync(rootFile, 'utf8');
    const issued = await served(port, root);
    assert.match(issued.issuer, /Pebble Intermediate CA/);
    await first.server.stop();

    // A restart serves the stored certificate: no new order.
    const orders = (pebble.log().match(/Issued certificate serial/g) ?? []).length;
    const second = await startServerProcess(dir, flags);
    running.push(second.server);
    assert.doesNotMatch(second.server.out(), /asking the ACME CA/, 'the stored certificate is served after a restart');
    assert.equal((await served(port, root)).fingerprint, issued.fingerprint);
    assert.equal((pebble.log().match(/Issued certificate serial/g) ?? []).length, orders);

    // Peers trust pebble's root with --ca and connect over wss.
    const { agent, env } = await peersWith(dir, `https://localhost:${port}`, rootFile);
    running.push(agent);
    const ping = await runCli(['ping', 'ws1', '--count', '1', '--stun', 'disable'], { env, timeoutMs: 30_000 });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  } finally {
    await cleanup();
  }
});

test('ACME (pebble): renewed at two thirds of the lifetime by the server itself; the agent stays connected', async (t) => {
  if (!hasPebble()) return skipOrFail(t, 'pebble is not installed (Debian package pebble)');
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const { port, dir, flags, pebble, cleanup, running } = await acmeSetup(6);
  try {
    const { server } = await startServerProcess(dir, flags);
    running.push(server);
    const rootFile = join(dir, 'pebble-root.pem');
    writeFileSync(rootFile, await pebble.rootPem());
    const { agent, env } = await peersWith(dir, `https://localhost:${port}`, rootFile);
    running.push(agent);
    const agentSince = async (): Promise<number | undefined> => {
      const r = await runCli(['status', '--json'], { env });
      return r.code === 0 ? (JSON.parse(r.stdout) as Peers).peers.find((p) => p.name === 'ws1')?.connectedAt : undefined;
    };
    let since: number | undefined;
    for (let i = 0; since === undefined; i++) {
      if (i > 100) throw new Error(`the agent did not connect:\n${agent.out()}`);
      since = await agentSince();
      if (since === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    // From now on: the next renewal the server's own timer makes (a 6 s certificate renews at 4 s).
    const before = await served(port, readFileSync(rootFile, 'utf8'));
    const issuedSoFar = (server.out().match(/ACME certificate issued and served/g) ?? []).length;
    await server.waitFor(new RegExp(`(?:ACME certificate issued and served[\\s\\S]*){${issuedSoFar + 1}}`), 20_000);
    const after = await served(port, readFileSync(rootFile, 'utf8'));
    assert.notEqual(after.fingerprint, before.fingerprint, 'a new certificate is served');
    assert.equal(await agentSince(), since, 'the agent stayed connected through the renewal');
  } finally {
    await cleanup();
  }
});

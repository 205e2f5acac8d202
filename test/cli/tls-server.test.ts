// `traverse server --tls-cert/--tls-key` as processes, with certificates made by openssl at test
// time: peers reach it over https/wss with --ca and refuse it without; a SIGHUP swaps the served
// certificate while the agent stays connected; bad files are refused with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { runCli } from '../helpers/cli.js';
import { startServerProcess, startTraverse } from '../helpers/processes.js';
import { hasOpenssl, makeTestCa } from '../helpers/test-ca.js';
import { skipOrFail } from '../helpers/required.js';

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

/** The SHA-256 fingerprint of the certificate the server at 127.0.0.1:port presents for `name`. */
function servedFingerprint(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: name, ca: readFileSync(ca) }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

test('https server: --ca peers connect, others refuse it; SIGHUP reloads without dropping the agent', async (t) => {
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const ca = makeTestCa();
  const first = ca.issue('first', ['localhost'], { chain: true });
  const certFile = join(ca.dir, 'served.pem');
  const keyFile = join(ca.dir, 'served.key');
  copyFileSync(first.certFile, certFile);
  copyFileSync(first.keyFile, keyFile);
  const dir = mkdtempSync(join(tmpdir(), 'traverse-tls-'));
  const { server, url } = await startServerProcess(dir, [], { TRAVERSE_TLS_CERT: certFile, TRAVERSE_TLS_KEY: keyFile });
  const agentState = mkdtempSync(join(tmpdir(), 'traverse-tls-agent-'));
  let agent;
  try {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.out(), /coordination {2}wss:\/\/localhost:\d+\/api\/v1\/coordinate/);
    assert.match(server.out(), /TLS {11}localhost until \d{4}-\d\d-\d\d, from .*served\.pem \(kill -HUP \d+ reloads it\)/);
    const port = Number(new URL(url).port);
    const https = `https://localhost:${port}`;
    const agentToken = lastLine((await runCli(['token', 'create', '--data', dir, '--agent', 'ws1'])).stdout);
    const clientToken = lastLine((await runCli(['token', 'create', '--data', dir, '--client', 'lap', '--allow', 'ws1'])).stdout);

    agent = startTraverse(['agent', '--server', https, '--ca', ca.caFile, '--stun', 'disable'], { TRAVERSE_TOKEN: agentToken, TRAVERSE_STATE_DIR: agentState });
    await agent.waitFor(/connected|ready|waiting for clients/i, 15_000).catch(() => undefined);
    const ping = await runCli(['ping', 'ws1', '--count', '2', '--stun', 'disable'], { env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_SERVER: https, TRAVERSE_CA: ca.caFile }, timeoutMs: 30_000 });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, /2 sent, 2 received/);
    assert.doesNotMatch(ping.stderr, /clear text/, 'no cleartext warning for https');

    // Without --ca the private CA is not trusted, and nothing turns verification off.
    const untrusted = await runCli(['status', '--server', https], { env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_CA: '' } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^traverse: cannot reach https:\/\/localhost:\d+ \(the server's certificate is not trusted \(\w+\): give its CA with --ca FILE or TRAVERSE_CA\)/);
    // netcheck --server reads the server's config over https (no STUN here: only the relay's latency).
    const netcheck = await runCli(['netcheck', '--server', https, '--json', '--timeout', '1000'], { env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_CA: ca.caFile } });
    assert.equal(netcheck.code, 0, netcheck.stderr);
    const relay = (JSON.parse(netcheck.stdout) as { relay: { server: string; latencyMs: number } | null }).relay;
    assert.equal(relay?.server, `localhost:${port}`);
    // A peer fails at once, not after its 10 s connect timeout: retrying cannot fix a certificate.
    const t0 = Date.now();
    const noCa = await runCli(['ping', 'ws1', '--count', '1', '--stun', 'disable'], { env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_SERVER: https, TRAVERSE_CA: '' } });
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /^traverse: cannot connect to https:\/\/localhost:\d+: the server's certificate is not trusted/m);
    assert.ok(Date.now() - t0 < 8000, `failed within ${Date.now() - t0} ms`);
    // A name the certificate does not carry is refused too.
    const wrongName = await runCli(['status', '--server', `https://127.0.0.1:${port}`, '--ca', ca.caFile], { env: { TRAVERSE_TOKEN: clientToken } });
    assert.equal(wrongName.code, 1);
    assert.match(wrongName.stderr, /certificate is not for this name/);
    const before = JSON.parse((await runCli(['status', '--server', https, '--ca', ca.caFile, '--json'], { env: { TRAVERSE_TOKEN: clientToken } })).stdout) as { peers: { name: string; connectedAt: number }[] };
    const agentSince = before.peers.find((p) => p.name === 'ws1')!.connectedAt;

    // SIGHUP: a new certificate in the same files; new handshakes get it, the agent stays.
    const fp1 = await servedFingerprint(port, 'localhost', ca.caFile);
    const second = ca.issue('second', ['localhost']);
    copyFileSync(second.certFile, certFile);
    copyFileSync(second.keyFile, keyFile);
    server.proc.kill('SIGHUP');
    await server.waitFor(/SIGHUP: certificate reloaded; connected peers stay/);
    const fp2 = await servedFingerprint(port, 'localhost', ca.caFile);
    assert.notEqual(fp2, fp1, 'the new certificate is served');
    // A broken pair is refused and the previous one kept.
    writeFileSync(keyFile, readFileSync(first.keyFile));
    server.proc.kill('SIGHUP');
    await server.waitFor(/does not belong to the certificate.*still serving the previous one/);
    assert.equal(await servedFingerprint(port, 'localhost', ca.caFile), fp2);
    const after = JSON.parse((await runCli(['status', '--server', https, '--ca', ca.caFile, '--json'], { env: { TRAVERSE_TOKEN: clientToken } })).stdout) as { peers: { name: string; connectedAt: number }[] };
    assert.equal(after.peers.find((p) => p.name === 'ws1')?.connectedAt, agentSince, 'the agent kept its connection through both reloads');
    const again = await runCli(['ping', 'ws1', '--count', '1', '--stun', 'disable'], { env: { TRAVERSE_TOKEN: clientToken, TRAVERSE_SERVER: https, TRAVERSE_CA: ca.caFile }, timeoutMs: 30_000 });
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await agent?.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(agentState, { recursive: true, force: true });
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

test('bad TLS flags and files: one line that says what is wrong', async (t) => {
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const ca = makeTestCa();
  const a = ca.issue('a', ['localhost']);
  const b = ca.issue('b', ['localhost']);
  const dir = mkdtempSync(join(tmpdir(), 'traverse-tls-bad-'));
  try {
    const server = (flags: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof runCli> =>
      runCli(['server', '--data', dir, '--listen', '127.0.0.1:0', '--stun-listen', 'disable', ...flags], { env });
    const cases: [string[], number, RegExp][] = [
      [['--tls-cert', a.certFile], 2, /--tls-cert and --tls-key go together/],
      [['--tls-cert', join(dir, 'nope.pem'), '--tls-key', a.keyFile], 1, /^traverse: --tls-cert .*nope\.pem: no such file$/m],
      [['--tls-cert', a.certFile, '--tls-key', b.keyFile], 1, /--tls-key .*b\.key does not belong to the certificate in --tls-cert .*a\.pem/],
      [['--tls-cert', a.keyFile, '--tls-key', a.keyFile], 1, /no PEM certificate in it/],
      [['--tls-cert', a.certFile, '--tls-key', a.certFile], 1, /--tls-key .*: not a PEM private key/],
      [['--tls-cert', a.certFile, '--tls-key', a.keyFile, '--acme-domain', 'x.example'], 2, /not both/],
      [['--acme-email', 'ops@example.com'], 2, /need --acme-domain/],
      [['--acme-domain', 'bad_name!'], 2, /is not a DNS name/],
      [['--trust-proxy', '10.0.0.5,proxy.example'], 2, /--trust-proxy "10\.0\.0\.5,proxy\.example": expected the proxy's IP addresses/],
    ];
    for (const [flags, code, re] of cases) {
      const r = await server(flags);
      assert.equal(r.code, code, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('traverse: ')).length, 1);
    }
    const proxyEnv = await server([], { TRAVERSE_TRUST_PROXY: 'yes' });
    assert.equal(proxyEnv.code, 2);
    assert.match(proxyEnv.stderr, /TRAVERSE_TRUST_PROXY "yes"/);
    // The env twins are read the same way.
    const env = await server([], { TRAVERSE_TLS_CERT: a.certFile, TRAVERSE_TLS_KEY: b.keyFile });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /does not belong/);
    // A plain http:// URL to another host: one warning, before anything is sent (the bad --ca
    // file stops the command before it connects).
    const clear = await runCli(['status', '--server', 'http://coord.example:8080', '--ca', join(dir, 'none.pem')], { env: { TRAVERSE_TOKEN: 'x' } });
    assert.equal(clear.code, 2);
    assert.match(clear.stderr, /^traverse: warning: http:\/\/coord\.example:8080 is not encrypted: the token and the endpoints travel in clear text/m);
    assert.match(clear.stderr, /--ca .*none\.pem: no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

// What the network sees of a whole session with the coordination server (register, coordinate,
// relayed stream, ping), captured with tcpdump on loopback on the server's port. Over TLS the
// capture holds neither token, nor the endpoint the agent published (which the server hands to
// the client), nor the protocol path; over
// plain HTTP the same check finds them (so the check can fail). Relayed payload is end-to-end
// encrypted by the peers in both cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect, serve, type Agent, type Connection, type NodeOptions } from '../../src/index.js';
import { CertificateHolder, loadCertificateFiles } from '../../src/server/tls.js';
import { getJson } from '../../src/net/http-get.js';
import { trustFromPem } from '../../src/net/tls-trust.js';
import { readAll } from '../helpers/read-all.js';
import { startTestServer } from './helpers.js';
import { hasOpenssl, makeTestCa } from '../helpers/test-ca.js';
import { skipOrFail } from '../helpers/required.js';

const TCPDUMP = '/usr/bin/tcpdump';


interface Session {
  readonly capture: Buffer;
  readonly secrets: { agentToken: string; clientToken: string; endpoints: string[]; marker: string };
}

/** One whole session against a server with or without TLS, captured on its port. */
async function capturedSession(tls: { certFile: string; keyFile: string; caPem: string } | null): Promise<Session> {
  const t = await startTestServer({ ...(tls ? { tls: new CertificateHolder(loadCertificateFiles(tls.certFile, tls.keyFile)) } : {}) });
  const pcap = join(t.dir, 'session.pcap');
  const dump = spawn(TCPDUMP, ['-i', 'lo', '-s', '0', '-U', '--immediate-mode', '-n', '-w', pcap, 'tcp', 'port', String(t.server.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let dumpErr = '';
  dump.stderr.on('data', (d: Buffer) => (dumpErr += d.toString()));
  let agent: Agent | undefined;
  let conn: Connection | undefined;
  try {
    for (let i = 0; !/listening on/.test(dumpErr); i++) {
      if (i > 100 || dump.exitCode !== null) throw new Error(`tcpdump did not start: ${dumpErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const agentToken = await t.token('agent', 'ws1');
    const clientToken = await t.token('client', 'laptop', { allow: ['ws1'] });
    const admin = await t.token('admin', 'ops');
    const base: Omit<NodeOptions, 'token'> = {
      server: t.server.url,
      stun: [],
      localAddresses: () => ['127.0.0.1'],
      tcpLane: false,
      connectTimeoutMs: 5000,
      ...(tls ? { ca: tls.caPem } : {}),
    };
    agent = await serve({ ...base, token: agentToken, onStream: (_req, stream) => stream.pipe(stream) });
    conn = await connect('ws1', { ...base, token: clientToken, disableDirect: true });
    assert.equal(conn.path.kind, 'relay', 'the client takes no direct path: everything is relayed');
    const marker = `TRAVERSE-TLS-MARKER-${randomBytes(6).toString('hex')}`;
    const stream = await conn.openStream('echo');
    const back = readAll(stream);
    stream.end(Buffer.from(marker.repeat(64)));
    assert.equal((await back).toString(), marker.repeat(64));
    assert.ok(await conn.ping(), 'a ping through the relay');
    // The endpoints the nodes published, as the server hands them out (read over the same port).
    const peers = (await getJson(new URL('/api/v1/peers', t.server.url), admin, tls ? { trust: trustFromPem(tls.caPem) } : {})).body as { peers: { node: { endpoints: string[] } | null }[] };
    const endpoints = peers.peers.flatMap((p) => p.node?.endpoints ?? []);
    assert.ok(endpoints.length >= 1, `the agent published its endpoints: ${endpoints.join(' ')}`);
    await conn.close();
    await agent.close();
    await new Promise((r) => setTimeout(r, 300));
    return { capture: readFileSync(pcap), secrets: { agentToken, clientToken, endpoints, marker } };
  } finally {
    await conn?.close();
    await agent?.close();
    if (dump.exitCode === null) {
      const exited = new Promise((r) => dump.once('exit', r));
      dump.kill('SIGINT');
      await exited;
    }
    await t.close();
  }
}

test('a captured session over TLS shows no token and no endpoint; over plain HTTP it does', async (t) => {
  if (process.getuid?.() !== 0) return skipOrFail(t, 'capturing on lo needs root');
  if (!existsSync(TCPDUMP)) return skipOrFail(t, 'tcpdump is not installed');
  if (!hasOpenssl()) return skipOrFail(t, 'openssl is not installed');
  const ca = makeTestCa();
  try {
    const files = ca.issue('server', ['127.0.0.1']);
    const secure = await capturedSession({ ...files, caPem: readFileSync(ca.caFile, 'utf8') });
    const plain = await capturedSession(null);
    const found = (s: Session): Record<string, boolean> => ({
      agentToken: s.capture.includes(s.secrets.agentToken),
      clientToken: s.capture.includes(s.secrets.clientToken),
      anyEndpoint: s.secrets.endpoints.some((e) => s.capture.includes(e)),
      protocolPath: s.capture.includes('/api/v1/coordinate'),
      marker: s.capture.includes('TRAVERSE-TLS-MARKER'),
    });
    t.diagnostic(`TLS capture ${secure.capture.length} bytes: ${JSON.stringify(found(secure))}`);
    t.diagnostic(`plain capture ${plain.capture.length} bytes: ${JSON.stringify(found(plain))}`);
    // The plain session shows what a capture can see: the check is able to fail.
    assert.deepEqual(found(plain), { agentToken: true, clientToken: true, anyEndpoint: true, protocolPath: true, marker: false });
    assert.deepEqual(found(secure), { agentToken: false, clientToken: false, anyEndpoint: false, protocolPath: false, marker: false });
    // The TLS capture did carry the session (the relayed stream went through it).
    assert.ok(secure.capture.length > 64 * 30, `the TLS capture holds the relayed traffic (${secure.capture.length} bytes)`);
  } finally {
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

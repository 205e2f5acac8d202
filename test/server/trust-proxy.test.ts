// --trust-proxy behind a real haproxy (Debian `haproxy`, `option forwardfor`) on loopback. The
// proxy reaches the server from 127.0.0.3; clients reach the proxy from 127.0.0.1 or 127.0.0.5.
// Trusted (--trust-proxy 127.0.0.3), the client's address is the right-most X-Forwarded-For entry
// (a header the client sent itself is not believed, nor one from a client that reaches the server
// directly) and the per-address cap counts nodes per client; not trusted, every node comes from
// the proxy and the header is ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { PROTOCOL_PATH, ROLE_HEADER } from '../../src/coordination/protocol.js';
import { httpGet, startTestServer, type TestServer } from './helpers.js';
import { freePort } from '../helpers/pebble.js';
import { skipOrFail } from '../helpers/required.js';

const HAPROXY = '/usr/sbin/haproxy';
const PROXY_SOURCE = '127.0.0.3';

async function startHaproxy(backendPort: number): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  // WebSocket upgrades pass in http mode; `timeout tunnel` applies once a connection is upgraded.
  writeFileSync(
    cfg,
    [
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout tunnel 1h',
      '  option forwardfor',
      'frontend traverse',
      `  bind 127.0.0.1:${port}`,
      `  bind 127.0.0.5:${port}`,
      '  default_backend coordinator',
      'backend coordinator',
      `  server s1 127.0.0.1:${backendPort} source ${PROXY_SOURCE}`,
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 50 || proc.exitCode !== null) {
      await stop();
      throw new Error(`haproxy did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop };
}

/** A node's WebSocket through the proxy, from `from`, with an X-Forwarded-For of its own making. */
function openVia(port: number, token: string, from: string, spoof?: string): Promise<{ ws: WebSocket; status: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, [ROLE_HEADER]: 'agent', ...(spoof ? { 'x-forwarded-for': spoof } : {}) };
    const ws = new WebSocket(`ws://127.0.0.1:${port}${PROTOCOL_PATH}`, { headers, localAddress: from });
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => resolve({ ws, status: res.statusCode ?? 0 }));
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

async function remotes(t: TestServer, admin: string): Promise<string[]> {
  const r = await httpGet(`${t.server.url}/api/v1/peers`, admin);
  return ((r.body as { peers: { remote: string | null }[] }).peers.map((p) => p.remote ?? 'null')).sort();
}

test('--trust-proxy behind haproxy: the right-most forwarded address, per-client caps; untrusted: the proxy', async (t) => {
  if (!existsSync(HAPROXY)) return skipOrFail(t, 'haproxy is not installed (Debian package haproxy)');
  const trusted = await startTestServer({ trustProxy: [PROXY_SOURCE], maxConnectionsPerAddress: 2 });
  const untrusted = await startTestServer({ maxConnectionsPerAddress: 0 });
  const proxyT = await startHaproxy(trusted.server.port);
  const proxyU = await startHaproxy(untrusted.server.port);
  const sockets: WebSocket[] = [];
  try {
    const adminT = await trusted.token('admin', 'ops');
    const a1 = await trusted.token('agent', 'a1');
    const a2 = await trusted.token('agent', 'a2');
    const a3 = await trusted.token('agent', 'a3');
    // The client claims 6.6.6.6; haproxy appends the address it saw, which is the one believed.
    const first = await openVia(proxyT.port, a1, '127.0.0.1', '6.6.6.6');
    sockets.push(first.ws);
    assert.equal(first.status, 101);
    const second = await openVia(proxyT.port, a2, '127.0.0.1');
    sockets.push(second.ws);
    assert.equal(second.status, 101);
    assert.deepEqual(await remotes(trusted, adminT), ['127.0.0.1', '127.0.0.1'], 'the client address, not the proxy, not the spoofed one');
    // Two nodes from 127.0.0.1 is the cap; a third is refused, while another client gets in.
    const third = await openVia(proxyT.port, a3, '127.0.0.1');
    sockets.push(third.ws);
    assert.equal(third.status, 429);
    const other = await openVia(proxyT.port, a3, '127.0.0.5');
    sockets.push(other.ws);
    assert.equal(other.status, 101);
    assert.deepEqual(await remotes(trusted, adminT), ['127.0.0.1', '127.0.0.1', '127.0.0.5']);
    // The proxy itself holds 4 connections (one refused after its upgrade request), over the cap
    // of 2: a trusted proxy's connections are not capped per TCP address, its clients' nodes are.
    // A client that reaches the server directly is not a proxy: its header is not read.
    const direct = await new Promise<{ ws: WebSocket; status: number }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${trusted.server.port}${PROTOCOL_PATH}`, {
        headers: { authorization: `Bearer ${a2}`, [ROLE_HEADER]: 'agent', 'x-forwarded-for': '6.6.6.6' },
        localAddress: '127.0.0.7',
      });
      ws.once('open', () => resolve({ ws, status: 101 }));
      ws.once('error', reject);
    });
    sockets.push(direct.ws);
    const withDirect = await remotes(trusted, adminT);
    assert.ok(withDirect.some((r) => /^127\.0\.0\.7:\d+$/.test(r)), `the direct client is its TCP address: ${withDirect.join(' ')}`);
    assert.ok(!withDirect.includes('6.6.6.6'));

    // Not trusted: the header means nothing; every node is the proxy's connection.
    const adminU = await untrusted.token('admin', 'ops');
    const u1 = await openVia(proxyU.port, await untrusted.token('agent', 'u1'), '127.0.0.5', '6.6.6.6');
    sockets.push(u1.ws);
    assert.equal(u1.status, 101);
    const seen = await remotes(untrusted, adminU);
    assert.equal(seen.length, 1);
    assert.match(seen[0]!, new RegExp(`^${PROXY_SOURCE.replace(/\./g, '\\.')}:\\d+$`));
  } finally {
    for (const ws of sockets) ws.terminate();
    await proxyT.stop();
    await proxyU.stop();
    await trusted.close();
    await untrusted.close();
  }
});

// What a stranger on the network can make the server hold: connections per address, requests
// that never finish their headers, request bodies on a read-only API, failed authentications.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { httpGet, startTestServer, upgradeStatus } from './helpers.js';

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
  });
}

function closedWithin(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

test('one address holds at most maxConnectionsPerAddress connections; unfinished headers are cut after the timeout', async () => {
  const t = await startTestServer({ maxConnectionsPerAddress: 20, headersTimeoutMs: 1000 });
  try {
    const sockets: Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await openSocket(t.server.port);
      s.on('error', () => undefined);
      s.resume(); // read what the server sends, so its close is seen
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // never finished
      sockets.push(s);
    }
    const refused = await Promise.all(sockets.slice(20).map((s) => closedWithin(s, 1000)));
    assert.ok(refused.every(Boolean), 'connections beyond the cap are closed at once');
    // The headers timeout is 1 s, checked every second: 5 s leaves room for a loaded machine.
    const cut = await Promise.all(sockets.slice(0, 20).map((s) => closedWithin(s, 5000)));
    assert.ok(cut.every(Boolean), 'half-open requests are closed after the headers timeout');
    // The address is served again.
    assert.equal((await httpGet(`${t.server.url}/healthz`)).status, 200);
  } finally {
    await t.close();
  }
});

test('a request body on the read-only API is refused unread, and the connection closed', async () => {
  const t = await startTestServer();
  try {
    const s = await openSocket(t.server.port);
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('error', () => undefined);
    s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
    // Keep sending body: the server must answer and close long before 100 MiB.
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024);
    while (!s.destroyed && sent < 100 * 1024 * 1024 && !answer.includes('\r\n\r\n')) {
      if (!s.write(chunk)) await new Promise((r) => setTimeout(r, 5));
      sent += chunk.length;
    }
    assert.ok(await closedWithin(s, 3000), 'the server closed the connection');
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.ok(sent < 32 * 1024 * 1024, `the server answered after ${sent} body bytes`);
  } finally {
    await t.close();
  }
});

test('failed authentications from one address are throttled: 429 without a look at the token', async () => {
  // No refill during the test: on a loaded machine 30 upgrades may take longer than a second.
  const t = await startTestServer({ authThrottle: { failuresPerSec: 0 } });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await upgradeStatus(t.wsUrl, 'trv1_' + 'C'.repeat(43))).status);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401), 'the first ten are looked at');
    assert.ok(statuses.slice(10).every((s) => s === 429), `then refused unread: ${statuses.join(',')}`);
    assert.equal((await httpGet(`${t.server.url}/api/v1/peers`, 'trv1_' + 'D'.repeat(43))).status, 429, 'the API shares the budget');
  } finally {
    await t.close();
  }
});

// Tokens over real HTTP/WebSocket: a 401 that says what is wrong with the token, expiry and revocation of
// live connections (by another store handle, as `traverse token revoke` does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode } from '../../src/coordination/protocol.js';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import { RawPeer, httpGet, startTestServer, upgradeStatus } from './helpers.js';

test('no, unknown, expired and revoked tokens get 401 before the upgrade, each told what is wrong', async () => {
  const t = await startTestServer();
  try {
    const expiresAt = Date.now() - 1000;
    const expired = await t.token('agent', 'old', { expiresAt });
    const revoked = await t.token('agent', 'gone');
    await t.store.revokeIdentity('agent', 'gone', Date.now());
    const answers = await Promise.all([
      upgradeStatus(t.wsUrl),
      upgradeStatus(t.wsUrl, 'trv1_' + 'A'.repeat(43)),
      upgradeStatus(t.wsUrl, expired),
      upgradeStatus(t.wsUrl, revoked),
    ]);
    assert.deepEqual(answers.map((a) => a.status), [401, 401, 401, 401]);
    const messages = answers.map((a) => (JSON.parse(a.body) as { message: string }).message);
    assert.match(messages[0]!, /no bearer token/);
    assert.match(messages[1]!, /does not know this token/);
    assert.equal(messages[2], `this token expired at ${new Date(expiresAt).toISOString()}; ask an administrator for a new one`);
    assert.match(messages[3]!, /^this token was revoked at \d{4}-\d\d-\d\dT/);
    const failures = await t.server.metrics.authFailures.get();
    assert.equal(failures.values[0]?.value, 4);
    // The HTTP API answers the same way.
    const api = await httpGet(`${t.server.url}/api/v1/peers`, expired);
    assert.equal(api.status, 401);
    assert.match((api.body as { message: string }).message, /expired at/);
    assert.equal((await httpGet(`${t.server.url}/healthz`)).status, 200);
  } finally {
    await t.close();
  }
});

test('admin tokens read the API but cannot coordinate', async () => {
  const t = await startTestServer();
  try {
    const admin = await t.token('admin', 'ops');
    assert.equal((await upgradeStatus(t.wsUrl, admin)).status, 403);
    const m = await httpGet(`${t.server.url}/metrics`, admin);
    assert.equal(m.status, 200);
    assert.match(m.text, /traverse_coordinator_peers/);
    const agent = await t.token('agent', 'ws1');
    assert.equal((await httpGet(`${t.server.url}/metrics`, agent)).status, 403);
  } finally {
    await t.close();
  }
});

test('revocation through another store handle closes the live connection within the poll interval', async () => {
  const t = await startTestServer({ policyPollMs: 100 });
  try {
    const token = await t.token('client', 'laptop', { allow: ['ws1'] });
    const peer = await RawPeer.connect(t.wsUrl, token);
    const other = SqliteStore.open(t.dir); // what `traverse token revoke` opens
    const started = Date.now();
    assert.equal(await other.revokeIdentity('client', 'laptop', Date.now()), 1);
    await other.close();
    const closed = await peer.waitClosed(2000);
    assert.equal(closed.code, CloseCode.revoked);
    assert.match(closed.reason, /revoked/);
    assert.ok(Date.now() - started < 1500);
    assert.equal((await upgradeStatus(t.wsUrl, token)).status, 401);
  } finally {
    await t.close();
  }
});

test('a token that expires while connected ends its connection', async () => {
  const t = await startTestServer({ policyPollMs: 100 });
  try {
    const token = await t.token('agent', 'ws1', { expiresAt: Date.now() + 600 });
    const peer = await RawPeer.connect(t.wsUrl, token);
    const closed = await peer.waitClosed(2000);
    assert.equal(closed.code, CloseCode.revoked);
    assert.match(closed.reason, /expired/);
    assert.equal((await upgradeStatus(t.wsUrl, token)).status, 401);
  } finally {
    await t.close();
  }
});

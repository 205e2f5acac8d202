// The Store methods behind `token revoke --id`, `token rotate`, `identity delete` and
// `traverse allow`: what they change, and that each bumps the policy version a server polls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import { generateToken, hashToken } from '../../src/server/tokens.js';

async function withStore(f: (store: SqliteStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-store-'));
  const store = SqliteStore.open(dir);
  try {
    await f(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('tokensById finds tokens by a prefix of their hash, with their identity', async () => {
  await withStore(async (store) => {
    const a = await store.ensureIdentity('agent', 'dev-box', 1);
    const hash = hashToken(generateToken());
    const t = await store.createToken(a.id, hash, 1, null);
    assert.equal(t.hint, hash.slice(0, 8));
    const found = await store.tokensById(t.hint.toUpperCase());
    assert.equal(found.length, 1);
    assert.equal(found[0]!.token.id, t.id);
    assert.deepEqual([found[0]!.identity.kind, found[0]!.identity.name], ['agent', 'dev-box']);
    assert.equal((await store.tokensById(hash)).length, 1);
    // Two tokens sharing a prefix are both found (the CLI refuses such an id as ambiguous).
    const c = await store.ensureIdentity('client', 'laptop', 1);
    await store.createToken(c.id, hash.slice(0, 4) + 'f'.repeat(60), 1, null);
    assert.equal((await store.tokensById(hash.slice(0, 4))).length, 2);
    assert.equal((await store.tokensById('0000000000')).length, 0);
  });
});

test('revokeToken revokes one token of an identity, once, and bumps the policy version', async () => {
  await withStore(async (store) => {
    const a = await store.ensureIdentity('agent', 'dev-box', 1);
    const one = await store.createToken(a.id, hashToken(generateToken()), 1, null);
    const two = await store.createToken(a.id, hashToken(generateToken()), 1, null);
    const v = await store.policyVersion();
    assert.equal(await store.revokeToken(one.id, 50), true);
    assert.equal(await store.policyVersion(), v + 1);
    assert.equal(await store.tokenValid(one.id, 60), false);
    assert.equal(await store.tokenValid(two.id, 60), true, 'the other token of the identity is untouched');
    assert.equal(await store.revokeToken(one.id, 70), false, 'already revoked');
    assert.equal((await store.tokensById(one.hint))[0]!.token.revokedAt, 50, 'the first revocation time stays');
  });
});

test('rotateToken revokes every unrevoked token and creates the new one in one step', async () => {
  await withStore(async (store) => {
    const c = await store.ensureIdentity('client', 'laptop', 1);
    const oldSecret = generateToken();
    const old = await store.createToken(c.id, hashToken(oldSecret), 1, null);
    const gone = await store.createToken(c.id, hashToken(generateToken()), 1, null);
    await store.revokeToken(gone.id, 5);
    const v = await store.policyVersion();
    const newSecret = generateToken();
    const r = await store.rotateToken(c.id, hashToken(newSecret), 100, 10_000);
    assert.equal(await store.policyVersion(), v + 1);
    assert.deepEqual(r.revoked.map((t) => t.id), [old.id], 'a token revoked before is not counted again');
    assert.equal(r.revoked[0]!.revokedAt, 100);
    assert.equal(r.token.expiresAt, 10_000);
    assert.equal(await store.authenticate(hashToken(oldSecret), 200), undefined);
    assert.equal((await store.authenticate(hashToken(newSecret), 200))?.identity.name, 'laptop');
    const listed = (await store.listIdentities()).find((i) => i.name === 'laptop')!;
    assert.deepEqual(listed.tokens.map((t) => t.revokedAt), [100, 5, null]);
  });
});

test('rotateToken rolls back as a whole: a failed insert leaves the old token valid', async () => {
  await withStore(async (store) => {
    const a = await store.ensureIdentity('agent', 'dev-box', 1);
    const hash = hashToken(generateToken());
    const old = await store.createToken(a.id, hash, 1, null);
    const v = await store.policyVersion();
    // The same hash again violates the UNIQUE constraint after the revocation ran.
    await assert.rejects(store.rotateToken(a.id, hash, 100, null));
    assert.equal(await store.tokenValid(old.id, 200), true);
    assert.equal(await store.policyVersion(), v);
  });
});

test('deleteIdentity of an agent removes its tokens, history and its place in every allow list', async () => {
  await withStore(async (store) => {
    const agent = await store.ensureIdentity('agent', 'dev-box', 1);
    const other = await store.ensureIdentity('agent', 'other', 1);
    const client = await store.ensureIdentity('client', 'laptop', 1);
    // A client of the same name as the agent keeps its own rules.
    await store.ensureIdentity('client', 'dev-box', 1);
    await store.allow('laptop', ['dev-box', 'other'], 1);
    await store.allow('tablet', ['dev-box'], 1);
    await store.allow('dev-box', ['other'], 1);
    const t = await store.createToken(agent.id, hashToken(generateToken()), 1, null);
    await store.createToken(agent.id, hashToken(generateToken()), 1, 5); // expired
    const conn = await store.recordConnect(agent.id, 10, '192.0.2.1:1');
    await store.recordDisconnect(conn, 20, 'disconnected: bye');
    await store.claimNodeKey(agent.id, 'aa'.repeat(32), 10);
    await store.recordPath(client.id, agent.id, { kind: 'relay' }, 15);
    await store.recordPath(agent.id, client.id, { kind: 'relay' }, 15);
    await store.recordPath(client.id, other.id, { kind: 'relay' }, 15);
    const v = await store.policyVersion();

    const d = await store.deleteIdentity('agent', 'dev-box', 30);
    assert.ok(d);
    assert.deepEqual(
      { tokens: d.tokens, live: d.liveTokens, rules: d.allowRules, history: d.historyRows },
      { tokens: 2, live: 1, rules: 2, history: 4 }, // 1 connection, 2 path reports, 1 node key
    );
    assert.equal(await store.policyVersion(), v + 1);
    assert.equal(await store.findIdentity('agent', 'dev-box'), undefined);
    assert.equal(await store.tokenValid(t.id, 40), false);
    assert.deepEqual(await store.allowedAgents('laptop'), ['other']);
    assert.deepEqual(await store.allowedAgents('tablet'), []);
    assert.deepEqual(await store.allowedAgents('dev-box'), ['other'], 'the client "dev-box" is another identity');
    assert.equal((await store.connectionHistory(agent.id, 10)).length, 0);
    // The node key is free again, and the name can be created anew, without the old history.
    const again = await store.ensureIdentity('agent', 'dev-box', 50);
    assert.notEqual(again.id, agent.id);
    assert.equal(await store.claimNodeKey(client.id, 'aa'.repeat(32), 60), true);
    assert.equal(await store.deleteIdentity('agent', 'nobody', 70), undefined);
  });
});

test("deleteIdentity of a client removes its own rules only", async () => {
  await withStore(async (store) => {
    await store.ensureIdentity('client', 'laptop', 1);
    await store.allow('laptop', ['a', 'b'], 1);
    await store.allow('tablet', ['a'], 1);
    const d = await store.deleteIdentity('client', 'laptop', 10);
    assert.equal(d?.allowRules, 2);
    assert.deepEqual(await store.allowRules().then((rs) => rs.map((r) => `${r.client}>${r.agent}`)), ['tablet>a']);
    const admin = await store.ensureIdentity('admin', 'ops', 1);
    await store.createToken(admin.id, hashToken(generateToken()), 1, null);
    assert.deepEqual({ ...(await store.deleteIdentity('admin', 'ops', 10)), identity: undefined }, {
      identity: undefined,
      liveTokens: 1,
      tokens: 1,
      allowRules: 0,
      historyRows: 0,
    });
    assert.deepEqual((await store.listIdentities()).map((i) => i.name), []);
  });
});

test('disallow removes named rules, says which existed, and bumps the policy version', async () => {
  await withStore(async (store) => {
    await store.allow('laptop', ['a', 'b', 'c'], 7);
    const v = await store.policyVersion();
    assert.deepEqual(await store.disallow('laptop', ['b', 'zz']), ['b']);
    assert.equal(await store.policyVersion(), v + 1);
    assert.deepEqual(await store.allowedAgents('laptop'), ['a', 'c']);
    assert.deepEqual(await store.allowRules(), [
      { client: 'laptop', agent: 'a', createdAt: 7 },
      { client: 'laptop', agent: 'c', createdAt: 7 },
    ]);
  });
});

// The store test suite, run against both engines (SQLite and a real PostgreSQL): every Store
// method, what it changes, that changes to policy bump the version a server polls, and that two
// handles on one database (two replicas, or a server and `traverse token`) race safely.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateToken, hashToken } from '../../src/server/tokens.js';
import { openStore } from '../../src/server/store/open.js';
import { Sessions } from '../../src/server/dashboard/sessions.js';
import { forEachEngine, withStore } from '../helpers/store-engines.js';
import type { Path } from '../../src/coordination/protocol.js';
import type { Store } from '../../src/server/store/store.js';

// One row at a time, through the batch the server writes history with (recordHistory).
async function connect(store: Store, identityId: number, at: number, remote: string | null, replica: string): Promise<number> {
  return (await store.recordHistory({ connects: [{ identityId, at, remote, replica }], disconnects: [], paths: [] }))[0]!;
}
async function disconnect(store: Store, id: number, at: number, reason: string): Promise<void> {
  await store.recordHistory({ connects: [], disconnects: [{ id, at, reason }], paths: [] });
}
async function reportPath(store: Store, reporterId: number, peerId: number, path: Path, at: number): Promise<void> {
  await store.recordHistory({ connects: [], disconnects: [], paths: [{ reporterId, peerId, path, at }] });
}

forEachEngine((engine) => {
  test('tokensById finds tokens by a prefix of their hash, with their identity', async () => {
    await withStore(engine, async (store) => {
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
    await withStore(engine, async (store) => {
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
    await withStore(engine, async (store) => {
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
    await withStore(engine, async (store) => {
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
    await withStore(engine, async (store) => {
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
      const conn = await connect(store, agent.id, 10, '192.0.2.1:1', '');
      await disconnect(store, conn, 20, 'disconnected: bye');
      await store.claimNodeKey(agent.id, 'aa'.repeat(32), 10);
      await reportPath(store, client.id, agent.id, { kind: 'relay' }, 15);
      await reportPath(store, agent.id, client.id, { kind: 'relay' }, 15);
      await reportPath(store, client.id, other.id, { kind: 'relay' }, 15);
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
    await withStore(engine, async (store) => {
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
    await withStore(engine, async (store) => {
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

  test('identities and tokens: authenticate, refusal reasons, listing in byte order', async () => {
    await withStore(engine, async (store) => {
      const a = await store.ensureIdentity('agent', 'dev-box', 1);
      assert.equal((await store.ensureIdentity('agent', 'dev-box', 2)).id, a.id, 'ensureIdentity finds the existing one');
      assert.equal((await store.findIdentity('agent', 'dev-box'))?.createdAt, 1);
      assert.equal(await store.findIdentity('client', 'dev-box'), undefined);
      const live = generateToken();
      const expiring = generateToken();
      const revoked = generateToken();
      const t = await store.createToken(a.id, hashToken(live), 1, null);
      await store.createToken(a.id, hashToken(expiring), 1, 100);
      const r = await store.createToken(a.id, hashToken(revoked), 1, null);
      await store.revokeToken(r.id, 50);
      const auth = await store.authenticate(hashToken(live), 200);
      assert.equal(auth?.identity.id, a.id);
      assert.equal(auth?.token.id, t.id);
      assert.equal((await store.authenticate(hashToken(expiring), 99))?.identity.name, 'dev-box');
      assert.equal(await store.authenticate(hashToken(expiring), 100), undefined);
      assert.equal(await store.authenticate(hashToken(revoked), 60), undefined);
      assert.equal(await store.authenticate(hashToken(generateToken()), 60), undefined);
      assert.deepEqual(await store.refusal(hashToken(expiring), 100), { reason: 'expired', at: 100 });
      assert.deepEqual(await store.refusal(hashToken(revoked), 100), { reason: 'revoked', at: 50 });
      assert.deepEqual(await store.refusal(hashToken(generateToken()), 100), { reason: 'unknown' });
      assert.deepEqual(await store.refusal(hashToken(live), 100), { reason: 'valid' });
      // Byte order whatever the database's locale: upper case before lower, '-' before letters.
      for (const name of ['beta', 'Zed', 'alpha-2', 'alpha']) await store.ensureIdentity('client', name, 5);
      await store.allow('alpha', ['b-agent', 'B-agent', 'a'], 6);
      const listed = await store.listIdentities();
      assert.deepEqual(listed.map((i) => `${i.kind}:${i.name}`), ['agent:dev-box', 'client:Zed', 'client:alpha', 'client:alpha-2', 'client:beta']);
      assert.deepEqual(listed.find((i) => i.name === 'alpha')!.allow, ['B-agent', 'a', 'b-agent']);
      assert.deepEqual(listed[0]!.tokens.map((x) => x.expiresAt), [null, 100, null]);
      assert.equal(typeof listed[0]!.id, 'number', 'ids are numbers on both engines');
    });
  });

  test('recordHistory writes a batch at once: connections (ids in the order given), their ends, path reports', async () => {
    await withStore(engine, async (store) => {
      const a = await store.ensureIdentity('agent', 'dev-box', 1);
      const c = await store.ensureIdentity('client', 'laptop', 1);
      const connects = Array.from({ length: 300 }, (_, i) => ({ identityId: i % 2 === 0 ? a.id : c.id, at: 1000 + i, remote: i === 7 ? null : `192.0.2.1:${i + 1}`, replica: 'r1' }));
      const ids = await store.recordHistory({ connects, disconnects: [], paths: [] });
      assert.equal(ids.length, 300);
      const h = await store.connectionHistory(a.id, 500);
      assert.equal(h.length, 150, 'the agent has every other connect');
      // Each id is the row of the connect at the same position.
      for (const r of h) assert.equal(r.connectedAt, 1000 + ids.indexOf(r.id));
      assert.equal((await store.connectionHistory(c.id, 500)).find((r) => r.id === ids[7])!.remote, null);
      const none = await store.recordHistory({
        connects: [],
        disconnects: [
          { id: ids[0]!, at: 5000, reason: 'lost: no answer to ping' },
          { id: ids[1]!, at: 5001, reason: 'disconnected: bye' },
        ],
        paths: [
          { reporterId: c.id, peerId: a.id, path: { kind: 'direct', endpoint: '192.0.2.1:41641' }, at: 5002 },
          { reporterId: a.id, peerId: c.id, path: { kind: 'relay' }, at: 5003 },
        ],
      });
      assert.deepEqual(none, []);
      // An end already written is kept (a batch written twice changes nothing).
      await store.recordHistory({ connects: [], disconnects: [{ id: ids[0]!, at: 6000, reason: 'again' }], paths: [] });
      const first = (await store.connectionHistory(a.id, 500)).find((r) => r.id === ids[0])!;
      assert.deepEqual([first.disconnectedAt, first.reason], [5000, 'lost: no answer to ping']);
      assert.equal((await store.connectionHistory(c.id, 500)).find((r) => r.id === ids[1])!.disconnectedAt, 5001);
      const paths = await store.pathHistory(c.id, 10);
      assert.deepEqual(paths.map((p) => [p.reportedAt, p.byThisIdentity, p.path.kind]), [[5003, false, 'relay'], [5002, true, 'direct']]);
    });
  });

  test('history: connections per replica, dangling ones ended by their own replica only, pruning by age', async () => {
    await withStore(engine, async (store) => {
      const a = await store.ensureIdentity('agent', 'dev-box', 1);
      const c = await store.ensureIdentity('client', 'laptop', 1);
      const one = await connect(store, a.id, 10, '192.0.2.1:1', 'replica-1');
      const two = await connect(store, a.id, 20, null, 'replica-2');
      const three = await connect(store, c.id, 30, '192.0.2.3:3', 'replica-1');
      await disconnect(store, three, 40, 'disconnected: bye');
      await disconnect(store, three, 45, 'a second end is ignored');
      assert.equal(await store.closeDanglingConnections(50, 'server stopped', 'replica-1'), 1);
      const h = await store.connectionHistory(a.id, 10);
      assert.deepEqual(
        h.map((r) => [r.id, r.connectedAt, r.disconnectedAt, r.reason, r.remote]),
        [
          [two, 20, null, null, null],
          [one, 10, 50, 'server stopped', '192.0.2.1:1'],
        ],
        'replica-2 keeps its open connection',
      );
      assert.equal((await store.connectionHistory(c.id, 10))[0]!.reason, 'disconnected: bye');
      assert.equal((await store.connectionHistory(a.id, 1)).length, 1);
      const listed = (await store.listIdentities()).find((i) => i.name === 'dev-box')!;
      assert.deepEqual([listed.lastConnectedAt, listed.lastDisconnectedAt], [20, 50]);

      await reportPath(store, c.id, a.id, { kind: 'direct', endpoint: '192.0.2.1:41641' }, 15);
      await reportPath(store, c.id, a.id, { kind: 'relay' }, 60);
      assert.equal(await store.claimNodeKey(a.id, 'ab'.repeat(32), 5), true);
      assert.equal(await store.claimNodeKey(c.id, 'cd'.repeat(32), 5), true);
      assert.equal(await store.claimNodeKey(c.id, 'cd'.repeat(32), 70), true, 'seen again: kept by pruning');
      assert.equal((await store.findIdentity('client', 'laptop'))?.nodeKey, 'cd'.repeat(32));
      // Before 55: connection one (ended at 50) and three (ended 40), the direct report, key ab.
      assert.equal(await store.pruneHistory(55), 4);
      assert.deepEqual((await store.connectionHistory(a.id, 10)).map((r) => r.id), [two], 'an open connection is never pruned');
      assert.equal(await store.claimNodeKey(c.id, 'ab'.repeat(32), 80), true, 'a pruned key can be claimed anew');
    });
  });

  test('pathHistory: reports by the identity and about it, newest first, with the other side, limited', async () => {
    await withStore(engine, async (store) => {
      const a = await store.ensureIdentity('agent', 'dev-box', 1);
      const c = await store.ensureIdentity('client', 'laptop', 1);
      const x = await store.ensureIdentity('client', 'other', 1);
      await reportPath(store, c.id, a.id, { kind: 'relay' }, 10);
      await reportPath(store, c.id, a.id, { kind: 'direct', endpoint: '192.0.2.1:41641' }, 20);
      await reportPath(store, a.id, c.id, { kind: 'direct', endpoint: '198.51.100.2:5000' }, 20);
      await reportPath(store, x.id, c.id, { kind: 'relay' }, 30);
      const summary = (records: Awaited<ReturnType<typeof store.pathHistory>>) =>
        records.map((r) => [r.reportedAt, r.byThisIdentity, `${r.other.kind}:${r.other.name}`, r.path.kind === 'direct' ? r.path.endpoint : 'relay']);
      assert.deepEqual(summary(await store.pathHistory(a.id, 10)), [
        [20, true, 'client:laptop', '198.51.100.2:5000'],
        [20, false, 'client:laptop', '192.0.2.1:41641'],
        [10, false, 'client:laptop', 'relay'],
      ], 'same time: the later report first; tunnels of others are left out');
      assert.deepEqual(summary(await store.pathHistory(c.id, 2)), [
        [30, false, 'client:other', 'relay'],
        [20, false, 'agent:dev-box', '198.51.100.2:5000'],
      ]);
      assert.deepEqual(await store.pathHistory(x.id + 1000, 10), [], 'an unknown identity has none');
    });
  });

  test('dashboard sessions: stored as hashes, expire, are bounded, end with their admin token, seen by a second handle', async () => {
    const location = await engine.location();
    const [store, other] = [await openStore(location), await openStore(location)];
    try {
      let now = 1000;
      const sessions = new Sessions(store, { ttlMs: 100, max: 2 }, () => now);
      const elsewhere = new Sessions(other, { ttlMs: 100, max: 2 }, () => now);
      const ops = await store.ensureIdentity('admin', 'ops', 1);
      const agent = await store.ensureIdentity('agent', 'dev-box', 1);
      const t1 = await store.createToken(ops.id, hashToken(generateToken()), 1, null);
      const t2 = await store.createToken(ops.id, hashToken(generateToken()), 1, 1080);
      const ta = await store.createToken(agent.id, hashToken(generateToken()), 1, null);
      const a = await sessions.create('ops', t1.id);
      assert.notEqual(a.id, a.csrf);
      const seen = await elsewhere.get(a.id);
      assert.deepEqual([seen?.name, seen?.csrf, seen?.tokenId, seen?.expiresAt], ['ops', a.csrf, t1.id, 1100], 'another process (replica) serves it');
      assert.equal(await elsewhere.get(a.id.slice(0, -1) + (a.id.endsWith('A') ? 'B' : 'A')), undefined, 'a forged id');
      assert.equal(await elsewhere.get('not a session id'), undefined);
      assert.equal(await sessions.get(undefined), undefined);
      const early = await sessions.create('ops', t2.id, t2.expiresAt);
      assert.equal(early.expiresAt, 1080, "a session ends with its token's expiry if that comes first");
      now = 1080;
      assert.equal(await sessions.get(early.id), undefined, 'the token expired');
      assert.ok(await sessions.get(a.id));
      now = 1100;
      assert.equal(await sessions.get(a.id), undefined, 'expired at ttl');
      // Not an admin token (the dashboard refuses such a sign-in; the store never serves one).
      const stray = await sessions.create('dev-box', ta.id);
      assert.equal(await sessions.get(stray.id), undefined);
      const b = await sessions.create('ops', t1.id);
      const c = await sessions.create('ops', t1.id);
      const d = await sessions.create('ops', t1.id);
      assert.equal(await sessions.get(b.id), undefined, 'the oldest goes past the bound');
      assert.ok((await sessions.get(c.id)) && (await sessions.get(d.id)));
      await elsewhere.end(c.id);
      assert.equal(await sessions.get(c.id), undefined, 'signed out through the other handle');
      assert.equal(await other.revokeToken(t1.id, now), true);
      assert.equal(await sessions.get(d.id), undefined, 'revoking the admin token ends its sessions at once');
      const deletion = await store.deleteIdentity('admin', 'ops', now);
      assert.equal(deletion?.tokens, 2, 'an identity with sessions can be deleted (they go with its tokens)');
    } finally {
      await store.close();
      await other.close();
    }
  });

  test('two handles on one database: the first to prove a node key keeps it, whoever races', async () => {
    const location = await engine.location();
    const [one, two] = await Promise.all([openStore(location), openStore(location)]);
    try {
      const a = await one.ensureIdentity('agent', 'dev-box', 1);
      const b = await two.ensureIdentity('client', 'laptop', 1);
      const keys = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32));
      const results = await Promise.all(keys.flatMap((k) => [one.claimNodeKey(a.id, k, 10), two.claimNodeKey(b.id, k, 10)]));
      for (let i = 0; i < keys.length; i++) {
        const [byA, byB] = [results[2 * i], results[2 * i + 1]];
        assert.equal(Number(byA) + Number(byB), 1, `key ${i}: exactly one identity got it (${byA}, ${byB})`);
        const winner = byA ? a.id : b.id;
        const loser = byA ? b.id : a.id;
        assert.equal(await one.claimNodeKey(winner, keys[i]!, 20), true);
        assert.equal(await two.claimNodeKey(loser, keys[i]!, 20), false, 'and keeps it afterwards');
      }
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('two handles on one database: identities, rotations and policy changes are shared, not cached', async () => {
    const location = await engine.location();
    const [one, two] = await Promise.all([openStore(location), openStore(location)]);
    try {
      const [x, y] = await Promise.all([one.ensureIdentity('client', 'laptop', 1), two.ensureIdentity('client', 'laptop', 2)]);
      assert.equal(x.id, y.id, 'one identity, whichever handle created it');
      await one.createToken(x.id, hashToken(generateToken()), 1, null);
      // Two rotations at once leave exactly one live token: the later one revokes the earlier's.
      const [r1, r2] = await Promise.all([
        one.rotateToken(x.id, hashToken(generateToken()), 10, null),
        two.rotateToken(x.id, hashToken(generateToken()), 10, null),
      ]);
      const tokens = (await one.listIdentities())[0]!.tokens;
      assert.equal(tokens.filter((t) => t.revokedAt === null).length, 1, JSON.stringify(tokens));
      assert.ok([r1.token.id, r2.token.id].includes(tokens.find((t) => t.revokedAt === null)!.id));

      const v = await one.policyVersion();
      await two.allow('laptop', ['dev-box'], 20);
      assert.equal(await one.policyVersion(), v + 1, 'a change by the other handle is seen at once');
      assert.deepEqual(await one.allowedAgents('laptop'), ['dev-box']);
      const dropped = await two.revokeIdentity('client', 'laptop', 30);
      assert.equal(dropped, 1);
      assert.equal(await one.tokenValid(tokens.find((t) => t.revokedAt === null)!.id, 40), false);
      assert.equal(await one.policyVersion(), v + 2);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('migrations: several processes opening a new database at once, then reopening, keep one schema and the data', async () => {
    const location = await engine.location();
    const stores = await Promise.all([openStore(location), openStore(location), openStore(location)]);
    await stores[0]!.ensureIdentity('agent', 'dev-box', 1);
    await Promise.all(stores.map((s) => s.close()));
    const again = await openStore(location, { mustExist: true });
    try {
      assert.deepEqual((await again.listIdentities()).map((i) => i.name), ['dev-box']);
      assert.equal(await again.policyVersion(), 0);
    } finally {
      await again.close();
    }
  });
});

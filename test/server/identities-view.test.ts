// GET /api/v1/identities: every identity for admin tokens, online or not, and 403 for others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identitiesResponse } from '../../src/coordination/views.js';
import { RawPeer, eventually, httpGet, startTestServer } from './helpers.js';

test('the identities view lists every identity with its online nodes and last connect/disconnect', async () => {
  const t = await startTestServer();
  try {
    const admin = await t.token('admin', 'ops');
    const agent = await t.token('agent', 'ws1');
    const client = await t.token('client', 'laptop', { allow: ['ws1'] });
    await t.token('agent', 'idle');
    const a = await RawPeer.connect(t.wsUrl, agent);
    const c1 = await RawPeer.connect(t.wsUrl, client);
    const c2 = await RawPeer.connect(t.wsUrl, client);
    const url = `${t.server.url}/api/v1/identities`;
    const view = async () => identitiesResponse.parse((await httpGet(url, admin)).body).identities;
    const byName = async () => new Map((await view()).map((i) => [`${i.kind}:${i.name}`, i]));

    let ids = await byName();
    assert.deepEqual([...ids.keys()], ['admin:ops', 'agent:idle', 'agent:ws1', 'client:laptop']);
    assert.deepEqual([...ids.values()].map((i) => i.onlineNodes), [0, 0, 1, 2]);
    assert.equal(ids.get('agent:idle')!.lastConnectedAt, null);
    assert.ok(ids.get('client:laptop')!.lastConnectedAt! > 0);

    c1.ws.close();
    c2.ws.close();
    ids = await eventually(async () => {
      const m = await byName();
      const l = m.get('client:laptop')!;
      return l.onlineNodes === 0 && l.lastDisconnectedAt !== null ? m : undefined;
    });
    assert.ok(ids.get('client:laptop')!.lastDisconnectedAt! >= ids.get('client:laptop')!.lastConnectedAt!);
    assert.equal(ids.get('agent:ws1')!.onlineNodes, 1);

    assert.equal((await httpGet(url, agent)).status, 403);
    assert.equal((await httpGet(url, client)).status, 403);
    assert.equal((await httpGet(url)).status, 401);
    a.ws.close();
  } finally {
    await t.close();
  }
});

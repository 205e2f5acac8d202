// The port-mapping client and keeper against a fake gateway on 127.0.0.1: probing all three at
// once, preference, renewal with the same nonce, deletion on close, re-mapping after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapClient, preferredProtocols, probeDecided } from '../../src/portmap/client.js';
import { PortMapKeeper } from '../../src/portmap/keeper.js';
import { surveyPortMapping } from '../../src/portmap/survey.js';
import { clientOptions, LOOPBACK_GATEWAY, startFakeGateway } from './fake-gateway.js';

test('probe asks all three at once and within the budget; PCP is preferred, then NAT-PMP, then UPnP', async () => {
  const gw = await startFakeGateway();
  try {
    const client = new PortMapClient({ ...clientOptions(gw), gateway: LOOPBACK_GATEWAY });
    const t0 = performance.now();
    const p = await (await client.probe()).complete;
    assert.ok(performance.now() - t0 < 1500, 'a gateway that answers at once is probed in well under a second');
    assert.deepEqual(p.pcp, { available: true, externalAddress: null });
    assert.deepEqual(p.natpmp, { available: true, externalAddress: '203.0.113.77' });
    assert.equal(p.upnp.available, true);
    assert.deepEqual(preferredProtocols(p), ['pcp', 'natpmp', 'upnp']);
    assert.equal(p.epochS.pcp, 1000);
  } finally {
    await gw.close();
  }
});

test('each protocol maps, renews and deletes; a lifetime is always asked for', async () => {
  const gw = await startFakeGateway();
  try {
    const client = new PortMapClient({ ...clientOptions(gw), gateway: LOOPBACK_GATEWAY });
    const probe = await (await client.probe()).complete;
    const pcp = await client.map('pcp', 4000, 7200, probe);
    assert.deepEqual([pcp.externalAddress, pcp.externalPort, pcp.lifetimeS], ['203.0.113.77', 4002, 7200]);
    const renewed = await client.map('pcp', 4000, 7200, probe, pcp);
    assert.deepEqual(renewed.nonce, pcp.nonce, 'a renewal names the same mapping');
    await client.unmap(renewed);
    assert.equal(gw.mappings.has(4000), false);
    const pmp = await client.map('natpmp', 4100, 7200, probe);
    assert.deepEqual([pmp.externalAddress, pmp.externalPort], ['203.0.113.77', 4101]);
    const upnp = await client.map('upnp', 4200, 7200, probe);
    assert.deepEqual([upnp.externalAddress, upnp.externalPort, gw.mappings.get(4200)?.lifetimeS], ['203.0.113.77', 4200, 7200]);
    await client.unmap(upnp);
    assert.equal(gw.mappings.has(4200), false);
    await assert.rejects(client.map('upnp', 4300, 0, probe), /never a permanent one/);
  } finally {
    await gw.close();
  }
});

test('a NAT-PMP-only gateway: PCP is reported unavailable with the reason, NAT-PMP maps', async () => {
  const gw = await startFakeGateway({ pcp: false, upnp: false });
  try {
    const f = await surveyPortMapping(4000, { gateway: () => LOOPBACK_GATEWAY, client: clientOptions(gw) });
    assert.deepEqual(f.pcp, { available: false, reason: 'the router speaks NAT-PMP, not PCP' });
    assert.deepEqual(f.natpmp, { available: true, externalAddress: '203.0.113.77' });
    assert.deepEqual(f.upnp, { available: false, reason: 'no answer' });
    assert.equal(f.mapping?.protocol, 'natpmp');
    assert.equal(gw.mappings.size, 0, 'the survey deletes what it made');
  } finally {
    await gw.close();
  }
});

test('the keeper maps, tells, re-maps when the router restarts (epoch back), and deletes on close', async () => {
  const gw = await startFakeGateway({ upnp: false });
  const changes: (string | null)[] = [];
  const keeper = new PortMapKeeper({
    internalPort: 5000,
    gateway: () => LOOPBACK_GATEWAY,
    client: clientOptions(gw, 100),
    schedule: { epochCheckMs: 100 },
    tickMs: 20,
    announcements: false,
    onChange: (m) => changes.push(m ? `${m.protocol} ${m.externalAddress}:${m.externalPort}` : null),
  });
  try {
    await keeper.ready;
    assert.deepEqual(changes, ['pcp 203.0.113.77:5002']);
    assert.equal(gw.mappings.get(5000)?.lifetimeS, 7200, 'asks for two hours');
    const mapsBefore = gw.seen.filter((s) => s === 'pcp-map').length;
    gw.epochS = 3; // the router restarted and forgot the mapping
    gw.mappings.clear();
    const deadline = Date.now() + 5000;
    while (!gw.mappings.has(5000) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(gw.mappings.has(5000), 'mapped again after the epoch went back');
    assert.ok(gw.seen.filter((s) => s === 'pcp-map').length > mapsBefore);
  } finally {
    await keeper.close();
    await gw.close();
  }
  assert.equal(gw.mappings.has(5000), false, 'deleted on a clean close');
});

test('no gateway: nothing is sent and the keeper reports none', async () => {
  const keeper = new PortMapKeeper({ internalPort: 5000, gateway: () => null, onChange: () => assert.fail('no mapping without a gateway') });
  await keeper.ready;
  assert.deepEqual(keeper.lastProbe, { gateway: null, probe: null });
  await keeper.close();
});

test('settled: no wait without a gateway; with one that answers at once, the mapping well within the bound', async () => {
  const none = new PortMapKeeper({ internalPort: 5000, gateway: () => null, onChange: () => undefined });
  let t0 = performance.now();
  await none.settled(5000);
  assert.ok(performance.now() - t0 < 1000, 'no gateway: nothing to wait for');
  await none.close();
  const gw = await startFakeGateway({ upnp: false });
  // A budget UPnP (which never answers here) would use up: the probe does not wait for it.
  const keeper = new PortMapKeeper({ internalPort: 5300, gateway: () => LOOPBACK_GATEWAY, client: clientOptions(gw, 3000), announcements: false, onChange: () => undefined });
  try {
    t0 = performance.now();
    await keeper.settled();
    assert.ok(performance.now() - t0 < 1500, `settled in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(keeper.mapping?.protocol, 'pcp');
  } finally {
    await keeper.close();
    await gw.close();
  }
});

test('startAfterMs: nothing reaches the gateway before the delay (settled() does not wait for it), the mapping after', async () => {
  const gw = await startFakeGateway({ upnp: false });
  const keeper = new PortMapKeeper({
    internalPort: 5400,
    gateway: () => LOOPBACK_GATEWAY,
    client: clientOptions(gw, 100),
    tickMs: 20,
    announcements: false,
    startAfterMs: 400,
    onChange: () => undefined,
  });
  try {
    await keeper.settled(5000); // at once: the first publication does not wait for a deferred keeper
    await new Promise((r) => setTimeout(r, 150)); // several ticks, all before the delay
    assert.deepEqual(gw.seen, [], 'no request before startAfterMs');
    await keeper.ready;
    assert.equal(keeper.mapping?.protocol, 'pcp');
    assert.ok(gw.mappings.has(5400));
  } finally {
    await keeper.close();
    await gw.close();
  }
});

test('after a network change the keeper forgets the mapping at once and maps afresh', async () => {
  const gw = await startFakeGateway({ upnp: false });
  const changes: (string | null)[] = [];
  const keeper = new PortMapKeeper({
    internalPort: 5100,
    gateway: () => LOOPBACK_GATEWAY,
    client: clientOptions(gw, 100),
    tickMs: 20,
    announcements: false,
    onChange: (m) => changes.push(m ? `${m.protocol} ${m.externalPort}` : null),
  });
  try {
    await keeper.ready;
    const maps = gw.seen.filter((s) => s === 'pcp-map').length;
    keeper.networkChanged();
    assert.equal(keeper.mapping, null, 'the old mapping belongs to the old network');
    const deadline = Date.now() + 5000;
    while (keeper.mapping === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(changes, ['pcp 5102', null, 'pcp 5102']);
    assert.equal(gw.seen.filter((s) => s === 'pcp-map').length, maps + 1, 'one new request, not a renewal storm');
  } finally {
    await keeper.close();
    await gw.close();
  }
});

test('probeDecided: stop once every protocol preferred over an available one has said no', () => {
  const yes = { status: { available: true as const, externalAddress: null } };
  const no = { status: { available: false as const, reason: 'no answer' } };
  assert.equal(probeDecided({}), false);
  assert.equal(probeDecided({ pcp: yes }), true, 'PCP answered: nothing can beat it');
  assert.equal(probeDecided({ natpmp: yes }), false, 'PCP may still answer');
  assert.equal(probeDecided({ pcp: no, natpmp: yes }), true);
  assert.equal(probeDecided({ natpmp: no, upnp: yes }), false);
  assert.equal(probeDecided({ pcp: no, natpmp: no, upnp: yes }), true);
  assert.equal(probeDecided({ pcp: no, natpmp: no, upnp: no }), true, 'nothing available: done');
});

test('the probe ends when the best protocol answered, not at the end of its budget', async () => {
  // UPnP never answers here, so a probe that waited for everyone would take the whole 3 s budget.
  for (const [o, best] of [[{ upnp: false }, 'pcp'], [{ pcp: false, upnp: false }, 'natpmp']] as const) {
    const gw = await startFakeGateway(o);
    try {
      const client = new PortMapClient({ ...clientOptions(gw, 3000), gateway: LOOPBACK_GATEWAY });
      const t0 = performance.now();
      const p = await client.probe();
      const ms = performance.now() - t0;
      assert.ok(ms < 1500, `${best}: decided in ${Math.round(ms)} ms of a 3000 ms budget`);
      assert.deepEqual(preferredProtocols(p)[0], best);
      assert.match(p.upnp.available ? '' : p.upnp.reason, /not waited for/);
      const full = await p.complete;
      assert.deepEqual(full.upnp, { available: false, reason: 'no answer' }, 'the whole picture comes later');
      assert.ok(performance.now() - t0 >= 2500);
    } finally {
      await gw.close();
    }
  }
});

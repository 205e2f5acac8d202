// The dashboard's pure parts: sessions (expiry, bound, revocation), the live feed's differences,
// the health rules, and the connectivity-matrix picture.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cookieValue } from '../../src/server/dashboard/sessions.js';
import { Feed, type DashboardSource, type TunnelSourceRow } from '../../src/server/dashboard/feed.js';
import { healthWarnings } from '../../src/server/dashboard/health.js';
import { cellOutcome, matrixSvg, wrap, type MatrixCellResult } from '../../src/server/dashboard/matrix-svg.js';
import type { IdentityRow, NodeRow, Patch, Snapshot } from '../../src/server/dashboard/wire.js';

const node = (id: string, over: Partial<NodeRow> = {}): NodeRow => ({
  id,
  kind: 'client',
  name: id,
  key: null,
  connectedAt: 0,
  remote: null,
  endpoints: [],
  netcheck: null,
  replica: null,
  ...over,
});

const identity = (name: string, over: Partial<IdentityRow> = {}): IdentityRow => ({
  id: `client:${name}`,
  kind: 'client',
  name,
  onlineNodes: 0,
  createdAt: 0,
  lastConnectedAt: null,
  lastDisconnectedAt: null,
  allow: [],
  tokens: [],
  ...over,
});

describe('sessions', () => {
  test('cookieValue reads one cookie among several', () => {
    assert.equal(cookieValue('a=1; traverse_session=xyz; b=2', 'traverse_session'), 'xyz');
    assert.equal(cookieValue('a=1', 'traverse_session'), undefined);
    assert.equal(cookieValue(undefined, 'traverse_session'), undefined);
  });
});

describe('live feed', () => {
  test('a snapshot first, then only what changed; a tunnel keeps when its path last changed', async () => {
    let now = 10_000;
    let nodes: NodeRow[] = [node('a'), node('b')];
    let tunnels: TunnelSourceRow[] = [
      { id: 't', client: 'a', clientKey: null, agent: 'x', agentOnline: true, path: 'relay', endpoint: null, transport: null, rttMs: null, since: 5000, reason: 'UDP is blocked', streams: null },
    ];
    const source: DashboardSource = { identities: async () => [identity('a')], nodes: () => nodes, tunnels: () => tunnels };
    const feed = new Feed(source, { intervalMs: 60_000, identitiesIntervalMs: 0, matrix: false }, () => now);
    const got: { event: string; data: unknown }[] = [];
    const stop = await feed.subscribe((event, data) => {
      got.push({ event, data: JSON.parse(data) });
      return true;
    });
    const snap = got[0]!.data as Snapshot;
    assert.equal(got[0]!.event, 'snapshot');
    assert.deepEqual(snap.nodes.map((n) => n.id), ['a', 'b']);
    assert.equal(snap.tunnels[0]!.pathSince, 5000, 'first seen: since the tunnel began');
    await feed.tick();
    assert.equal(got.length, 1, 'nothing changed, nothing sent');
    now = 20_000;
    nodes = [node('a', { endpoints: ['192.0.2.1:1'] }), node('c')];
    tunnels = [{ ...tunnels[0]!, path: 'direct', endpoint: '192.0.2.9:4', reason: null }];
    await feed.tick();
    const patch = got[1]!.data as Patch;
    assert.equal(got[1]!.event, 'patch');
    assert.deepEqual(patch.upsert.nodes?.map((n) => n.id), ['a', 'c']);
    assert.deepEqual(patch.remove.nodes, ['b']);
    assert.equal(patch.upsert.tunnels?.[0]?.pathSince, 20_000);
    assert.equal(patch.upsert.identities, undefined);
    stop();
    feed.close();
  });

  test('a subscriber that cannot keep up is dropped', async () => {
    let n = 0;
    const source: DashboardSource = { identities: async () => [], nodes: () => [node(`n${n++}`)], tunnels: () => [] };
    const feed = new Feed(source, { intervalMs: 60_000, identitiesIntervalMs: 0, matrix: false });
    let calls = 0;
    await feed.subscribe(() => (calls++, false));
    await feed.tick();
    await feed.tick();
    assert.equal(calls, 2, 'the snapshot, then one refused patch, then nothing');
    feed.close();
  });
});

describe('health warnings', () => {
  const now = 1_000_000_000_000;
  test('UDP blocked, no STUN at all, a non-hairpinning NAT with several nodes, silent STUN servers, expiring tokens', () => {
    const nodes = [
      node('k', { name: 'kiosk', netcheck: { udp: false, stunUnanswered: ['203.0.113.10:3478'] } }),
      node('s', { name: 'solo', netcheck: { udp: false, stunUnanswered: [] } }),
      node('p1', { name: 'pod-1', kind: 'agent', netcheck: { udp: true, hairpinning: false, globalV4: '198.51.100.7:1000', stunUnanswered: ['203.0.113.99:3478'] } }),
      node('p2', { name: 'laptop', netcheck: { udp: true, hairpinning: false, globalV4: '198.51.100.7:2000' } }),
      node('p3', { name: 'alone', netcheck: { udp: true, hairpinning: false, globalV4: '198.51.100.8:2000' } }),
    ];
    const ids = [
      identity('laptop', { tokens: [{ id: 7, hint: 'abcd1234', createdAt: 0, expiresAt: now + 2 * 86_400_000, revokedAt: null }] }),
      identity('old', { tokens: [{ id: 8, hint: 'ffff0000', createdAt: 0, expiresAt: now + 30 * 86_400_000, revokedAt: null }] }),
      identity('gone', { tokens: [{ id: 9, hint: 'eeee0000', createdAt: 0, expiresAt: now + 86_400_000, revokedAt: 5 }] }),
    ];
    const w = healthWarnings(nodes, ids, now);
    const byId = new Map(w.map((x) => [x.id, x]));
    assert.match(byId.get('udp:k')!.title, /UDP is blocked for client "kiosk"/);
    assert.match(byId.get('nostun:s')!.advice, /--stun/);
    assert.equal(byId.has('udp:s'), false, 'no STUN asked is not UDP blocked');
    assert.match(byId.get('hairpin:198.51.100.7')!.advice, /internal STUN server/);
    assert.equal(byId.has('hairpin:198.51.100.8'), false, 'one node alone needs no hairpin');
    assert.match(byId.get('stun:203.0.113.99:3478')!.title, /does not answer \(1 node\)/);
    assert.equal(byId.has('stun:203.0.113.10:3478'), false, 'a node whose UDP is blocked says nothing of the server');
    assert.match(byId.get('expiry:7')!.title, /expires in 2 days/);
    assert.equal(byId.has('expiry:8'), false);
    assert.equal(byId.has('expiry:9'), false, 'revoked');
    assert.equal(w.length, 5);
  });
});

describe('matrix picture', () => {
  const cell = (over: Partial<MatrixCellResult>): MatrixCellResult => ({
    name: 'easy / easy',
    agent: 'EIM, port-restricted',
    client: 'EIM, port-restricted',
    expect: 'direct',
    runs: 3,
    direct: 3,
    failed: 0,
    timeToDirectMs: 151.4,
    reason: null,
    ...over,
  });

  test('outcomes: direct, relay, mixed, failed, not as expected', () => {
    assert.equal(cellOutcome(cell({})), 'direct');
    assert.equal(cellOutcome(cell({ expect: 'relay', direct: 0 })), 'relay');
    assert.equal(cellOutcome(cell({ direct: 2 })), 'mixed');
    assert.equal(cellOutcome(cell({ failed: 3, direct: 0 })), 'failed');
    assert.equal(cellOutcome(cell({ failed: 1, direct: 2 })), 'mixed');
    assert.equal(cellOutcome(cell({ expect: 'direct', direct: 0 })), 'unexpected');
    assert.equal(cellOutcome(cell({ expect: null, direct: 0 })), 'relay');
  });

  test('a grid of agent NAT by client NAT, each cell coloured, with time to direct and the escaped reason', () => {
    const svg = matrixSvg({
      title: 'matrix <test>',
      generatedAt: '2026-12-06',
      cells: [
        cell({}),
        cell({ name: 'hard / hard', agent: 'hard', client: 'hard', expect: 'relay', direct: 0, timeToDirectMs: null, reason: 'both NATs are hard (endpoint-dependent mapping) & <no> port forward' }),
        cell({ name: 'easy / hard', agent: 'EIM, port-restricted', client: 'hard', direct: 3, timeToDirectMs: 1500 }),
        cell({ name: 'easy / easy, --disable-direct', agent: 'EIM, port-restricted', client: 'EIM, port-restricted', expect: 'relay', direct: 0, timeToDirectMs: null, reason: 'disabled' }),
      ],
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+"/);
    assert.ok(svg.endsWith('</svg>'));
    assert.doesNotMatch(svg, /<script|<style|on\w+=/i, 'inert: no script, no style element, no handlers');
    // Two rows (EIM, hard) by two columns (EIM, hard): one square empty, one shared by two cells.
    assert.equal((svg.match(/not measured/g) ?? []).length, 1);
    assert.equal((svg.match(/data-cell=/g) ?? []).length, 4);
    assert.match(svg, /data-cell="hard \/ hard" data-outcome="relay"/);
    assert.match(svg, /fill="#ffe0b2" stroke="#e65100"/);
    assert.match(svg, /data-cell="easy \/ hard" data-outcome="direct"/);
    assert.match(svg, /time to direct 1500 ms/);
    assert.match(svg, /&amp; &lt;no&gt;/, 'reason escaped');
    assert.match(svg, /<title>matrix &lt;test&gt;<\/title>/);
    assert.ok(!svg.includes('<no>'));
  });

  test('wrap keeps to the width and the line count', () => {
    assert.deepEqual(wrap('a bb ccc dddd', 6, 5), ['a bb', 'ccc', 'dddd']);
    const cut = wrap('one two three four five six', 8, 2);
    assert.equal(cut.length, 2);
    assert.ok(cut[1]!.endsWith('…'));
  });
});

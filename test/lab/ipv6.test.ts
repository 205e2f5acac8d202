// IPv6 in the lab: routers with a stateful IPv6 firewall and no NAT66 behave like home routers
// (only replies, and what the host sent to first, get in), and behind them a direct IPv6 path
// carries streams while both IPv4 NATs are hard; netcheck reports the IPv6 side.
// The matrix cells (connectivity.test.ts) assert the paths of the IPv6 topologies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import type { Lab } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { COORD_HOST, pairOfNats6, STUN_HOST } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';
import { MATRIX, runCell } from '../../lab/matrix.js';
import { peerEnv } from '../../lab/peers.js';
import { BIN } from '../helpers/cli.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetcheckReport } from '../../src/netcheck/report.js';
import type { SpeedtestResult } from '../../src/node/speedtest.js';

const skip = await labSkip();

describe('IPv6 behind stateful firewalls', { skip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab(pairOfNats6('hard', 'hard', 'dual-stack', 'dual-stack'));
  });
  after(async () => {
    await lab?.teardown();
  });

  test('no NAT66, and the firewall lets in only replies and what the host sent to first', async () => {
    const client = await UdpPeer.start(lab, 'client', 0, 6);
    // On the coordinator's host: it has one IPv6 address, so replies leave from the address the
    // client sent to (the STUN host has two, and an unbound reply may leave from the other).
    const server = await UdpPeer.start(lab, COORD_HOST, 0, 6);
    const other = await UdpPeer.start(lab, COORD_HOST, 0, 6);
    const agent = await UdpPeer.start(lab, 'agent', 0, 6);
    const port = (p: UdpPeer): number => (p.events.find((e) => e.event === 'listening') as { port: number }).port;
    const at = (host: string, p: UdpPeer): string => `[${lab.node(host).addresses6[0]}]:${port(p)}`;
    try {
      server.send(at('client', client), 'unsolicited');
      assert.equal(await client.received('unsolicited', 600), undefined, 'unsolicited inbound IPv6 is dropped');
      client.send(at(COORD_HOST, server), 'hello');
      assert.deepEqual(await server.received('hello', 2000), { from: at('client', client) }, 'the internet sees the host\'s own address and port');
      server.send(at('client', client), 'reply');
      assert.ok(await client.received('reply', 2000), 'a reply gets in');
      other.send(at('client', client), 'other port');
      assert.equal(await client.received('other port', 600), undefined, 'another port of the same host does not');
      // Punching: the agent's first packet is dropped by the client's firewall, but it opens the
      // agent's own; the client's packet then passes both, and after it everything flows.
      agent.send(at('client', client), 'early');
      assert.equal(await client.received('early', 600), undefined);
      client.send(at('agent', agent), 'punch');
      assert.ok(await agent.received('punch', 2000), 'the client reaches the agent once the agent has sent to it');
      agent.send(at('client', client), 'through');
      assert.ok(await client.received('through', 2000));
    } finally {
      for (const p of [client, server, other, agent]) p.proc.kill();
    }
  });

  test('hard IPv4 NATs on both sides: a direct IPv6 path that carries a stream; netcheck reports IPv6', async () => {
    const cell = MATRIX.find((c) => c.name === 'hard / hard, both with IPv6')!;
    let carried: SpeedtestResult | null = null;
    const outcome = await runCell(cell, lab, undefined, async ({ coordUrl, clientToken }) => {
      const r = await lab.exec(
        'client',
        process.execPath,
        [BIN, 'speedtest', 'dev-box', '--json', '--seconds', '1', '--direction', 'download', '--server', coordUrl, '--token', clientToken],
        { timeoutMs: 30_000, env: peerEnv(mkdtempSync(join(tmpdir(), 'traverse-lab-v6-'))) },
      );
      assert.equal(r.code, 0, r.stderr);
      carried = JSON.parse(r.stdout.trim().split('\n').pop()!) as SpeedtestResult;
    });
    const detail = JSON.stringify(outcome, null, 2);
    assert.equal(outcome.summary.path, 'direct', detail);
    assert.ok(outcome.summary.endpoint?.startsWith('[2001:db8:2::2]:'), detail);
    const st = carried as SpeedtestResult | null;
    assert.ok(st && st.path === 'direct' && st.endpoint?.startsWith('[2001:db8:2::2]:') && st.bytes > 0, JSON.stringify(st));
    assert.equal(st.carrier, 'tcp', 'a TCP lane opens over IPv6 through both firewalls');

    const stun6 = lab.node(STUN_HOST).addresses6[0]!;
    const r = await lab.exec('client', process.execPath, [BIN, 'netcheck', '--json', '--timeout', '3000', '--stun', `${lab.node(STUN_HOST).address}:3480`, '--stun', `[${stun6}]:3480`], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as NetcheckReport;
    assert.equal(report.ipv6, true, r.stdout);
    assert.match(report.globalV6 ?? '', /^\[2001:db8:1::2\]:\d+$/);
    const v6 = report.servers.find((s) => s.address === `[${stun6}]:3480`);
    assert.ok(v6 && v6.latencyMs !== null && v6.mapped === report.globalV6, r.stdout);
    assert.equal(report.mapping, 'address-and-port-dependent', 'the IPv4 NAT is still hard');
  });
});

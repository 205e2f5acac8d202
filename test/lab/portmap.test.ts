// Port mapping against Debian's miniupnpd on lab routers: what `traverse netcheck` reports for
// each protocol alone, for a router without any, and for a router behind a carrier-grade NAT (a
// mapping that must not be trusted); and that an agent's mapping is made, and deleted when the
// agent stops cleanly (and not made at all with --no-port-mapping).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import type { Lab } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { INTERNET, type TopologySpec } from '../../lab/spec.js';
import { COORD_ADDRESS, COORD_HOST, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from '../../lab/stun-servers.js';
import { miniupnpdMappings, miniupnpdSkip } from '../../lab/miniupnpd.js';
import { createToken, peerEnv, startAgent, startCoordinator, waitForLine, type LabCoordinator } from '../../lab/peers.js';
import { BIN } from '../helpers/cli.js';
import type { NetcheckReport } from '../../src/netcheck/report.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const skip = (await labSkip()) || (await miniupnpdSkip());

const only = (p: 'pcp' | 'natpmp' | 'upnp') => ({ pcp: p === 'pcp', natpmp: p === 'natpmp', upnp: p === 'upnp' });

/** One hard router per protocol, one without, and an all-protocol router behind a carrier NAT. */
function spec(): TopologySpec {
  return {
    routers: [
      { name: 'rpcp', nat: 'hard', on: INTERNET, lan: '192.168.10.0/24', portMapping: only('pcp') },
      { name: 'rpmp', nat: 'hard', on: INTERNET, lan: '192.168.11.0/24', portMapping: only('natpmp') },
      { name: 'rupnp', nat: 'hard', on: INTERNET, lan: '192.168.12.0/24', portMapping: only('upnp') },
      { name: 'rnone', nat: 'hard', on: INTERNET, lan: '192.168.13.0/24' },
      { name: 'cgn', nat: 'easy', on: INTERNET, lan: '100.64.0.0/24' },
      { name: 'home', nat: 'easy', on: 'cgn', lan: '192.168.14.0/24', portMapping: { pcp: true, natpmp: true, upnp: true } },
    ],
    hosts: [
      { name: STUN_HOST, on: INTERNET, addresses: [...STUN_ADDRESSES] },
      { name: COORD_HOST, on: INTERNET, addresses: [COORD_ADDRESS] },
      { name: 'hpcp', on: 'rpcp' },
      { name: 'hpmp', on: 'rpmp' },
      { name: 'hupnp', on: 'rupnp' },
      { name: 'hnone', on: 'rnone' },
      { name: 'hhome', on: 'home' },
    ],
  };
}

const ON = { TRAVERSE_PORT_MAPPING: '1' };

describe('port mapping with miniupnpd', { skip, concurrency: 1 }, () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab(spec());
    await startTraverseStun(lab, STUN_HOST);
  });
  after(async () => {
    await lab?.teardown();
  });

  async function netcheck(host: string, extra: string[] = [], env: NodeJS.ProcessEnv = ON): Promise<NetcheckReport> {
    const r = await lab.exec(host, process.execPath, [BIN, 'netcheck', '--json', '--stun', `${STUN_ADDRESSES[0]}:${TRAVERSE_STUN_PORT}`, ...extra], {
      timeoutMs: 20_000,
      env: { ...process.env, ...env },
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as NetcheckReport;
  }

  test('netcheck: each protocol alone is found, maps on the router\'s public address, and is trusted', async () => {
    for (const [host, router, proto] of [['hpcp', 'rpcp', 'pcp'], ['hpmp', 'rpmp', 'natpmp'], ['hupnp', 'rupnp', 'upnp']] as const) {
      const r = await netcheck(host);
      const pm = r.portMapping;
      const detail = JSON.stringify(pm, null, 2);
      const wan = lab.router(router).address;
      assert.equal(pm?.gateway, lab.router(router).router.lanAddress, detail);
      for (const p of ['pcp', 'natpmp', 'upnp'] as const) assert.equal(pm?.[p].available, p === proto, `${p} on ${router}: ${detail}`);
      assert.equal(pm?.mapping?.protocol, proto, detail);
      assert.equal(pm?.mapping?.external.split(':')[0], wan, detail);
      assert.equal(pm?.trusted, true, detail);
      assert.deepEqual(await miniupnpdMappings(lab, router), [], 'netcheck deletes the mapping it made');
    }
  });

  test('netcheck: a router without port mapping says why per protocol; turned off, it is not asked', async () => {
    const r = await netcheck('hnone');
    assert.deepEqual([r.portMapping?.pcp, r.portMapping?.natpmp, r.portMapping?.upnp], Array(3).fill({ available: false, reason: 'no answer' }));
    assert.equal(r.portMapping?.mapping, null);
    assert.equal((await netcheck('hpcp', ['--no-port-mapping'])).portMapping, null);
    assert.equal((await netcheck('hpcp', [], { TRAVERSE_PORT_MAPPING: '0' })).portMapping, null);
  });

  test('netcheck: a mapping behind a carrier-grade NAT is not trusted, and the text says so', async () => {
    const r = await netcheck('hhome');
    const detail = JSON.stringify(r.portMapping, null, 2);
    assert.equal(r.portMapping?.mapping?.external.split(':')[0], lab.router('home').address, detail);
    assert.equal(r.portMapping?.trusted, false, detail);
    assert.match(r.portMapping?.untrustedReason ?? '', /private: another NAT/, detail);
    const text = await lab.exec('hhome', process.execPath, [BIN, 'netcheck', '--stun', `${STUN_ADDRESSES[0]}:${TRAVERSE_STUN_PORT}`], { timeoutMs: 20_000, env: { ...process.env, ...ON } });
    assert.match(text.stdout, /mapped: +100\.64\.0\.\d+:\d+ by pcp \(not trusted/);
    assert.match(text.stdout, /cannot be trusted/);
  });

  describe('an agent', () => {
    let coord: LabCoordinator;
    let token: string;
    before(async () => {
      coord = await startCoordinator(lab, ['--stun', `${STUN_ADDRESSES[0]}:${TRAVERSE_STUN_PORT}`]);
      token = await createToken(coord.dataDir, ['--agent', 'dev-box']);
    });

    test('maps its port, and deletes the mapping when it stops cleanly', async () => {
      const agent = await startAgent(lab, 'hpcp', coord.url, token);
      const host = lab.node('hpcp').address;
      const deadline = Date.now() + 5000;
      let maps = await miniupnpdMappings(lab, 'rpcp');
      while (!maps.some((m) => m.internal.startsWith(`${host}:`)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        maps = await miniupnpdMappings(lab, 'rpcp');
      }
      assert.ok(maps.some((m) => m.internal.startsWith(`${host}:`)), `no mapping for ${host}: ${JSON.stringify(maps)}`);
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
      assert.deepEqual(await miniupnpdMappings(lab, 'rpcp'), [], 'deleted on a clean stop');
    });

    test('with --no-port-mapping it asks nothing', async () => {
      const state = mkdtempSync(join(tmpdir(), 'traverse-lab-agent-'));
      const agent = lab.spawn('hpmp', process.execPath, [BIN, 'agent', '--server', coord.url, '--token', token, '--no-port-mapping'], { env: peerEnv(state) });
      try {
        await waitForLine(agent, /^agent ".*" connected/, 15_000, 'agent --no-port-mapping');
        // With port mapping on, the mapping is there well within this (see the test above).
        await new Promise((r) => setTimeout(r, 1500));
        assert.deepEqual(await miniupnpdMappings(lab, 'rpmp'), []);
      } finally {
        agent.kill('SIGTERM');
      }
    });
  });
});

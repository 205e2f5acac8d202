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
import { miniupnpdMappings, miniupnpdSkip, restartMiniupnpd } from '../../lab/miniupnpd.js';
import { createToken, peerEnv, startAgent, startCoordinator, waitForLine, type LabCoordinator } from '../../lab/peers.js';
import type { LabProcess } from '../../lab/lab.js';
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

    /** An agent logging at debug level as JSON: its log lines, parsed, as they come. */
    function debugAgent(host: string): { agent: LabProcess; lines: { msg?: string; endpoints?: string[] }[] } {
      const state = mkdtempSync(join(tmpdir(), 'traverse-lab-agent-'));
      const agent = lab.spawn(host, process.execPath, [BIN, 'agent', '--server', coord.url, '--token', token], {
        env: { ...peerEnv(state), TRAVERSE_LOG_LEVEL: 'debug', TRAVERSE_LOG_FORMAT: 'json' },
      });
      const lines: { msg?: string; endpoints?: string[] }[] = [];
      let buf = '';
      agent.stderr?.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            lines.push(JSON.parse(line) as { msg?: string; endpoints?: string[] });
          } catch {
            /* not a log line */
          }
        }
      });
      return { agent, lines };
    }

    async function stop(agent: LabProcess): Promise<void> {
      if (agent.exitCode !== null || agent.signalCode !== null) return;
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }

    async function until<T>(what: string, ms: number, f: () => Promise<T | undefined> | T | undefined): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = await f();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    test('its first publication already has the mapped candidate first, before any STUN result', async () => {
      const { agent, lines } = debugAgent('hpcp');
      try {
        const first = await until('the first publication', 15_000, () => lines.find((l) => l.msg === 'node published'));
        const maps = (await miniupnpdMappings(lab, 'rpcp')).filter((m) => m.internal.startsWith(`${lab.node('hpcp').address}:`));
        assert.equal(maps.length, 1, JSON.stringify(maps));
        assert.equal(first.endpoints?.[0], `${lab.router('rpcp').address}:${maps[0]!.externalPort}`, `first publication: ${JSON.stringify(first.endpoints)}`);
      } finally {
        await stop(agent);
      }
    });

    for (const [hostName, router] of [['hpcp', 'rpcp'], ['hpmp', 'rpmp']] as const)
    test(`a router restart (${router}): the gateway announces it and the mapping is back within seconds`, async (t) => {
      const { agent, lines } = debugAgent(hostName);
      const host = lab.node(hostName).address;
      const ours = async (): Promise<true | undefined> => ((await miniupnpdMappings(lab, router)).some((m) => m.internal.startsWith(`${host}:`)) ? true : undefined);
      try {
        await until('the first mapping', 15_000, ours);
        const t0 = Date.now();
        await restartMiniupnpd(lab, router);
        const restarted = Date.now();
        await until('the mapping after the restart', 20_000, ours);
        const ms = Date.now() - restarted;
        t.diagnostic(`mapping back ${ms} ms after miniupnpd served again (${Date.now() - t0} ms after it was killed)`);
        assert.ok(lines.some((l) => l.msg?.startsWith('the gateway announced')), 'heard the announcement (not the minute-long epoch check)');
        assert.ok(ms < 15_000, `back in ${ms} ms`);
      } finally {
        await stop(agent);
      }
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

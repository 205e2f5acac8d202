// An IPv6 pinhole by PCP (src/portmap/pinhole.ts) against Debian's miniupnpd on a lab router whose
// stateful IPv6 firewall drops everything unsolicited: what the pinhole lets in (and that nothing
// gets in before it or after its delete), what netcheck reports, and the matrix cell it rescues
// (an IPv6-only agent behind the firewall, an IPv6-only client behind a NAT66 that maps per
// destination) run with the pinhole and without it.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import type { Lab, LabProcess } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { COORD_HOST, STUN_HOST } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';
import { MATRIX, pinholePair, runCell } from '../../lab/matrix.js';
import { miniupnpdPinholes, miniupnpdSkip } from '../../lab/miniupnpd.js';
import { startTraverseStun } from '../../lab/stun-servers.js';
import { runOk } from '../../lab/exec.js';
import { coordinatorUrlFor, createToken, startAgent, startCoordinator, waitForLine } from '../../lab/peers.js';
import { BIN } from '../helpers/cli.js';
import type { NetcheckReport } from '../../src/netcheck/report.js';
import type { PinholeStatus } from '../../src/portmap/pinhole.js';

// The test runner turns port mapping off for everything; here, behind a lab router, it is the subject.
const WITH_PORT_MAPPING = { ...process.env, TRAVERSE_PORT_MAPPING: '1' };

const skip = (await labSkip()) || (await miniupnpdSkip());
const HOLDER = fileURLToPath(new URL('../../lab/pinhole-holder.js', import.meta.url));
const CELL = MATRIX.find((c) => c.name === 'IPv6 pinhole / NAT66')!;
/** A STUN port of this file's own (the matrix cell starts its servers on the default one). */
const STUN6_PORT = 3600;

/** The next JSON line of the holder with the given event. */
function nextEvent(p: LabProcess, event: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`pinhole holder: no "${event}" within ${timeoutMs} ms: ${buf}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      for (const line of buf.split('\n').slice(0, -1)) {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (o.event === event) return done(null, o);
      }
    };
    function done(err: Error | null, o?: Record<string, unknown>): void {
      clearTimeout(timer);
      p.stdout?.off('data', onData);
      if (err) reject(err);
      else resolve(o!);
    }
    p.stdout?.on('data', onData);
  });
}

describe('IPv6 pinhole by PCP (miniupnpd)', { skip, concurrency: 1 }, () => {
  let lab: Lab;
  let agent6: string;
  before(async () => {
    lab = await createLab(pinholePair(true));
    agent6 = lab.node('agent').addresses6[0]!;
  });
  after(async () => {
    await lab?.teardown();
  });

  test('unsolicited IPv6 gets in only while the pinhole is open; a clean close deletes it', async () => {
    const target = await UdpPeer.start(lab, 'agent', 0, 6);
    const sender = await UdpPeer.start(lab, COORD_HOST, 0, 6);
    const port = (target.events.find((e) => e.event === 'listening') as { port: number }).port;
    const at = `[${agent6}]:${port}`;
    const holder = lab.spawn('agent', process.execPath, [HOLDER, String(port)]);
    try {
      sender.send(at, 'before');
      assert.equal(await target.received('before', 600), undefined, 'the firewall drops unsolicited IPv6');

      const opened = (await nextEvent(holder, 'status', 10_000)).status as PinholeStatus;
      assert.deepEqual(opened, { opened: true, gateway: lab.router('ragent').router.lanAddress6, endpoint: at, lifetimeS: 7200 });
      assert.deepEqual(await miniupnpdPinholes(lab, 'ragent'), [at]);
      sender.send(at, 'through the pinhole');
      assert.ok(await target.received('through the pinhole', 2000), 'the pinhole lets in a host the agent never sent to');

      const closed = nextEvent(holder, 'closed', 5000);
      holder.kill('SIGTERM');
      await closed;
      assert.deepEqual(await miniupnpdPinholes(lab, 'ragent'), [], 'deleted on a clean close');
      sender.send(at, 'after');
      assert.equal(await target.received('after', 600), undefined, 'closed again');
    } finally {
      for (const p of [target.proc, sender.proc, holder]) p.kill();
    }
  });

  test('netcheck reports the pinhole in JSON and text, and deletes it again', async () => {
    await startTraverseStun(lab, STUN_HOST, STUN6_PORT, 6);
    const stun = `[${lab.node(STUN_HOST).addresses6[0]!}]:${STUN6_PORT}`;
    const r = await lab.exec('agent', process.execPath, [BIN, 'netcheck', '--json', '--stun', stun], { timeoutMs: 20_000, env: WITH_PORT_MAPPING });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as NetcheckReport;
    const p = report.portMapping?.ipv6Pinhole;
    assert.ok(p?.opened && p.endpoint.startsWith(`[${agent6}]:`) && p.gateway === lab.router('ragent').router.lanAddress6, r.stdout);
    assert.equal(report.portMapping?.pcp.available, false, 'no IPv4 here: PCP over IPv4 has no gateway to ask');
    assert.deepEqual(await miniupnpdPinholes(lab, 'ragent'), [], 'netcheck deletes the pinhole it made');

    const text = await lab.exec('agent', process.execPath, [BIN, 'netcheck', '--stun', stun], { timeoutMs: 20_000, env: WITH_PORT_MAPPING });
    assert.match(text.stdout, /IPv6 pinhole: +yes, \[2001:db8:2::2\]:\d+ open to anyone for 120 s \(PCP, gateway 2001:db8:2::1\)/, text.stdout);
    assert.match(text.stdout, /opened its IPv6 firewall for \[2001:db8:2::2\]:\d+ when asked \(a PCP pinhole\)/, text.stdout);
  });

  test('an agent holds a pinhole for its socket, names it in its netcheck line, and deletes it when it stops cleanly', async () => {
    const coord = await startCoordinator(lab, ['--stun', `[${lab.node(STUN_HOST).addresses6[0]!}]:${STUN6_PORT}`]);
    let agent: LabProcess | undefined;
    try {
      const token = await createToken(coord.dataDir, ['--agent', 'dev-box']);
      agent = await startAgent(lab, 'agent', coordinatorUrlFor(lab, 'agent', coord), token);
      const line = await waitForLine(agent, /^netcheck: /, 15_000, 'the agent\'s netcheck line');
      const m = /IPv6 firewall opened by PCP for (\[2001:db8:2::2\]:\d+)/.exec(line);
      assert.ok(m, line);
      assert.deepEqual(await miniupnpdPinholes(lab, 'ragent'), [m[1]]);
      const stopping = agent;
      const exited = new Promise((r) => stopping.once('exit', r));
      stopping.kill('SIGTERM');
      await exited;
      agent = undefined;
      assert.deepEqual(await miniupnpdPinholes(lab, 'ragent'), [], 'deleted on a clean stop');
    } finally {
      // A failed step must not leave the agent holding its pinhole for the next test.
      if (agent && agent.exitCode === null) {
        const gone = new Promise((r) => agent!.once('exit', r));
        agent.kill('SIGTERM');
        await gone;
      }
      const gone = new Promise((r) => coord.process.once('exit', r));
      coord.process.kill('SIGTERM');
      await gone;
    }
  });

  test(`matrix cell "${CELL.name}": direct over IPv6 through the pinhole`, async () => {
    let pinholes: string[] = [];
    let flows: string[] = [];
    const outcome = await runCell(CELL, lab, undefined, async () => {
      pinholes = await miniupnpdPinholes(lab, 'ragent');
      flows = (await runOk('ip', ['netns', 'exec', lab.router('rclient').ns, 'conntrack', '-L', '-f', 'ipv6', '-p', 'udp'])).split('\n');
    });
    const detail = JSON.stringify(outcome, null, 2);
    assert.equal(outcome.summary.path, 'direct', detail);
    assert.ok(outcome.summary.endpoint?.startsWith(`[${agent6}]:`), detail);
    assert.deepEqual(pinholes, [outcome.summary.endpoint], 'the path ends on the endpoint the agent holds a pinhole for');
    // The client's side of that path went through its NAT66: the agent answered the router's WAN address.
    const port = outcome.summary.endpoint!.slice(outcome.summary.endpoint!.lastIndexOf(':') + 1);
    const natted = new RegExp(`src=${lab.node('client').addresses6[0]} dst=${agent6} sport=\\d+ dport=${port} .*src=${agent6} dst=${lab.router('rclient').addresses6[0]} sport=${port} `);
    assert.ok(flows.some((f) => natted.test(f)), flows.join('\n'));
  });
});

describe('the same cell without PCP on the agent\'s router', { skip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab(pinholePair(false));
  });
  after(async () => {
    await lab?.teardown();
  });

  test('relays: nobody can send first, and the NAT66 hides the port simultaneous sending would need', async () => {
    const outcome = await runCell(CELL, lab);
    assert.equal(outcome.summary.path, 'relay', JSON.stringify(outcome, null, 2));
  });
});

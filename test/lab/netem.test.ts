// Link impairments: loss (tc netem, or the nftables fallback on kernels without sch_netem) and
// delay (tc netem, or the NFQUEUE helper tools/nfqdelay without it; skipped with the reason where
// neither works, and failing instead under TRAVERSE_REQUIRE_LAB=1).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labRequired, labSkip } from '../../lab/availability.js';
import type { Lab } from '../../lab/lab.js';
import { ImpairmentUnsupportedError, netemAvailable } from '../../lab/netem.js';
import { createLab } from '../../lab/topology.js';
import { namespacePids } from '../../lab/netns.js';
import { sameLan } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';

const skip = await labSkip();

/** Sends `n` numbered datagrams from a to b's address; returns how many arrived. */
async function delivered(a: UdpPeer, b: UdpPeer, to: string, n: number, tag: string): Promise<number> {
  for (let i = 0; i < n; i++) a.send(to, `${tag}${i}`);
  await b.received(`${tag}${n - 1}`, 500);
  await new Promise((r) => setTimeout(r, 100));
  return b.events.filter((e) => e.event === 'recv' && e.data.startsWith(tag)).length;
}

/** Median of `n` UDP round trips a -> b -> a (b answers when told to), in ms. */
async function roundTrip(a: UdpPeer, b: UdpPeer, bAddr: string, n: number, tag: string): Promise<number> {
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    a.send(bAddr, `${tag}-ping${i}`);
    const got = await b.received(`${tag}-ping${i}`, 2000);
    assert.ok(got, `${tag}: ping ${i} lost`);
    b.send(got.from, `${tag}-pong${i}`);
    assert.ok(await a.received(`${tag}-pong${i}`, 2000), `${tag}: pong ${i} lost`);
    rtts.push(performance.now() - t0);
  }
  rtts.sort((x, y) => x - y);
  return rtts[n >> 1]!;
}

/** What of the NFQUEUE fallback is left in a namespace: queue rules and nfqdelay processes. */
async function nfqLeftovers(lab: Lab, node: string): Promise<string[]> {
  const rules = await lab.exec(node, 'iptables', ['-w', '-t', 'mangle', '-S']);
  const left = rules.stdout.split('\n').filter((l) => l.includes('NFQUEUE'));
  for (const pid of await namespacePids(lab.node(node).ns)) {
    const comm = await lab.exec(node, 'cat', [`/proc/${pid}/comm`]);
    if (comm.stdout.trim() === 'nfqdelay') left.push(`nfqdelay pid ${pid}`);
  }
  return left;
}

describe('link impairments', { skip }, () => {
  let lab: Lab | undefined;
  let client: UdpPeer;
  let agent: UdpPeer;
  let agentAddr = '';
  before(async () => {
    lab = await createLab(sameLan());
    [client, agent] = await Promise.all([UdpPeer.start(lab, 'client'), UdpPeer.start(lab, 'agent', 41000)]);
    agentAddr = `${lab.node('agent').address}:41000`;
  });
  after(() => lab?.teardown());

  test('100% loss on a link cuts it; clearing restores it', async () => {
    assert.ok(lab);
    await lab.impair('client', { lossPercent: 100 });
    assert.equal(await delivered(client, agent, agentAddr, 20, 'cut'), 0);
    await lab.clearImpairment('client');
    assert.equal(await delivered(client, agent, agentAddr, 20, 'ok'), 20);
  });

  test('30% loss one way drops roughly 30%', async () => {
    assert.ok(lab);
    await lab.impair('client', { lossPercent: 30 }, 'up');
    const got = await delivered(client, agent, agentAddr, 400, 'loss');
    await lab.clearImpairment('client');
    // Binomial(400, 0.7): mean 280, sd ~9; the bounds are > 6 sd wide.
    assert.ok(got > 220 && got < 340, `delivered ${got}/400`);
  });

  test('delay adds latency: 50 ms one way, then 25 ms each way', async (t) => {
    assert.ok(lab);
    const base = await roundTrip(client, agent, agentAddr, 7, 'base');
    try {
      await lab.impair('client', { delayMs: 50 }, 'up');
    } catch (err) {
      if (!(err instanceof ImpairmentUnsupportedError) || labRequired()) throw err;
      t.skip(`no way to add delay here: ${err.message}`);
      return;
    }
    const how = (await netemAvailable(lab.node('client').ns)) ? 'tc netem' : 'NFQUEUE + nfqdelay';
    try {
      const up = await roundTrip(client, agent, agentAddr, 7, 'up');
      await lab.impair('client', { delayMs: 25 }, 'both');
      const both = await roundTrip(client, agent, agentAddr, 7, 'both');
      t.diagnostic(`${how}: RTT median ${base.toFixed(1)} ms; +50 ms up: ${up.toFixed(1)} ms; +25 ms each way: ${both.toFixed(1)} ms`);
      // Asked: 50 ms more round trip either way; allowed: within 20%.
      for (const [name, rtt] of [['50 ms up', up], ['25 ms each way', both]] as const) {
        const added = rtt - base;
        assert.ok(added >= 40 && added <= 60, `${name}: added RTT ${added.toFixed(1)} ms (base ${base.toFixed(1)}, now ${rtt.toFixed(1)})`);
      }
    } finally {
      await lab.clearImpairment('client');
    }
    const cleared = await roundTrip(client, agent, agentAddr, 7, 'cleared');
    assert.ok(cleared - base < 10, `after clearing: RTT ${cleared.toFixed(1)} ms (base ${base.toFixed(1)})`);
    assert.deepEqual([...(await nfqLeftovers(lab, 'client')), ...(await nfqLeftovers(lab, 'home'))], []);
  });
});

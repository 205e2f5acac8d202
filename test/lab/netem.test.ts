// Link impairments: loss (tc netem, or the nftables fallback on kernels without sch_netem) and
// delay (netem only; skipped with the reason where the kernel lacks it).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from './availability.js';
import type { Lab } from './lab.js';
import { ImpairmentUnsupportedError, netemAvailable } from './netem.js';
import { createLab } from './topology.js';
import { COORD_HOST, sameLan } from './topologies.js';
import { UdpPeer } from './udp-peer-control.js';

const skip = await labSkip();

/** Sends `n` numbered datagrams from a to b's address; returns how many arrived. */
async function delivered(a: UdpPeer, b: UdpPeer, to: string, n: number, tag: string): Promise<number> {
  for (let i = 0; i < n; i++) a.send(to, `${tag}${i}`);
  await b.received(`${tag}${n - 1}`, 500);
  await new Promise((r) => setTimeout(r, 100));
  return b.events.filter((e) => e.event === 'recv' && e.data.startsWith(tag)).length;
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

  test('delay adds latency (needs sch_netem)', async (t) => {
    assert.ok(lab);
    if (!(await netemAvailable(lab.node(COORD_HOST).ns))) {
      await assert.rejects(lab.impair('client', { delayMs: 50 }), ImpairmentUnsupportedError);
      t.skip('this kernel has no sch_netem: delay cannot be emulated (loss uses the nftables fallback)');
      return;
    }
    await lab.impair('client', { delayMs: 50 }, 'up');
    const t0 = Date.now();
    client.send(agentAddr, 'slow');
    assert.ok(await agent.received('slow', 2000));
    await lab.clearImpairment('client');
    assert.ok(Date.now() - t0 >= 45, `arrived after ${Date.now() - t0} ms`);
  });
});

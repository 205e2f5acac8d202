// Two hosts on one LAN behind one router: both appear as the router's WAN address, and they
// reach each other directly on the LAN (switched by the router's bridge, not NATed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { startCoturn, STUN_PORT } from '../../lab/coturn.js';
import type { Lab } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { sameLan, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';

const skip = await labSkip();

describe('two hosts on one LAN', { skip }, () => {
  let lab: Lab | undefined;
  before(async () => {
    lab = await createLab(sameLan());
    await startCoturn(lab, STUN_HOST);
  });
  after(() => lab?.teardown());

  test('same public address; direct LAN path both ways from LAN source addresses', async () => {
    assert.ok(lab);
    const wan = lab.router('home').router.wanAddress;
    const [client, agent] = await Promise.all([UdpPeer.start(lab, 'client'), UdpPeer.start(lab, 'agent')]);
    const stun = `${STUN_ADDRESSES[0]}:${STUN_PORT}`;
    assert.equal((await client.mappedVia(stun))?.split(':')[0], wan);
    assert.equal((await agent.mappedVia(stun))?.split(':')[0], wan);
    const c = `${lab.node('client').address}:${client.events.find((e) => e.event === 'listening')?.port}`;
    const a = `${lab.node('agent').address}:${agent.events.find((e) => e.event === 'listening')?.port}`;
    client.send(a, 'hello-agent');
    agent.send(c, 'hello-client');
    assert.equal((await agent.received('hello-agent', 2000))?.from, c);
    assert.equal((await client.received('hello-client', 2000))?.from, a);
  });
});

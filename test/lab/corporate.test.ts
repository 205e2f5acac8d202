// The seed's corporate case, with and without hairpinning at the corporate NAT: a VPN client
// and a Kubernetes pod behind one NAT. Proves the internal STUN server reveals corporate-LAN
// addresses that connect the peers directly, and that the public addresses connect them only
// when the corporate NAT hairpins (checked for both hosts, and by coturn from a LAN host).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { natDiscovery, startCoturn, STUN_PORT } from '../../lab/coturn.js';
import type { Lab } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { corporate, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';
import { UdpPeer } from '../../lab/udp-peer-control.js';

const skip = await labSkip();
const PUBLIC_STUN = `${STUN_ADDRESSES[0]}:${STUN_PORT}`;
const INTERNAL_STUN = `10.10.0.10:${STUN_PORT}`;

/** Both peers send to each other's given address at once (a hole punch): [agent heard, client heard]. */
async function punch(client: UdpPeer, agent: UdpPeer, toAgent: string, toClient: string, tag: string): Promise<[boolean, boolean]> {
  for (let i = 0; i < 5; i++) {
    client.send(toAgent, `${tag}-c2a`);
    agent.send(toClient, `${tag}-a2c`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [a, c] = await Promise.all([agent.received(`${tag}-c2a`, 500), client.received(`${tag}-a2c`, 500)]);
  return [a !== undefined, c !== undefined];
}

for (const hairpin of [false, true]) {
  describe(`corporate NAT ${hairpin ? 'with' : 'without'} hairpinning`, { skip, concurrency: true }, () => {
    let lab: Lab | undefined;
    before(async () => {
      lab = await createLab(corporate(hairpin));
      await Promise.all([startCoturn(lab, STUN_HOST), startCoturn(lab, 'istun')]);
    });
    after(() => lab?.teardown());

    test('both peers map to the corporate WAN address publicly, to their gateways internally', async () => {
      assert.ok(lab);
      const corpWan = lab.router('corp').router.wanAddress;
      const [client, agent] = await Promise.all([UdpPeer.start(lab, 'client'), UdpPeer.start(lab, 'agent')]);
      assert.equal((await client.mappedVia(PUBLIC_STUN))?.split(':')[0], corpWan);
      assert.equal((await agent.mappedVia(PUBLIC_STUN))?.split(':')[0], corpWan);
      assert.equal((await client.mappedVia(INTERNAL_STUN))?.split(':')[0], lab.node('vpn').address);
      assert.equal((await agent.mappedVia(INTERNAL_STUN))?.split(':')[0], lab.node('k8s').address);
    });

    test('internal STUN addresses connect the peers directly', async () => {
      assert.ok(lab);
      const [client, agent] = await Promise.all([UdpPeer.start(lab, 'client'), UdpPeer.start(lab, 'agent')]);
      const c = await client.mappedVia(INTERNAL_STUN);
      const a = await agent.mappedVia(INTERNAL_STUN);
      assert.ok(c && a);
      assert.deepEqual(await punch(client, agent, a, c, 'internal'), [true, true]);
    });

    test(`public addresses ${hairpin ? 'connect' : 'do not connect'} the peers (hairpin, both directions)`, async () => {
      assert.ok(lab);
      const [client, agent] = await Promise.all([UdpPeer.start(lab, 'client'), UdpPeer.start(lab, 'agent')]);
      const c = await client.mappedVia(PUBLIC_STUN);
      const a = await agent.mappedVia(PUBLIC_STUN);
      assert.ok(c && a);
      const corpWan = lab.router('corp').router.wanAddress;
      assert.deepEqual(await punch(client, agent, a, c, 'public'), [hairpin, hairpin]);
      if (hairpin) {
        // The hairpinned packet must come from the sender's public mapping, not a private address.
        assert.equal((await agent.received('public-c2a', 0))?.from, c);
        assert.equal((await client.received('public-a2c', 0))?.from, a);
        assert.equal(c.split(':')[0], corpWan);
      }
    });

    test(`coturn from a corporate LAN host measures hairpinning = ${hairpin}`, async () => {
      assert.ok(lab);
      // istun sits directly on the corporate LAN, so only corp's behaviour is measured. (From
      // "client", coturn's second socket would also meet the VPN node's own port-restricted
      // filtering, which no hairpin can pass.)
      const d = await natDiscovery(lab, 'istun', STUN_ADDRESSES[0], { hairpin: true });
      assert.equal(d.reflexive[0]?.split(':')[0], lab.router('corp').router.wanAddress, d.output);
      assert.equal(d.hairpinning, hairpin, d.output);
    });
  });
}

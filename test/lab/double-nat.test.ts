// Double NAT: a home NAT behind a carrier-grade NAT (100.64.0.0/10 between them). The public
// address is the CGN's, and the mapping stays endpoint-independent through both layers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { natDiscovery, startCoturn } from '../../lab/coturn.js';
import type { Lab } from '../../lab/lab.js';
import { createLab } from '../../lab/topology.js';
import { doubleNat, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';

const skip = await labSkip();

describe('double NAT (home NAT behind carrier-grade NAT)', { skip }, () => {
  let lab: Lab | undefined;
  before(async () => {
    lab = await createLab(doubleNat());
    await startCoturn(lab, STUN_HOST);
  });
  after(() => lab?.teardown());

  test('maps to the CGN WAN address; EIM, address-and-port-dependent filtering', async () => {
    assert.ok(lab);
    const cgnWan = lab.router('cgn').router.wanAddress;
    const homeWan = lab.router('home').router.wanAddress;
    assert.match(homeWan, /^100\.64\./);
    assert.equal(lab.publicAddress('client'), cgnWan);
    const d = await natDiscovery(lab, 'client', STUN_ADDRESSES[0]);
    assert.equal(d.mapping, 'endpoint-independent', d.output);
    assert.equal(d.filtering, 'address-and-port-dependent', d.output);
    assert.ok(d.reflexive.length > 0);
    for (const r of d.reflexive) assert.equal(r.split(':')[0], cgnWan, d.output);
  });
});

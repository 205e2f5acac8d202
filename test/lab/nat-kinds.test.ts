// Every router NAT kind, measured with real packets by an independent judge (coturn's RFC 5780
// NAT behaviour discovery): mapping, filtering, and the public address it maps to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { natDiscovery, startCoturn } from '../../lab/coturn.js';
import type { Lab } from '../../lab/lab.js';
import { NAT_BEHAVIOUR, NAT_KINDS } from '../../lab/nat.js';
import { createLab } from '../../lab/topology.js';
import { allKinds, COORD_HOST, KIND_STEM, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';

const skip = await labSkip();

describe('NAT kinds, as coturn measures them', { skip, concurrency: true }, () => {
  let lab: Lab | undefined;
  before(async () => {
    lab = await createLab(allKinds(NAT_KINDS));
    await startCoturn(lab, STUN_HOST);
  });
  after(() => lab?.teardown());

  for (const kind of NAT_KINDS) {
    test(`${kind}: ${NAT_BEHAVIOUR[kind].summary}`, async () => {
      assert.ok(lab);
      const host = `h${KIND_STEM[kind]}`;
      const want = NAT_BEHAVIOUR[kind];
      const d = await natDiscovery(lab, host, STUN_ADDRESSES[0]);
      assert.equal(d.mapping, want.mapping, d.output);
      assert.equal(d.filtering, want.filtering, d.output);
      if (want.mapping === undefined) {
        assert.deepEqual(d.reflexive, [], 'no STUN answer may get through');
        return;
      }
      const wan = lab.router(`r${KIND_STEM[kind]}`).router.wanAddress;
      assert.equal(lab.publicAddress(host), wan);
      assert.ok(d.reflexive.length > 0, d.output);
      for (const r of d.reflexive) assert.equal(r.split(':')[0], wan, `mapped to the router's real WAN address\n${d.output}`);
      if (want.mapping === 'endpoint-independent') {
        // MASQUERADE keeps the socket's port: each reflexive port equals its local port.
        d.reflexive.forEach((r, i) => assert.equal(r.split(':')[1], d.local[i]?.split(':')[1], d.output));
      }
    });
  }

  test('udp-blocked still lets TCP out', async () => {
    assert.ok(lab);
    const coord = lab.node(COORD_HOST).address;
    lab.spawn(COORD_HOST, process.execPath, ['-e', `require('net').createServer((s) => s.end('tcp-ok')).listen(8080, '${coord}')`]);
    const client = `const s = require('net').connect(8080, '${coord}'); s.on('data', (d) => { process.stdout.write(d); process.exit(0); }); s.on('error', () => setTimeout(() => process.exit(1), 100));`;
    let out = '';
    // The server may need a moment to listen; retry briefly.
    for (let i = 0; i < 20 && out !== 'tcp-ok'; i++) {
      out = (await lab.exec(`h${KIND_STEM['udp-blocked']}`, process.execPath, ['-e', client], { timeoutMs: 5000 })).stdout;
      if (out !== 'tcp-ok') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(out, 'tcp-ok');
  });
});

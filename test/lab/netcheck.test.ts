// Netcheck from behind every kind of NAT in the lab, against coturn and against Traverse's own
// STUN server: both must give the same, correct answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import type { Lab } from '../../lab/lab.js';
import { NAT_BEHAVIOUR, NAT_KINDS, type NatKind } from '../../lab/nat.js';
import { createLab } from '../../lab/topology.js';
import { allKinds, corporate, doubleNat, KIND_STEM, STUN_ADDRESSES, STUN_HOST } from '../../lab/topologies.js';
import { LAB_STUN_SERVERS } from '../../lab/stun-servers.js';
import { BIN } from '../helpers/cli.js';
import type { NetcheckReport } from '../../src/netcheck/report.js';

const skip = await labSkip();

async function netcheck(lab: Lab, host: string, stun: readonly string[]): Promise<NetcheckReport> {
  const args = [BIN, 'netcheck', '--json', '--timeout', '3000', ...stun.flatMap((s) => ['--stun', s])];
  const r = await lab.exec(host, process.execPath, args, { timeoutMs: 15_000 });
  assert.equal(r.code, 0, `netcheck in ${host} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as NetcheckReport;
}

interface Expect {
  readonly udp: boolean;
  readonly mapping: NetcheckReport['mapping'];
  readonly filtering: NetcheckReport['filtering'];
  readonly varies: boolean | null;
  readonly hairpinning: boolean | null;
  /** The public IP the router really uses. */
  readonly publicIp: string | null;
}

function check(r: NetcheckReport, want: Expect, what: string): void {
  const got = { udp: r.udp, mapping: r.mapping, filtering: r.filtering, varies: r.mappingVariesByDestIP, hairpinning: r.hairpinning, publicIp: r.globalV4?.split(':')[0] ?? null };
  assert.deepEqual(got, want, `${what}\n${JSON.stringify(r, null, 2)}`);
}

function expectFor(kind: NatKind, publicIp: string): Expect {
  const b = NAT_BEHAVIOUR[kind];
  if (b.mapping === undefined) return { udp: false, mapping: 'unknown', filtering: 'unknown', varies: null, hairpinning: null, publicIp: null };
  return {
    udp: true,
    mapping: b.mapping,
    filtering: b.filtering ?? 'unknown',
    varies: b.mapping !== 'endpoint-independent',
    hairpinning: false,
    publicIp,
  };
}

for (const server of LAB_STUN_SERVERS) {
  describe(`netcheck behind each NAT kind, against ${server.name}`, { skip, concurrency: true }, () => {
    let lab: Lab | undefined;
    before(async () => {
      lab = await createLab(allKinds(NAT_KINDS));
      await server.start(lab, STUN_HOST);
    });
    after(() => lab?.teardown());

    for (const kind of NAT_KINDS) {
      test(`${kind}`, async () => {
        assert.ok(lab);
        const started = Date.now();
        const r = await netcheck(lab, `h${KIND_STEM[kind]}`, [`${STUN_ADDRESSES[0]}:${server.port}`]);
        check(r, expectFor(kind, lab.router(`r${KIND_STEM[kind]}`).router.wanAddress), kind);
        if (kind === 'udp-blocked') assert.ok(Date.now() - started < 6000, 'blocked UDP is reported quickly');
      });
    }
  });

  describe(`netcheck in double NAT and corporate networks, against ${server.name}`, { skip, concurrency: true }, () => {
    const labs: Lab[] = [];
    let dbl: Lab | undefined;
    let corp: Lab | undefined;
    let corpHairpin: Lab | undefined;
    before(async () => {
      [dbl, corp, corpHairpin] = await Promise.all([createLab(doubleNat()), createLab(corporate(false)), createLab(corporate(true))]);
      labs.push(dbl, corp, corpHairpin);
      await Promise.all([
        server.start(dbl, STUN_HOST),
        server.start(corp, STUN_HOST),
        server.start(corp, 'istun'),
        server.start(corpHairpin, STUN_HOST),
      ]);
    });
    after(() => Promise.all(labs.map((l) => l.teardown())));

    test('double NAT: the carrier-grade NAT public address, easy behaviour', async () => {
      assert.ok(dbl);
      const r = await netcheck(dbl, 'client', [`${STUN_ADDRESSES[0]}:${server.port}`]);
      check(r, { ...expectFor('easy', dbl.router('cgn').router.wanAddress) }, 'double NAT');
    });

    test('corporate NAT without hairpinning, public STUN: no hairpinning', async () => {
      assert.ok(corp);
      const r = await netcheck(corp, 'client', [`${STUN_ADDRESSES[0]}:${server.port}`]);
      check(r, expectFor('easy', corp.router('corp').router.wanAddress), 'corporate, public STUN');
    });

    test('corporate NAT without hairpinning, internal STUN: the corporate-LAN address', async () => {
      assert.ok(corp);
      const r = await netcheck(corp, 'agent', [`${corp.node('istun').addresses[0]}:${server.port}`]);
      check(r, expectFor('easy', corp.router('k8s').router.wanAddress), 'corporate, internal STUN');
    });

    test('corporate NAT that hairpins: hairpinning seen from the VPN client', async () => {
      assert.ok(corpHairpin);
      const r = await netcheck(corpHairpin, 'client', [`${STUN_ADDRESSES[0]}:${server.port}`]);
      check(r, { ...expectFor('easy', corpHairpin.router('corp').router.wanAddress), hairpinning: true }, 'corporate, hairpinning');
    });
  });
}

// The IPv6 pinhole (PCP MAP for our own IPv6 address) against a small PCP firewall on ::1: open,
// renew with the same nonce, delete on close, the router's refusals and a NAT66's answer; and the
// IPv6 default route and address the request is made from.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { NetworkInterfaceInfo } from 'node:os';
import { globalAddress6For, parseDefaultRoute6 } from '../../src/portmap/gateway6.js';
import fc from 'fast-check';
import { PinholeKeeper, requestPinhole, surveyPinhole, type Pinhole } from '../../src/portmap/pinhole.js';
import { PortMapError } from '../../src/portmap/client.js';

const ROUTE_TABLE = [
  '20010db8000200000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth1',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000200000000000000000001 00000400 00000003 00000000 00000003     eth0',
].join('\n');

test('the IPv6 default route: the lowest metric via a gateway, not the kernel\'s unreachable one on lo', () => {
  assert.deepEqual(parseDefaultRoute6(ROUTE_TABLE), { ifName: 'eth1', gateway: 'fe80::1' });
  assert.deepEqual(parseDefaultRoute6(ROUTE_TABLE.split('\n').filter((l) => !l.includes('eth1')).join('\n')), { ifName: 'eth0', gateway: '2001:db8:2::1' });
  assert.equal(parseDefaultRoute6(ROUTE_TABLE.split('\n').slice(0, 2).join('\n')), null);
  assert.equal(parseDefaultRoute6('garbage\n\n1 2 3'), null);
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => void parseDefaultRoute6(s)), { numRuns: 2000 });
});

test('the pinhole\'s address: a global one on the gateway\'s interface, unique-local only without one', () => {
  const a = (address: string): NetworkInterfaceInfo => ({ address, family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: '', cidr: null, scopeid: 0 });
  assert.equal(globalAddress6For('eth0', { eth0: [a('fe80::2'), a('fd00::2'), a('2001:db8:2::2')] }), '2001:db8:2::2');
  assert.equal(globalAddress6For('eth0', { eth0: [a('fe80::2'), a('fd00::2')] }), 'fd00::2');
  assert.equal(globalAddress6For('eth0', { eth0: [a('fe80::2')], eth1: [a('2001:db8::9')] }), null);
});

/** A PCP firewall on ::1: answers MAP for the sender's own address (RFC 6887 section 11.3), as miniupnpd does. */
interface FakeFirewall {
  readonly port: number;
  readonly seen: { lifetimeS: number; nonce: string }[];
  answer: 'pinhole' | 'nat66' | number | 'silent' | Uint8Array;
  epochS: number;
  close(): void;
}

async function startFirewall(): Promise<FakeFirewall> {
  const s: Socket = createSocket({ type: 'udp6', ipv6Only: true });
  await new Promise<void>((r) => s.bind(0, '::1', () => r()));
  const fw: FakeFirewall = { port: s.address().port, seen: [], answer: 'pinhole', epochS: 100, close: () => s.close() };
  s.on('message', (m, r) => {
    if (fw.answer instanceof Uint8Array) return void s.send(fw.answer, r.port, r.address);
    if (m.length < 60 || m[0] !== 2 || m[1] !== 1 || fw.answer === 'silent') return;
    fw.seen.push({ lifetimeS: m.readUInt32BE(4), nonce: m.subarray(24, 36).toString('hex') });
    const b = Buffer.from(m);
    b[1] = 0x81;
    b[3] = typeof fw.answer === 'number' ? fw.answer : 0;
    b.writeUInt32BE(Math.min(m.readUInt32BE(4), 3600), 4);
    b.writeUInt32BE(fw.epochS, 8);
    b.fill(0, 12, 24);
    // External address: the client's own (a firewall), or another (a NAT66).
    if (fw.answer === 'nat66') b[59] = 0x99;
    else m.copy(b, 44, 8, 24);
    s.send(b, r.port, r.address);
  });
  return fw;
}

/** Whether this machine has IPv6 loopback to test on. */
const v6Loopback = await new Promise<boolean>((resolve) => {
  const s = createSocket({ type: 'udp6', ipv6Only: true });
  s.once('error', () => resolve(false));
  s.bind(0, '::1', () => {
    s.close();
    resolve(true);
  });
});

describe('IPv6 pinhole against a PCP firewall on ::1', { skip: v6Loopback ? false : 'no IPv6 loopback (::1) on this machine' }, () => {
  let fw: FakeFirewall;
  const gw = { address: '::1', localAddress: '::1', ifName: 'lo' };
  before(async () => {
    fw = await startFirewall();
  });
  after(() => fw.close());

  test('opens our own address and port, renews with the same nonce, and says why not when refused', async () => {
    fw.answer = 'pinhole';
    const p = await requestPinhole(gw, 4242, 7200, { pcpPort: fw.port });
    assert.deepEqual({ ...p, nonce: p.nonce.length }, { gateway: '::1', address: '::1', port: 4242, lifetimeS: 3600, epochS: 100, nonce: 12 });
    const renewed = await requestPinhole(gw, 4242, 7200, { pcpPort: fw.port, previous: p });
    assert.equal(fw.seen.at(-1)!.nonce, fw.seen.at(-2)!.nonce);
    assert.equal(renewed.port, 4242);
    fw.answer = 2;
    await assert.rejects(requestPinhole(gw, 4242, 7200, { pcpPort: fw.port }), /pcp: not authorized/);
    fw.answer = 'nat66';
    await assert.rejects(requestPinhole(gw, 4242, 7200, { pcpPort: fw.port }), /not our own address and port \(a NAT66\?\)/);
    fw.answer = 'silent';
    await assert.rejects(requestPinhole(gw, 4242, 7200, { pcpPort: fw.port, timeoutMs: 300 }), /no answer/);
    await assert.rejects(requestPinhole(gw, 4242, 0, { pcpPort: fw.port }), /never a permanent one/);
  });

  test('netcheck\'s survey opens a short pinhole and deletes it; without a gateway it says so', async () => {
    fw.answer = 'pinhole';
    fw.seen.length = 0;
    assert.deepEqual(await surveyPinhole(5000, { gateway: () => gw, pcpPort: fw.port }), { opened: true, gateway: '::1', endpoint: '[::1]:5000', lifetimeS: 120 });
    assert.deepEqual(fw.seen.map((s) => s.lifetimeS), [120, 0]);
    assert.equal(fw.seen[0]!.nonce, fw.seen[1]!.nonce, 'the delete names the pinhole by its nonce');
    assert.deepEqual(await surveyPinhole(5000, { gateway: () => null }), { opened: false, gateway: null, reason: 'no IPv6 default gateway with a global IPv6 address' });
  });

  test('the keeper opens, reports, renews at half the lifetime (fake clock), and deletes on close', async () => {
    fw.answer = 'pinhole';
    fw.seen.length = 0;
    let now = 0;
    const changes: (Pinhole | null)[] = [];
    const k = new PinholeKeeper({ internalPort: 6000, gateway: () => gw, pcpPort: fw.port, now: () => now, tickMs: 20, onChange: (p) => changes.push(p) });
    await k.ready;
    assert.deepEqual(k.status, { opened: true, gateway: '::1', endpoint: '[::1]:6000', lifetimeS: 3600 });
    assert.equal(changes.length, 1);
    now = 1800_000; // half of the granted hour
    const deadline = Date.now() + 3000;
    while (fw.seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(fw.seen.map((s) => s.lifetimeS), [7200, 7200], 'renewed');
    assert.equal(changes.length, 1, 'a renewal to the same endpoint is not a change');
    await k.close();
    assert.equal(fw.seen.at(-1)!.lifetimeS, 0, 'deleted on close');
    assert.equal(fw.seen.at(-1)!.nonce, fw.seen[0]!.nonce);
  });

  test('a firewall answering garbage: the request fails with PortMapError, nothing else escapes', async () => {
    const nearValid = fc.uint8Array({ minLength: 58, maxLength: 62 }).map((b) => Uint8Array.of(2, 0x81, ...b));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 80 }), nearValid), async (bytes) => {
        fw.answer = bytes;
        try {
          const p = await requestPinhole(gw, 4242, 7200, { pcpPort: fw.port, timeoutMs: 120 });
          // Garbage that decodes as a success must still name our own address and port.
          assert.equal(p.address, '::1');
          assert.equal(p.port, 4242);
        } catch (err) {
          assert.ok(err instanceof PortMapError, String(err));
        }
      }),
      { numRuns: 12 },
    );
  });

  test('a router without PCP: the keeper reports why, and nothing changes', async () => {
    fw.answer = 'silent';
    const k = new PinholeKeeper({ internalPort: 6001, gateway: () => gw, pcpPort: fw.port, firstTimeoutMs: 300, onChange: () => assert.fail('no change expected') });
    await k.ready;
    assert.deepEqual(k.status, { opened: false, gateway: '::1', reason: 'no answer' });
    await k.close();
  });
});

// Gateway announcements (PCP ANNOUNCE, NAT-PMP address notifications): which packets count, from
// whom and how often; and a keeper that re-maps at once when its (fake, loopback) gateway
// announces a restart, long before its next epoch check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import fc from 'fast-check';
import { AnnouncementGate, parseAnnouncement } from '../../src/portmap/announce.js';
import { PortMapKeeper } from '../../src/portmap/keeper.js';
import { RenewalSchedule } from '../../src/portmap/schedule.js';
import { clientOptions, LOOPBACK_GATEWAY, startFakeGateway } from './fake-gateway.js';

/** An unsolicited PCP ANNOUNCE response (RFC 6887 section 14.1.1): version 2, R=1, opcode 0. */
function pcpAnnounce(epochS: number, result = 0): Buffer {
  const b = Buffer.alloc(24);
  b[0] = 2;
  b[1] = 0x80;
  b[3] = result;
  b.writeUInt32BE(epochS, 8);
  return b;
}

/** A NAT-PMP public address notification (RFC 6886 section 3.2.1): an external-address response. */
function natpmpNotice(epochS: number, result = 0): Buffer {
  const b = Buffer.alloc(12);
  b[1] = 128;
  b.writeUInt16BE(result, 2);
  b.writeUInt32BE(epochS, 4);
  b.set([203, 0, 113, 9], 8);
  return b;
}

test('parseAnnouncement: successful PCP ANNOUNCE and NAT-PMP notifications; anything else is not one', () => {
  assert.deepEqual(parseAnnouncement(pcpAnnounce(7)), { protocol: 'pcp', epochS: 7 });
  assert.deepEqual(parseAnnouncement(natpmpNotice(9)), { protocol: 'natpmp', epochS: 9 });
  assert.equal(parseAnnouncement(pcpAnnounce(7, 3)), null, 'an error result');
  assert.equal(parseAnnouncement(natpmpNotice(9, 3)), null, 'an error result');
  const request = pcpAnnounce(7);
  request[1] = 0; // R=0: a request, not an announcement
  assert.equal(parseAnnouncement(request), null);
  const mapResponse = Buffer.alloc(60);
  mapResponse[0] = 2;
  mapResponse[1] = 0x81;
  assert.equal(parseAnnouncement(mapResponse), null, 'a MAP response is not an announcement');
  for (const junk of [Buffer.alloc(0), Buffer.from([2]), Buffer.from([0, 128, 0]), Buffer.alloc(1200, 0xff)]) assert.equal(parseAnnouncement(junk), null);
});

test('parseAnnouncement and the gate never throw on random or near-valid bytes', () => {
  const gate = new AnnouncementGate('192.168.1.1', 0);
  const nearValid = fc.uint8Array({ minLength: 2, maxLength: 64 }).map((b) => Uint8Array.of(b[0]! & 2, 0x80 | (b[1]! & 0x81), ...b.subarray(2)));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 1100 }), nearValid), (bytes) => {
      const a = parseAnnouncement(bytes);
      assert.ok(a === null || (Number.isInteger(a.epochS) && a.epochS >= 0));
      assert.equal(gate.accept('192.168.1.1', bytes, 0), a !== null);
    }),
    { numRuns: 500 },
  );
});

test('AnnouncementGate: only from the gateway, only well-formed, at most one per interval', () => {
  const g = new AnnouncementGate('192.168.1.1', 1000);
  assert.equal(g.accept('192.168.1.66', pcpAnnounce(1), 0), false, 'another LAN host');
  assert.equal(g.accept('192.168.1.1', Buffer.from('hello'), 0), false, 'not an announcement');
  assert.equal(g.accept('192.168.1.1', pcpAnnounce(1), 0), true);
  assert.equal(g.accept('192.168.1.1', natpmpNotice(1), 500), false, 'rate-limited');
  assert.equal(g.accept('192.168.1.1', natpmpNotice(1), 1000), true);
});

test('RenewalSchedule.announced: renew (or map) now, whatever the protocol and however recently mapped', () => {
  for (const epochS of [100, null]) {
    const s = new RenewalSchedule(0, { epochCheckMs: 60_000 });
    s.mapped(0, 7200, epochS);
    assert.equal(s.due(1000), null);
    s.announced(1000);
    assert.equal(s.due(1000), 'map');
  }
  const none = new RenewalSchedule(0, { retryMinMs: 1000, reprobeMs: 300_000 });
  for (let i = 0; i < 5; i++) none.failed(i, true);
  assert.equal(none.due(10_000), null, 'waiting the reprobe interval');
  none.announced(10_000);
  assert.equal(none.due(10_000), 'map', 'a gateway that announces itself is asked at once');
});

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('the keeper re-maps as soon as its gateway announces a restart, not at the next epoch check', async () => {
  const gw = await startFakeGateway({ upnp: false });
  const port = await freePort();
  const keeper = new PortMapKeeper({
    internalPort: 5200,
    gateway: () => LOOPBACK_GATEWAY,
    client: clientOptions(gw, 100),
    announcements: { address: '127.0.0.1', port },
    schedule: { epochCheckMs: 600_000 },
    tickMs: 20,
    onChange: () => undefined,
  });
  const sender = createSocket('udp4');
  try {
    await keeper.ready;
    assert.ok(gw.mappings.has(5200));
    gw.epochS = 2; // the router restarted and forgot the mapping
    gw.mappings.clear();
    const t0 = performance.now();
    await new Promise<void>((r) => sender.send(pcpAnnounce(0), port, '127.0.0.1', () => r()));
    while (!gw.mappings.has(5200) && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    assert.ok(gw.mappings.has(5200), 'mapped again after the announcement');
    assert.ok(performance.now() - t0 < 3000, `within seconds of the announcement (${Math.round(performance.now() - t0)} ms), not the 10-minute epoch check`);
  } finally {
    sender.close();
    await keeper.close();
    await gw.close();
  }
});

// The client's turns for TCP lane offers (tunnel/lane-offers.ts), with a stand-in for the stream
// manager: at most 8 offers in flight per peer, and a stream that waits its turn is offered a lane
// for the path it is on when its turn comes, also after it moved while it waited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaneOffers } from '../../src/tunnel/lane-offers.js';
import { openerRecord, type OpenerRecord } from '../../src/tunnel/stream-record.js';
import { ResumableSession } from '../../src/tunnel/session.js';
import type { StreamContext } from '../../src/tunnel/stream-context.js';
import type { StreamControl } from '../../src/tunnel/control.js';
import type { Path } from '../../src/net/path.js';
import { silentLogger } from '../../src/log/logger.js';
import { streamKeyPair } from '../helpers/stream-keys.js';

const PEER = 'ab'.repeat(32);

function stand(): { ctx: StreamContext; sent: { path: Path; m: StreamControl }[]; setPath(p: Path): void } {
  let path: Path = { kind: 'direct', endpoint: '127.0.0.1:1000' };
  const sent: { path: Path; m: StreamControl }[] = [];
  const ctx = {
    magicsock: { pathOf: () => path, isDirectAllowed: true, vouchedIpOf: () => null },
    log: silentLogger,
    resendMs: 60_000,
    deadlineMs: 60_000,
    sessions: new Map(),
    isClosed: () => false,
    count: () => 0,
    track: () => undefined,
    send: (_peer: string, p: Path, m: StreamControl) => void sent.push({ path: p, m }),
    newCarrier: () => assert.fail('no carriers here'),
    connectCarrier: async () => false,
    moved: () => undefined,
  } as unknown as StreamContext;
  return { ctx, sent, setPath: (p) => (path = p) };
}

/** The path a stream's lane offer in flight is for (a function: the record changes behind the checker's back). */
const offerPath = (r: OpenerRecord): Path | undefined => r.laneOffer?.path;

const until = async (ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), 'timed out');
};

test('a stream that moved while it waited for a turn is offered a lane on its new path', async () => {
  const { ctx, sent, setPath } = stand();
  const lanes = new LaneOffers(ctx, { enabled: true, timeoutMs: 60_000, backToUdx: () => undefined, noRelayedLane: () => undefined });
  const K = streamKeyPair();
  const records: OpenerRecord[] = [];
  const record = (): OpenerRecord => {
    const r = openerRecord(PEER, BigInt(records.length + 1), new ResumableSession({ keys: K.a }));
    records.push(r);
    return r;
  };
  try {
    const a: Path = { kind: 'direct', endpoint: '127.0.0.1:1000' };
    for (let i = 0; i < 8; i++) assert.equal(lanes.offer(record(), a), true);
    await until(() => sent.length === 8);
    const late = record();
    assert.equal(lanes.offer(late, a), true, 'queued: its turn comes');
    assert.equal(offerPath(late), undefined, 'not in flight: 8 are');
    // The path moves; the manager offers again for the new path while the stream still waits.
    const b: Path = { kind: 'direct', endpoint: '127.0.0.1:2000' };
    setPath(b);
    assert.equal(lanes.offer(late, b), true);
    assert.equal(offerPath(late), undefined, 'still waiting');
    lanes.cancel(records[0]!); // one offer is over: the next turn
    assert.deepEqual(offerPath(late), b, 'offered on the path it is on now');
    await until(() => sent.length === 9);
    assert.deepEqual(sent[8]!.path, b);
  } finally {
    for (const r of records) {
      lanes.cancel(r);
      r.session.destroy();
    }
  }
});

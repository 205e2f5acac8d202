// A forwarded TCP connection carrying a 100 MB random file while the peer path changes under it:
// relay -> direct (UDP between the peers allowed mid-transfer, the stream on a relay lane until
// then), a TCP lane that dies silently (UDP stays up: back to UDX on the direct path), direct ->
// relay (the direct path, UDP and TCP, dies mid-transfer: onto a relay lane), and only UDP dying
// under a working TCP lane (the stream stays on it). The file must arrive intact, and the carrier
// must really have changed (or, in the last case, not).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { pairOfNats } from '../../lab/topologies.js';
import type { Lab, LabProcess } from '../../lab/lab.js';
import { blockTcp, blockUdp, collect, type Forward, type Lines, exited, forwardPath, lineMatching, sleep, startForward, streamPair, toolServer, TOOL, unblockUdp, within } from '../../lab/streams-lab.js';

const skip = await labSkip();
const SIZE = 100 << 20;
/** Paced so that the transfer spans the path change: about 13 s at 8 MB/s. */
const RATE = 8 << 20;

describe('a stream survives path changes', { skip, concurrency: 2 }, () => {
  let dir = '';
  let file = '';
  let sha256 = '';
  before(() => {
    if (skip) return;
    dir = mkdtempSync(join(tmpdir(), 'traverse-lab-file-'));
    file = join(dir, 'random.bin');
    const data = randomBytes(SIZE);
    sha256 = createHash('sha256').update(data).digest('hex');
    writeFileSync(file, data);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('relay -> direct mid-transfer (download, 100 MB): intact, and the stream moved to the direct path', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const agentWan = lab.router('ragent').address;
      // Direct impossible at first: the client's router drops UDP to and from the agent's public
      // address (STUN and the relay still work), and TCP too, or the relayed stream would go
      // direct over a TCP lane to the agent's vouched IP (tcp-lane.test.ts covers that).
      await blockUdp(lab, 'rclient', agentWan);
      await blockTcp(lab, 'rclient', agentWan);
      const pair = await streamPair(lab);
      await toolServer(lab, 'agent', ['serve-file', '9000', file, String(RATE)]);
      const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { env: { TRAVERSE_LOG_LEVEL: 'debug' } });
      await forwardPath(fwd, 'relay', 1000);
      const t0 = performance.now();
      const fetch = lab.spawn('client', process.execPath, [TOOL, 'fetch', '127.0.0.1', '19000']);
      const fl = collect(fetch);
      // On the relay lane first: it follows a TCP lane attempt to the vouched IP, which the block
      // makes time out (3 s).
      for (let i = 0; i < 150 && !/stream moved to a relay lane/.test(fwd.lines.err); i++) await sleep(100);
      await sleep(1000);
      // Stamped before the rules go (both protocols: they share one table): on a loaded machine the
      // path can turn direct while the nft command is still returning.
      const unblocked = performance.now();
      await unblockUdp(lab, 'rclient');
      const direct = await forwardPath(fwd, 'direct', 15_000, unblocked);
      await exited(fetch);
      const done = await lineMatching(fl, /^\{/, 1000);
      const r = JSON.parse(done.line) as { bytes: number; sha256?: string; how: string };
      const moved = fwd.lines.err.split('\n').filter((l) => l.includes('stream moved to a new carrier'));
      t.diagnostic(
        `UDP allowed at ${Math.round(unblocked - t0)} ms; forward said direct at ${Math.round(direct.t - t0)} ms; ` +
          `transfer done at ${Math.round(done.t - t0)} ms (${r.bytes} bytes, ${r.how}); carrier moves: ${moved.length}`,
      );
      assert.equal(r.how, 'end', fl.err);
      assert.equal(r.bytes, SIZE);
      assert.equal(r.sha256, sha256);
      assert.ok(direct.t < done.t, 'the path changed before the transfer ended');
      assert.ok(moved.some((l) => l.includes('"kind":"direct"')), `the stream's carrier moved to the direct path:\n${moved.join('\n')}`);
      assert.match(fwd.lines.err, /stream moved to a relay lane/, 'the stream ran on a relay lane before it went direct');
    } finally {
      await lab.teardown();
    }
  });

  interface Upload {
    readonly sink: { lines: Lines };
    readonly fwd: Forward;
    readonly send: LabProcess;
    readonly sent: Lines;
    readonly t0: number;
  }

  /** easy/easy, a forward on the direct path, and the file going up through it at RATE. */
  async function startUpload(lab: Lab): Promise<Upload> {
    const pair = await streamPair(lab);
    const sink = await toolServer(lab, 'agent', ['sink-hash', '9000']);
    const fwd = await startForward(lab, pair, ['19000:127.0.0.1:9000'], { env: { TRAVERSE_LOG_LEVEL: 'debug' } });
    await forwardPath(fwd, 'direct', 10_000);
    const t0 = performance.now();
    const send = lab.spawn('client', process.execPath, [TOOL, 'send-file', '127.0.0.1', '19000', file, String(RATE)]);
    return { sink, fwd, send, sent: collect(send), t0 };
  }

  /** Waits until the forward's stream runs on a TCP lane. */
  async function onATcpLane(fwd: Forward): Promise<void> {
    for (let i = 0; !fwd.lines.err.includes('stream moved to a TCP lane'); i++) {
      if (i > 200) throw new Error(`the stream did not move onto a TCP lane:\n${fwd.lines.err.slice(-3000)}`);
      await sleep(50);
    }
  }

  /** Asserts the sender finished within `ms` and the sink got the whole file intact; says when. */
  async function uploadArrived(u: Upload, ms: number): Promise<string> {
    const code = await within(exited(u.send), ms);
    for (let i = 0; i < 100 && !u.sink.lines.out.some((l) => l.line.startsWith('{')); i++) await sleep(100);
    const got = u.sink.lines.out.find((l) => l.line.startsWith('{'));
    const when = `sender ${code === 'timeout' ? `still running after ${ms / 1000} s` : `done at ${Math.round(performance.now() - u.t0)} ms`}; sink: ${got?.line ?? 'nothing'}`;
    assert.notEqual(code, 'timeout', `the transfer did not finish (${when}):\n${u.sent.out.map((l) => l.line).join('\n')}\n${u.fwd.lines.err.slice(-3000)}`);
    assert.ok(got, `the sink saw the end of the stream (${when})`);
    const r = JSON.parse(got.line) as { bytes: number; sha256: string };
    assert.equal(r.bytes, SIZE);
    assert.equal(r.sha256, sha256);
    return when;
  }

  test('the TCP lane dies silently mid-transfer, the UDP path lives (upload, 100 MB): back on UDX, intact', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const upload = await startUpload(lab);
      const { fwd, t0 } = upload;
      await onATcpLane(fwd);
      await sleep(2000);
      // Only TCP: the UDP path stays up, so nothing but the lane's silence says it is gone.
      await blockTcp(lab, 'rclient', lab.router('ragent').address);
      const cut = performance.now();
      const arrived = await uploadArrived(upload, 60_000);
      const back = fwd.lines.err.split('\n').filter((l) => l.includes('stream moved to a new carrier'));
      t.diagnostic(`lane cut at ${Math.round(cut - t0)} ms; ${arrived}; moves back to UDX: ${back.length}`);
      assert.match(fwd.lines.err, /the TCP lane was silent/);
      assert.ok(back.some((l) => l.includes('"kind":"direct"')), `the stream went back to a UDX carrier on the direct path:\n${back.join('\n')}`);
    } finally {
      await lab.teardown();
    }
  });

  test('direct -> relay when the direct path dies mid-transfer (upload, 100 MB): intact over a relay lane', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const upload = await startUpload(lab);
      const { fwd, t0 } = upload;
      await sleep(3000);
      // UDP and TCP: the TCP lane dies with the UDP path.
      const agentWan = lab.router('ragent').address;
      await blockUdp(lab, 'rclient', agentWan);
      await blockTcp(lab, 'rclient', agentWan);
      const cut = performance.now();
      const relay = await forwardPath(fwd, 'relay', 15_000, cut);
      const arrived = await uploadArrived(upload, 45_000);
      const moved = fwd.lines.err.split('\n').filter((l) => l.includes('stream moved to a new carrier'));
      t.diagnostic(`direct path cut at ${Math.round(cut - t0)} ms; forward said relay at ${Math.round(relay.t - t0)} ms; ${arrived}; carrier moves: ${moved.length}`);
      assert.ok(moved.some((l) => l.includes('"kind":"relay"')), `the stream's carrier moved to the relay:\n${moved.join('\n')}`);
      assert.match(fwd.lines.err.slice(fwd.lines.err.indexOf('the TCP lane')), /stream moved to a relay lane/, 'after the TCP lane, the stream ran on a relay lane');
    } finally {
      await lab.teardown();
    }
  });

  test('only UDP dies under a working TCP lane (upload, 100 MB): the stream stays on the lane, intact', async (t) => {
    const lab = await createLab(pairOfNats('easy', 'easy'));
    try {
      const upload = await startUpload(lab);
      const { fwd, t0 } = upload;
      await onATcpLane(fwd);
      await sleep(1000);
      await blockUdp(lab, 'rclient', lab.router('ragent').address);
      const cut = performance.now();
      const relay = await forwardPath(fwd, 'relay', 15_000, cut);
      const arrived = await uploadArrived(upload, 45_000);
      const after = fwd.lines.err.slice(fwd.lines.err.indexOf('stream moved to a TCP lane'));
      t.diagnostic(`UDP cut at ${Math.round(cut - t0)} ms; forward said relay at ${Math.round(relay.t - t0)} ms; ${arrived}`);
      assert.doesNotMatch(after, /the TCP lane (was silent|closed)/, 'the lane lived on');
      assert.doesNotMatch(after, /stream moved to a new carrier/, 'the stream never left the lane');
    } finally {
      await lab.teardown();
    }
  });
});

// The client's transactions driven by a fake clock and a fake socket: no sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StunClient,
  StunErrorResponse,
  StunTimeoutError,
  type Clock,
  type DatagramSender,
} from '../../src/stun/client.js';
import { decodeMessage, encodeMessage, METHOD_BINDING, type StunMessage } from '../../src/stun/index.js';

class FakeClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  /** Advances time, firing timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

class FakeSocket implements DatagramSender {
  sent: { msg: Buffer; port: number; address: string; at: number }[] = [];
  constructor(private readonly clock: FakeClock) {}
  send(msg: Uint8Array, port: number, address: string): void {
    this.sent.push({ msg: Buffer.from(msg), port, address, at: this.clock.now() });
  }
}

function answer(req: StunMessage, cls: 'success' | 'error' = 'success'): Buffer {
  return encodeMessage({
    method: METHOD_BINDING,
    cls,
    transactionId: req.transactionId,
    attributes:
      cls === 'success'
        ? [
            { type: 'XOR-MAPPED-ADDRESS', family: 4, address: '203.0.113.5', port: 41641 },
            { type: 'OTHER-ADDRESS', family: 4, address: '203.0.113.11', port: 3479 },
            { type: 'RESPONSE-ORIGIN', family: 4, address: '203.0.113.10', port: 3478 },
          ]
        : [{ type: 'ERROR-CODE', code: 420, reason: 'Unknown Attribute' }],
  });
}

const server = { address: '203.0.113.10', port: 3478 };

test('retransmits on the RFC schedule and resolves on a late answer, with the addresses read out', async () => {
  const clock = new FakeClock();
  const sock = new FakeSocket(clock);
  const client = new StunClient(sock, { clock });
  const p = client.binding(server);
  clock.advance(1600);
  assert.deepEqual(sock.sent.map((s) => s.at), [0, 500, 1500]);
  assert.ok(sock.sent.every((s) => s.msg.equals(sock.sent[0]!.msg)), 'retransmissions are the same bytes');
  const req = decodeMessage(sock.sent[0]!.msg);
  assert.equal(client.handleDatagram(answer(req), { address: '203.0.113.10', port: 3478 }), true);
  const r = await p;
  assert.deepEqual(r.mapped, { family: 4, address: '203.0.113.5', port: 41641 });
  assert.deepEqual(r.otherAddress, { family: 4, address: '203.0.113.11', port: 3479 });
  assert.deepEqual(r.responseOrigin, { family: 4, address: '203.0.113.10', port: 3478 });
  assert.equal(r.transmissions, 3);
  assert.equal(client.inFlight, 0);
  clock.advance(100_000);
  assert.equal(sock.sent.length, 3, 'no retransmission after the answer');
});

test('gives up after the schedule, or the caller-given time budget', async () => {
  const clock = new FakeClock();
  const sock = new FakeSocket(clock);
  const client = new StunClient(sock, { clock });
  const full = client.binding(server);
  const short = client.binding({ address: '203.0.113.20', port: 3478 }, { timeoutMs: 1200 });
  clock.advance(1200);
  await assert.rejects(short, StunTimeoutError);
  clock.advance(39_500 - 1200);
  await assert.rejects(full, (e: Error) => e instanceof StunTimeoutError && /after 7 requests in 39500 ms/.test(e.message));
});

test('demultiplexes concurrent transactions by transaction id; ignores strangers', async () => {
  const clock = new FakeClock();
  const sock = new FakeSocket(clock);
  const client = new StunClient(sock, { clock });
  const a = client.binding(server);
  const b = client.binding({ address: '203.0.113.11', port: 3479 });
  const [ra, rb] = [decodeMessage(sock.sent[0]!.msg), decodeMessage(sock.sent[1]!.msg)];
  const stranger = encodeMessage({ method: METHOD_BINDING, cls: 'success', transactionId: Buffer.alloc(12, 7), attributes: [] });
  assert.equal(client.handleDatagram(stranger, server), false);
  assert.equal(client.handleDatagram(Buffer.from('not stun at all, just bytes'), server), false);
  assert.equal(client.handleDatagram(answer(rb), server), true);
  assert.equal(client.handleDatagram(answer(ra), server), true);
  assert.equal((await a).transmissions, 1);
  assert.equal((await b).transmissions, 1);
});

test('an error response rejects with its code; RTT samples come only from single transmissions', async () => {
  const clock = new FakeClock();
  const sock = new FakeSocket(clock);
  const client = new StunClient(sock, { clock });
  const p = client.binding(server);
  const req = decodeMessage(sock.sent[0]!.msg);
  client.handleDatagram(answer(req, 'error'), server);
  await assert.rejects(p, (e: Error) => e instanceof StunErrorResponse && e.code === 420);

  const q = client.binding(server);
  clock.advance(40);
  client.handleDatagram(answer(decodeMessage(sock.sent[1]!.msg)), server);
  assert.equal((await q).rttMs, 40);
  assert.equal(client.rtoFor(server), 120, 'RTO learned from the 40 ms sample');

  const r = client.binding(server);
  clock.advance(130); // one retransmission at 120 ms
  client.handleDatagram(answer(decodeMessage(sock.sent[2]!.msg)), server);
  assert.equal((await r).transmissions, 2);
  assert.equal(client.rtoFor(server), 120, "Karn's rule: a retransmitted transaction gives no sample");
});

test('close() fails what is in flight; abort signals end one transaction', async () => {
  const clock = new FakeClock();
  const client = new StunClient(new FakeSocket(clock), { clock });
  const ac = new AbortController();
  const a = client.binding(server, { signal: ac.signal });
  const b = client.binding(server);
  ac.abort();
  await assert.rejects(a, StunTimeoutError);
  client.close();
  await assert.rejects(b, /client closed/);
});

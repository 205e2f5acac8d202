// Property: whatever an allowed client does (publishes random endpoints and seen-from IPs for
// several keys of its identity, sends call-me-maybe lists, birthdays naming random IPs, pings
// from spoofed sources), the agent's MagicSock sends nothing to an address that was never
// vouched for, and no more than the stated budget. A real MagicSock on 127.0.0.1 with an injected
// clock and mocked timers; its socket's sends are recorded, not sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NodeKey } from '../../src/identity/node-key.js';
import { DiscoSealer, type DiscoMessage } from '../../src/disco/index.js';
import { MagicSock } from '../../src/magicsock/magicsock.js';
import { DEFAULT_PROBE_LIMITS as L } from '../../src/magicsock/probe-budget.js';
import { splitEndpoint } from '../../src/net/endpoint.js';

const IPS = ['127.0.0.1', '203.0.113.7', '192.0.2.66', '198.51.100.3', '10.1.2.3', '0.0.0.0', '224.0.0.1', '255.255.255.255'];
const ip = fc.oneof(fc.constantFrom(...IPS), fc.ipV4());
const endpoint = fc.tuple(fc.constantFrom(...IPS), fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`);
const keyIdx = fc.integer({ min: 0, max: 2 });

type Cmd =
  | { readonly kind: 'upsert'; readonly key: number; readonly endpoints: string[]; readonly seenFrom: string | null }
  | { readonly kind: 'remove'; readonly key: number }
  | { readonly kind: 'call-me-maybe'; readonly key: number; readonly endpoints: string[] }
  | { readonly kind: 'birthday'; readonly key: number; readonly ip: string }
  | { readonly kind: 'ping'; readonly key: number; readonly from: string | null }
  | { readonly kind: 'advance'; readonly ms: number }
  /** A call-me-maybe every 25 ms, `times` times (each would restart the punching burst). */
  | { readonly kind: 'flood'; readonly key: number; readonly endpoints: string[]; readonly times: number }
  /** Pings from `times` spoofed source ports of one IP, each would draw a pong and a ping back. */
  | { readonly kind: 'scan'; readonly key: number; readonly ip: string; readonly firstPort: number; readonly times: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), key: keyIdx, endpoints: fc.array(endpoint, { maxLength: 32 }), seenFrom: fc.option(ip, { nil: null }) }),
  fc.record({ kind: fc.constant('remove' as const), key: keyIdx }),
  fc.record({ kind: fc.constant('call-me-maybe' as const), key: keyIdx, endpoints: fc.array(endpoint, { maxLength: 32 }) }),
  fc.record({ kind: fc.constant('birthday' as const), key: keyIdx, ip }),
  fc.record({ kind: fc.constant('ping' as const), key: keyIdx, from: fc.option(endpoint, { nil: null }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 8000 }) }),
  fc.record({ kind: fc.constant('flood' as const), key: keyIdx, endpoints: fc.array(endpoint, { minLength: 8, maxLength: 32 }), times: fc.integer({ min: 1, max: 200 }) }),
  fc.record({
    kind: fc.constant('scan' as const),
    key: keyIdx,
    ip: fc.constantFrom(...IPS),
    firstPort: fc.integer({ min: 1, max: 60000 }),
    times: fc.integer({ min: 1, max: 300 }),
  }),
);

interface Sent {
  readonly t: number;
  readonly dest: string;
  readonly ip: string;
}

test('an allowed client cannot aim the agent at an unvouched address or past its budget', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const keys = [NodeKey.generate(), NodeKey.generate(), NodeKey.generate()];
  const sealers = keys.map((k) => new DiscoSealer(k));
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 60 }), async (cmds) => {
      let clock = 1_000_000;
      const agentKey = NodeKey.generate();
      const agent = await MagicSock.open({
        key: agentKey,
        relay: { send: () => true },
        bindAddress: '127.0.0.1',
        localAddresses: () => ['127.0.0.1'],
        now: () => clock,
        tickMs: 25,
      });
      const sent: Sent[] = [];
      (agent.socket as { trySend: (b: Uint8Array, port: number, host?: string) => void }).trySend = (_b, port, host) => {
        sent.push({ t: clock, dest: `${host}:${port}`, ip: host ?? '' });
      };
      // Everything ever vouched for the identity: published endpoints, seen-from IPs, and sources
      // an authentic packet came from.
      const vouchedEndpoints = new Set<string>();
      const vouchedIps = new Set<string>();
      const live = new Set<number>();
      const seal = (k: number, m: DiscoMessage): Buffer => sealers[k]!.seal(agentKey.publicHex, m);
      const advance = (ms: number): void => {
        for (let left = ms; left > 0; left -= 25) {
          const step = Math.min(25, left);
          clock += step;
          t.mock.timers.tick(step);
        }
      };
      try {
        for (const c of cmds) {
          switch (c.kind) {
            case 'upsert':
              for (const e of c.endpoints) vouchedEndpoints.add(e);
              if (c.seenFrom) vouchedIps.add(c.seenFrom);
              agent.upsertPeer(keys[c.key]!.publicHex, c.endpoints, { group: 'client:mallory', vouchedIp: c.seenFrom });
              live.add(c.key);
              break;
            case 'remove':
              agent.removePeer(keys[c.key]!.publicHex);
              live.delete(c.key);
              break;
            case 'call-me-maybe': {
              const endpoints = c.endpoints.map((e) => splitEndpoint(e)!);
              agent.handleRelay(keys[c.key]!.publicHex, seal(c.key, { type: 'call-me-maybe', endpoints }));
              break;
            }
            case 'birthday':
              agent.handleRelay(keys[c.key]!.publicHex, seal(c.key, { type: 'birthday', ip: c.ip }));
              break;
            case 'ping': {
              const m = seal(c.key, { type: 'ping', txid: new Uint8Array(12).fill(c.key + 1) });
              if (c.from === null) agent.handleRelay(keys[c.key]!.publicHex, m);
              else {
                const from = splitEndpoint(c.from)!;
                if (live.has(c.key)) vouchedEndpoints.add(c.from); // authentic, from there
                agent.socket.emit('message', m, { host: from.address, port: from.port, family: 4 });
              }
              break;
            }
            case 'advance':
              advance(c.ms);
              break;
            case 'flood': {
              const endpoints = c.endpoints.map((e) => splitEndpoint(e)!);
              for (let i = 0; i < c.times; i++) {
                agent.handleRelay(keys[c.key]!.publicHex, seal(c.key, { type: 'call-me-maybe', endpoints }));
                advance(25);
              }
              break;
            }
            case 'scan':
              for (let i = 0; i < c.times; i++) {
                const port = c.firstPort + i;
                if (live.has(c.key)) vouchedEndpoints.add(`${c.ip}:${port}`);
                const m = seal(c.key, { type: 'ping', txid: new Uint8Array(12).fill(i & 0xff) });
                agent.socket.emit('message', m, { host: c.ip, port, family: 4 });
              }
              break;
          }
        }
        advance(35_000); // let bursts, rounds and any port prediction run out
      } finally {
        agent.close();
      }

      // Nowhere unvouched, nowhere unsendable.
      for (const s of sent) {
        assert.ok(vouchedEndpoints.has(s.dest) || vouchedIps.has(s.ip), `sent to ${s.dest}, never vouched`);
        assert.ok(!['0.0.0.0', '224.0.0.1', '255.255.255.255'].includes(s.ip), `sent to ${s.dest}`);
      }
      // Packets: in any span of T ms, at most the probe bucket's burst + rate * T, plus 2560 per
      // port-prediction attempt that can overlap the span (attempts are 60 s apart, last 30 s).
      for (let i = 0; i < sent.length; i++) {
        for (let j = i; j < sent.length; j++) {
          const span = sent[j]!.t - sent[i]!.t;
          const attempts = Math.floor((span + L.predictionLifetimeMs) / L.predictionIntervalMs) + 1;
          const bound = L.groupPackets.burst + (L.groupPackets.perSec * span) / 1000 + attempts * L.predictionPackets;
          assert.ok(j - i + 1 <= bound, `${j - i + 1} packets in ${span} ms (bound ${bound})`);
        }
      }
      // Destinations off the vouched IPs (port prediction aims only there): at most groupDestinations in any 60 s.
      const off = sent.filter((s) => !vouchedIps.has(s.ip));
      const firstSeen = new Map<string, number>();
      for (const s of off) if (!firstSeen.has(s.dest)) firstSeen.set(s.dest, s.t);
      const starts = [...firstSeen.values()].sort((a, b) => a - b);
      for (let i = 0; i < starts.length; i++) {
        let n = 0;
        for (let j = i; j < starts.length && starts[j]! - starts[i]! < L.destinationWindowMs; j++) n++;
        assert.ok(n <= L.groupDestinations, `${n} new destinations within 60 s`);
      }
      // Without a vouched IP nothing but published or observed endpoints could be reached, and
      // port prediction sends nothing: at most the probe budget overall.
      if (vouchedIps.size === 0) {
        const span = sent.length > 0 ? sent.at(-1)!.t - sent[0]!.t : 0;
        assert.ok(sent.length <= L.groupPackets.burst + (L.groupPackets.perSec * span) / 1000);
      }
    }),
    { numRuns: 40 },
  );
});

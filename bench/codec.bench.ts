// STUN codec throughput against @msimerson/stun, measured in the same process: decode and encode
// of RFC 5769's sample IPv4 response (section 2.2), several alternating rounds, median ops/s.
//
//   npm run bench:codec          (BENCH_ROUNDS, BENCH_ROUND_MS to change the defaults of 7 x 300 ms)
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  checkFingerprint,
  decodeMessage,
  encodeMessage,
  METHOD_BINDING,
  readAttributes,
  shortTermKey,
  type Attribute,
} from '../src/stun/index.js';
import { SAMPLE_IPV4_RESPONSE, SHORT_TERM_PASSWORD } from '../test/stun/vectors.js';

interface MsimersonMessage {
  addXorAddress(address: string, port: number): unknown;
  addSoftware(software: string): unknown;
  addMessageIntegrity(key: string): boolean;
  addFingerprint(): boolean;
  toBuffer(): Buffer;
}
interface MsimersonResponse {
  getXorAddress(): { address: string; port: number; family: string } | undefined;
  getSoftware(): string | undefined;
}
interface Msimerson {
  decode(b: Buffer): MsimersonResponse;
  createMessage(type: number, transaction: Buffer): MsimersonMessage;
  validateFingerprint(m: MsimersonResponse): boolean;
  constants: Record<string, number>;
}

const require = createRequire(import.meta.url);
const msimerson = require('@msimerson/stun') as Msimerson;
const msimersonVersion = (require('@msimerson/stun/package.json') as { version: string }).version;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 300);

const packet = SAMPLE_IPV4_RESPONSE;
const tid = Buffer.from(packet.subarray(8, 20));
const key = shortTermKey(SHORT_TERM_PASSWORD);
const BINDING_RESPONSE = msimerson.constants.STUN_BINDING_RESPONSE!;
const attributes: Attribute[] = [
  { type: 'XOR-MAPPED-ADDRESS', family: 4, address: '192.0.2.1', port: 32853 },
  { type: 'SOFTWARE', value: 'test vector' },
];

let sink = 0; // keeps results alive so no work is optimised away

// --- the work, one function per library and case -------------------------------------------

function oursDecode(): void {
  const m = decodeMessage(packet);
  const attrs = readAttributes(m);
  if (checkFingerprint(m) !== 'ok') throw new Error('fingerprint');
  sink += attrs.length;
}

function oursDecodeNoFingerprint(): void {
  sink += readAttributes(decodeMessage(packet)).length;
}

function theirsDecode(): void {
  const r = msimerson.decode(packet);
  const a = r.getXorAddress();
  const s = r.getSoftware();
  // msimerson checks the fingerprint over its own re-encoding, not the bytes received; RFC 5769
  // pads with 0x20 where it pads with 0, so this is false here (the cost is the same).
  const ok = msimerson.validateFingerprint(r);
  sink += (a?.port ?? 0) + (s?.length ?? 0) + (ok ? 1 : 0);
}

function theirsDecodeNoFingerprint(): void {
  const r = msimerson.decode(packet);
  sink += (r.getXorAddress()?.port ?? 0) + (r.getSoftware()?.length ?? 0);
}

function oursEncode(): void {
  sink += encodeMessage({ method: METHOD_BINDING, cls: 'success', transactionId: tid, attributes }, { fingerprint: true })
    .length;
}

function oursEncodeIntegrity(): void {
  sink += encodeMessage(
    { method: METHOD_BINDING, cls: 'success', transactionId: tid, attributes },
    { integrityKey: key, fingerprint: true },
  ).length;
}

function theirsEncode(): void {
  const m = msimerson.createMessage(BINDING_RESPONSE, tid);
  m.addXorAddress('192.0.2.1', 32853);
  m.addSoftware('test vector');
  m.addFingerprint();
  sink += m.toBuffer().length;
}

function theirsEncodeIntegrity(): void {
  const m = msimerson.createMessage(BINDING_RESPONSE, tid);
  m.addXorAddress('192.0.2.1', 32853);
  m.addSoftware('test vector');
  m.addMessageIntegrity(SHORT_TERM_PASSWORD);
  m.addFingerprint();
  sink += m.toBuffer().length;
}

// --- both libraries produce and accept the same messages -------------------------------------

function sanity(): void {
  const r = msimerson.decode(packet);
  assert.deepEqual(r.getXorAddress(), { address: '192.0.2.1', port: 32853, family: 'IPv4' });
  assert.equal(r.getSoftware(), 'test vector');
  const m = decodeMessage(packet);
  assert.deepEqual(readAttributes(m).slice(0, 2), [
    { type: 'SOFTWARE', value: 'test vector' },
    { type: 'XOR-MAPPED-ADDRESS', family: 4, address: '192.0.2.1', port: 32853 },
  ]);
  assert.equal(checkFingerprint(m), 'ok');
  for (const withKey of [false, true]) {
    const spec = { method: METHOD_BINDING, cls: 'success' as const, transactionId: tid, attributes };
    const ours = encodeMessage(spec, withKey ? { integrityKey: key, fingerprint: true } : { fingerprint: true });
    const t = msimerson.createMessage(BINDING_RESPONSE, tid);
    t.addXorAddress('192.0.2.1', 32853);
    t.addSoftware('test vector');
    if (withKey) t.addMessageIntegrity(SHORT_TERM_PASSWORD);
    t.addFingerprint();
    assert.equal(ours.toString('hex'), t.toBuffer().toString('hex'), 'the two encoders disagree');
  }
}

// --- measurement ------------------------------------------------------------------------------

/** Runs fn in batches for about `ms` and returns calls per second. */
function measure(fn: () => void, ms: number): number {
  let batch = 64;
  let calls = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < batch; i++) fn();
    calls += batch;
    elapsed = process.hrtime.bigint() - start;
    if (batch < 1 << 16) batch *= 2;
  }
  return calls / (Number(elapsed) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Case {
  readonly name: string;
  readonly ours: () => void;
  readonly theirs: () => void;
}

const cases: Case[] = [
  { name: 'decode + attributes + fingerprint check', ours: oursDecode, theirs: theirsDecode },
  { name: 'decode + attributes (no fingerprint check)', ours: oursDecodeNoFingerprint, theirs: theirsDecodeNoFingerprint },
  { name: 'encode XOR-MAPPED-ADDRESS + SOFTWARE + FINGERPRINT', ours: oursEncode, theirs: theirsEncode },
  { name: 'encode ... + MESSAGE-INTEGRITY + FINGERPRINT', ours: oursEncodeIntegrity, theirs: theirsEncodeIntegrity },
];

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US').padStart(11);
}

function main(): void {
  sanity();
  console.log(
    `STUN codec, RFC 5769 section 2.2 response (${packet.length} bytes): traverse vs @msimerson/stun ${msimersonVersion}`,
  );
  console.log(`node ${process.version}, ${ROUNDS} alternating rounds of ${ROUND_MS} ms per library, median ops/s\n`);
  // warm-up: let both reach optimised code before anything is recorded
  for (const c of cases) {
    measure(c.ours, 150);
    measure(c.theirs, 150);
  }
  console.log(`${'case'.padEnd(52)} ${'traverse'.padStart(11)} ${'msimerson'.padStart(11)}   ratio`);
  for (const c of cases) {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // alternate which goes first, so neither always runs on a warmer or cooler machine
      if (r % 2 === 0) {
        ours.push(measure(c.ours, ROUND_MS));
        theirs.push(measure(c.theirs, ROUND_MS));
      } else {
        theirs.push(measure(c.theirs, ROUND_MS));
        ours.push(measure(c.ours, ROUND_MS));
      }
    }
    const a = median(ours);
    const b = median(theirs);
    console.log(`${c.name.padEnd(52)} ${fmt(a)} ${fmt(b)}   ${(a / b).toFixed(1)}x`);
  }
  if (sink === 0) console.log('');
}

main();

// Disco: the peer-to-peer messages that find and keep a direct path. Plaintext layout (sealed by
// seal.ts before it leaves the node):
//
//   type (1) | version (1) | body
//
//   ping           1  txid (12)                      "are you there, at this address?"
//   pong           2  txid (12) | address            "yes; your ping came from <address>"
//   call-me-maybe  3  count (1) | address * count    "here are my endpoints: ping me now"
//   birthday       9  address (port 0)               "my NAT is hard: I opened many ports
//                                                     towards you on this IP; probe it"
//   opaque        12  payload (1..MAX_OPAQUE_BYTES)  "for the layer above (stream control);
//                                                     disco seals it and never reads it"
//
//   address = family (1: 4 or 6) | port (2) | ip (4 or 16)
//
// Types 4-8, 10 and 11 are retired: they were the stream-control messages before those moved
// into the tunnel's own codec (src/tunnel/control.ts), carried here as opaque payloads.
//
// The pong's address is what the answering side saw as the ping's source: for the pinging side,
// an address a peer observed it at, which becomes one of its candidate endpoints.
import { formatIPv4, formatIPv6, writeIPv4, writeIPv6 } from '../net/ip.js';

export const DISCO_VERSION = 1;
export const MAX_CALL_ME_MAYBE_ENDPOINTS = 32;
export const TXID_BYTES = 12;
/** Bounds an opaque payload: with the header and the seal (66 bytes) it stays under MAX_DISCO_PACKET. */
export const MAX_OPAQUE_BYTES = 768;

export const DiscoType = {
  ping: 1,
  pong: 2,
  callMeMaybe: 3,
  birthday: 9,
  opaque: 12,
} as const;

const HEADER_BYTES = 2;

export interface DiscoAddress {
  readonly address: string;
  readonly port: number;
}

/** "Are you there, at this address?" */
export interface Ping {
  readonly type: 'ping';
  readonly txid: Uint8Array;
}

/** "Yes; your ping came from `src`." */
export interface Pong {
  readonly type: 'pong';
  readonly txid: Uint8Array;
  readonly src: DiscoAddress;
}

/** "Here are my endpoints: ping me now." */
export interface CallMeMaybe {
  readonly type: 'call-me-maybe';
  readonly endpoints: readonly DiscoAddress[];
}

/** "My NAT is hard: I opened many ports towards you on this IP; probe it." */
export interface Birthday {
  readonly type: 'birthday';
  readonly ip: string;
}

/** A payload of the layer above, sealed like any disco message and never read by disco. */
export interface Opaque {
  readonly type: 'opaque';
  readonly payload: Uint8Array;
}

export type DiscoMessage = Ping | Pong | CallMeMaybe | Birthday | Opaque;

// ---- addresses ----

function addressSize(a: DiscoAddress): number {
  return a.address.includes(':') ? 19 : 7;
}

function writeAddress(b: Buffer, o: number, a: DiscoAddress): number {
  const v6 = a.address.includes(':');
  b[o] = v6 ? 6 : 4;
  b.writeUInt16BE(a.port, o + 1);
  const ok = v6 ? writeIPv6(a.address, b, o + 3) : writeIPv4(a.address, b, o + 3);
  if (!ok) throw new Error(`disco: "${a.address}" is not an IP address`);
  return o + (v6 ? 19 : 7);
}

function readAddress(b: Uint8Array, o: number): { addr: DiscoAddress; next: number } | null {
  if (o + 3 > b.length) return null;
  const fam = b[o];
  const port = (b[o + 1]! << 8) | b[o + 2]!;
  if (fam === 4 && o + 7 <= b.length) return { addr: { address: formatIPv4(b, o + 3), port }, next: o + 7 };
  if (fam === 6 && o + 19 <= b.length) return { addr: { address: formatIPv6(b, o + 3), port }, next: o + 19 };
  return null;
}

/** A plaintext of `bodyBytes` after the header for message `type`. */
function withHeader(type: number, bodyBytes: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + bodyBytes);
  b[0] = type;
  b[1] = DISCO_VERSION;
  return b;
}

// ---- one marshal and one parse per message; a parse gets the body after the header ----

function marshalPing(m: Ping): Buffer {
  const b = withHeader(DiscoType.ping, TXID_BYTES);
  Buffer.from(m.txid).copy(b, HEADER_BYTES, 0, TXID_BYTES);
  return b;
}

function parsePing(body: Uint8Array): Ping | null {
  return body.length === TXID_BYTES ? { type: 'ping', txid: new Uint8Array(body) } : null;
}

function marshalPong(m: Pong): Buffer {
  const b = withHeader(DiscoType.pong, TXID_BYTES + addressSize(m.src));
  Buffer.from(m.txid).copy(b, HEADER_BYTES, 0, TXID_BYTES);
  writeAddress(b, HEADER_BYTES + TXID_BYTES, m.src);
  return b;
}

function parsePong(body: Uint8Array): Pong | null {
  if (body.length < TXID_BYTES) return null;
  const r = readAddress(body, TXID_BYTES);
  if (!r || r.next !== body.length) return null;
  return { type: 'pong', txid: new Uint8Array(body.subarray(0, TXID_BYTES)), src: r.addr };
}

function marshalCallMeMaybe(m: CallMeMaybe): Buffer {
  if (m.endpoints.length > MAX_CALL_ME_MAYBE_ENDPOINTS) throw new Error(`disco: at most ${MAX_CALL_ME_MAYBE_ENDPOINTS} endpoints`);
  const b = withHeader(DiscoType.callMeMaybe, 1 + m.endpoints.reduce((s, e) => s + addressSize(e), 0));
  b[HEADER_BYTES] = m.endpoints.length;
  let o = HEADER_BYTES + 1;
  for (const e of m.endpoints) o = writeAddress(b, o, e);
  return b;
}

function parseCallMeMaybe(body: Uint8Array): CallMeMaybe | null {
  const n = body[0];
  if (n === undefined || n > MAX_CALL_ME_MAYBE_ENDPOINTS) return null;
  const endpoints: DiscoAddress[] = [];
  let o = 1;
  for (let i = 0; i < n; i++) {
    const r = readAddress(body, o);
    if (!r) return null;
    endpoints.push(r.addr);
    o = r.next;
  }
  return o === body.length ? { type: 'call-me-maybe', endpoints } : null;
}

function marshalBirthday(m: Birthday): Buffer {
  const addr = { address: m.ip, port: 0 };
  const b = withHeader(DiscoType.birthday, addressSize(addr));
  writeAddress(b, HEADER_BYTES, addr);
  return b;
}

function parseBirthday(body: Uint8Array): Birthday | null {
  const r = readAddress(body, 0);
  return r && r.next === body.length ? { type: 'birthday', ip: r.addr.address } : null;
}

function marshalOpaque(m: Opaque): Buffer {
  if (m.payload.length === 0 || m.payload.length > MAX_OPAQUE_BYTES) throw new Error(`disco: an opaque payload is 1 to ${MAX_OPAQUE_BYTES} bytes`);
  const b = withHeader(DiscoType.opaque, m.payload.length);
  b.set(m.payload, HEADER_BYTES);
  return b;
}

function parseOpaque(body: Uint8Array): Opaque | null {
  return body.length > 0 && body.length <= MAX_OPAQUE_BYTES ? { type: 'opaque', payload: new Uint8Array(body) } : null;
}

// ----

/** The plaintext of a disco message; throws for one that cannot be sent (a bad address, too long). */
export function encodeDisco(m: DiscoMessage): Buffer {
  switch (m.type) {
    case 'ping':
      return marshalPing(m);
    case 'pong':
      return marshalPong(m);
    case 'call-me-maybe':
      return marshalCallMeMaybe(m);
    case 'birthday':
      return marshalBirthday(m);
    case 'opaque':
      return marshalOpaque(m);
  }
}

/** Parses a plaintext disco message; null for anything malformed (a silent drop). */
export function decodeDisco(b: Uint8Array): DiscoMessage | null {
  if (b.length < HEADER_BYTES || b[1] !== DISCO_VERSION) return null;
  const body = b.subarray(HEADER_BYTES);
  switch (b[0]) {
    case DiscoType.ping:
      return parsePing(body);
    case DiscoType.pong:
      return parsePong(body);
    case DiscoType.callMeMaybe:
      return parseCallMeMaybe(body);
    case DiscoType.birthday:
      return parseBirthday(body);
    case DiscoType.opaque:
      return parseOpaque(body);
    default:
      return null;
  }
}

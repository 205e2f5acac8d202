// Disco: the peer-to-peer control messages that find and keep a direct path. Plaintext layout
// (sealed by seal.ts before it leaves the node):
//
//   type (1) | version (1) | body
//
//   ping           1  txid (12)                      "are you there, at this address?"
//   pong           2  txid (12) | address            "yes; your ping came from <address>"
//   call-me-maybe  3  count (1) | address * count    "here are my endpoints: ping me now"
//   birthday       9  address (port 0)                 "my NAT is hard: I opened many ports
//                                                      towards you on this IP; probe it"
//   stream-open    4  sid (8) | carrier (4) | handshake  "open a stream; here is Noise IK message 1"
//   stream-accept  5  sid (8) | carrier (4) | handshake  "accepted; Noise IK message 2"
//   stream-refuse  6  sid (8) | reason (UTF-8)           "no, because ..."
//   carrier        7  sid (8) | carrier (4)              "carry stream sid on my new UDX stream"
//   carrier-ack    8  sid (8) | carrier (4) | yours (4)  "here is mine for your carrier <yours>"
//   tcp-lane      10  sid (8) | port (2) | token (16)    "carry sid over TCP too: I connect from
//                                                        <port>; send me <token> to prove it is you"
//   tcp-lane-ack  11  sid (8) | port (2) | listen (2)     "and I from <port>; I also listen on
//                     | token (16)                        <listen>; send me <token>"
//
//   address = family (1: 4 or 6) | port (2) | ip (4 or 16)
//
// The pong's address is what the answering side saw as the ping's source: for the pinging side,
// an address a peer observed it at, which becomes one of its candidate endpoints.
import { formatIPv4, formatIPv6, writeIPv4, writeIPv6 } from '../net/ip.js';

export const DISCO_VERSION = 1;
export const MAX_CALL_ME_MAYBE_ENDPOINTS = 32;
export const TXID_BYTES = 12;

export interface DiscoAddress {
  readonly address: string;
  readonly port: number;
}

/** Stream control: sets up the UDX streams ("carriers") that carry an encrypted stream. */
export type StreamControl =
  | { readonly type: 'stream-open'; readonly sid: bigint; readonly carrier: number; readonly handshake: Uint8Array }
  | { readonly type: 'stream-accept'; readonly sid: bigint; readonly carrier: number; readonly handshake: Uint8Array }
  | { readonly type: 'stream-refuse'; readonly sid: bigint; readonly reason: string }
  | { readonly type: 'carrier'; readonly sid: bigint; readonly carrier: number }
  | { readonly type: 'carrier-ack'; readonly sid: bigint; readonly carrier: number; readonly yours: number }
  | { readonly type: 'tcp-lane'; readonly sid: bigint; readonly port: number; readonly token: Uint8Array }
  | { readonly type: 'tcp-lane-ack'; readonly sid: bigint; readonly port: number; readonly listenPort: number; readonly token: Uint8Array };

export type DiscoMessage =
  | { readonly type: 'ping'; readonly txid: Uint8Array }
  | { readonly type: 'pong'; readonly txid: Uint8Array; readonly src: DiscoAddress }
  | { readonly type: 'call-me-maybe'; readonly endpoints: readonly DiscoAddress[] }
  | { readonly type: 'birthday'; readonly ip: string }
  | StreamControl;

const TYPE_CODE = {
  ping: 1,
  pong: 2,
  'call-me-maybe': 3,
  'stream-open': 4,
  'stream-accept': 5,
  'stream-refuse': 6,
  carrier: 7,
  'carrier-ack': 8,
  birthday: 9,
  'tcp-lane': 10,
  'tcp-lane-ack': 11,
} as const;

/** The secret each side of a TCP lane must send first on the connection. */
export const LANE_TOKEN_BYTES = 16;

export const MAX_HANDSHAKE_BYTES = 512;
export const MAX_REFUSE_REASON_BYTES = 200;

export function isStreamControl(m: DiscoMessage): m is StreamControl {
  return isStreamControlCode(TYPE_CODE[m.type]);
}

function isStreamControlCode(code: number): boolean {
  return (code >= 4 && code <= 8) || code === 10 || code === 11;
}

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

export function encodeDisco(m: DiscoMessage): Buffer {
  if (isStreamControl(m)) return encodeStreamControl(m);
  if (m.type === 'birthday') {
    const b = Buffer.alloc(2 + addressSize({ address: m.ip, port: 0 }));
    b[0] = TYPE_CODE.birthday;
    b[1] = DISCO_VERSION;
    writeAddress(b, 2, { address: m.ip, port: 0 });
    return b;
  }
  let size = 2;
  if (m.type === 'ping') size += TXID_BYTES;
  else if (m.type === 'pong') size += TXID_BYTES + addressSize(m.src);
  else {
    if (m.endpoints.length > MAX_CALL_ME_MAYBE_ENDPOINTS) throw new Error(`disco: at most ${MAX_CALL_ME_MAYBE_ENDPOINTS} endpoints`);
    size += 1 + m.endpoints.reduce((s, e) => s + addressSize(e), 0);
  }
  const b = Buffer.alloc(size);
  b[0] = TYPE_CODE[m.type];
  b[1] = DISCO_VERSION;
  if (m.type === 'ping') Buffer.from(m.txid).copy(b, 2, 0, TXID_BYTES);
  else if (m.type === 'pong') {
    Buffer.from(m.txid).copy(b, 2, 0, TXID_BYTES);
    writeAddress(b, 2 + TXID_BYTES, m.src);
  } else {
    b[2] = m.endpoints.length;
    let o = 3;
    for (const e of m.endpoints) o = writeAddress(b, o, e);
  }
  return b;
}

function encodeStreamControl(m: StreamControl): Buffer {
  let tail: Buffer;
  if (m.type === 'stream-refuse') tail = Buffer.from(m.reason, 'utf8').subarray(0, MAX_REFUSE_REASON_BYTES);
  else if (m.type === 'stream-open' || m.type === 'stream-accept') {
    if (m.handshake.length > MAX_HANDSHAKE_BYTES) throw new Error('disco: handshake message too large');
    tail = Buffer.alloc(4 + m.handshake.length);
    tail.writeUInt32BE(m.carrier >>> 0, 0);
    tail.set(m.handshake, 4);
  } else if (m.type === 'tcp-lane' || m.type === 'tcp-lane-ack') {
    if (m.token.length !== LANE_TOKEN_BYTES) throw new Error(`disco: a lane token is ${LANE_TOKEN_BYTES} bytes`);
    const ports = m.type === 'tcp-lane' ? [m.port] : [m.port, m.listenPort];
    tail = Buffer.alloc(2 * ports.length + LANE_TOKEN_BYTES);
    ports.forEach((p, i) => tail.writeUInt16BE(p, 2 * i));
    tail.set(m.token, 2 * ports.length);
  } else if (m.type === 'carrier-ack') {
    tail = Buffer.alloc(8);
    tail.writeUInt32BE(m.carrier >>> 0, 0);
    tail.writeUInt32BE(m.yours >>> 0, 4);
  } else {
    tail = Buffer.alloc(4);
    tail.writeUInt32BE(m.carrier >>> 0, 0);
  }
  const b = Buffer.alloc(10 + tail.length);
  b[0] = TYPE_CODE[m.type];
  b[1] = DISCO_VERSION;
  b.writeBigUInt64BE(m.sid, 2);
  tail.copy(b, 10);
  return b;
}

function decodeStreamControl(code: number, b: Uint8Array): StreamControl | null {
  if (b.length < 10) return null;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const sid = buf.readBigUInt64BE(2);
  if (code === 6) {
    if (b.length - 10 > MAX_REFUSE_REASON_BYTES) return null;
    return { type: 'stream-refuse', sid, reason: buf.toString('utf8', 10) };
  }
  if (code === 10 || code === 11) {
    const nPorts = code === 10 ? 1 : 2;
    if (b.length !== 10 + 2 * nPorts + LANE_TOKEN_BYTES) return null;
    const port = buf.readUInt16BE(10);
    const listenPort = code === 11 ? buf.readUInt16BE(12) : 1;
    if (port === 0 || listenPort === 0) return null;
    const token = new Uint8Array(buf.subarray(10 + 2 * nPorts));
    return code === 10 ? { type: 'tcp-lane', sid, port, token } : { type: 'tcp-lane-ack', sid, port, listenPort, token };
  }
  if (b.length < 14) return null;
  const carrier = buf.readUInt32BE(10);
  if (code === 4 || code === 5) {
    const handshake = new Uint8Array(buf.subarray(14));
    if (handshake.length === 0 || handshake.length > MAX_HANDSHAKE_BYTES) return null;
    return { type: code === 4 ? 'stream-open' : 'stream-accept', sid, carrier, handshake };
  }
  if (code === 8) return b.length === 18 ? { type: 'carrier-ack', sid, carrier, yours: buf.readUInt32BE(14) } : null;
  return b.length === 14 ? { type: 'carrier', sid, carrier } : null;
}

/** Parses a plaintext disco message; null for anything malformed (a silent drop). */
export function decodeDisco(b: Uint8Array): DiscoMessage | null {
  if (b.length < 2 || b[1] !== DISCO_VERSION) return null;
  if (isStreamControlCode(b[0]!)) return decodeStreamControl(b[0]!, b);
  switch (b[0]) {
    case 1:
      return b.length === 2 + TXID_BYTES ? { type: 'ping', txid: new Uint8Array(b.subarray(2, 2 + TXID_BYTES)) } : null;
    case 2: {
      if (b.length < 2 + TXID_BYTES) return null;
      const r = readAddress(b, 2 + TXID_BYTES);
      if (!r || r.next !== b.length) return null;
      return { type: 'pong', txid: new Uint8Array(b.subarray(2, 2 + TXID_BYTES)), src: r.addr };
    }
    case 9: {
      const r = readAddress(b, 2);
      return r && r.next === b.length ? { type: 'birthday', ip: r.addr.address } : null;
    }
    case 3: {
      const n = b[2];
      if (n === undefined || n > MAX_CALL_ME_MAYBE_ENDPOINTS) return null;
      const endpoints: DiscoAddress[] = [];
      let o = 3;
      for (let i = 0; i < n; i++) {
        const r = readAddress(b, o);
        if (!r) return null;
        endpoints.push(r.addr);
        o = r.next;
      }
      return o === b.length ? { type: 'call-me-maybe', endpoints } : null;
    }
    default:
      return null;
  }
}

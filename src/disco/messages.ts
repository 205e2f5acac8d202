// Disco: the peer-to-peer control messages that find and keep a direct path. Plaintext layout
// (sealed by seal.ts before it leaves the node):
//
//   type (1) | version (1) | body
//
//   ping           1  txid (12)                      "are you there, at this address?"
//   pong           2  txid (12) | address            "yes; your ping came from <address>"
//   call-me-maybe  3  count (1) | address * count    "here are my endpoints: ping me now"
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

export type DiscoMessage =
  | { readonly type: 'ping'; readonly txid: Uint8Array }
  | { readonly type: 'pong'; readonly txid: Uint8Array; readonly src: DiscoAddress }
  | { readonly type: 'call-me-maybe'; readonly endpoints: readonly DiscoAddress[] };

const TYPE_CODE = { ping: 1, pong: 2, 'call-me-maybe': 3 } as const;

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

/** Parses a plaintext disco message; null for anything malformed (a silent drop). */
export function decodeDisco(b: Uint8Array): DiscoMessage | null {
  if (b.length < 2 || b[1] !== DISCO_VERSION) return null;
  switch (b[0]) {
    case 1:
      return b.length === 2 + TXID_BYTES ? { type: 'ping', txid: new Uint8Array(b.subarray(2, 2 + TXID_BYTES)) } : null;
    case 2: {
      if (b.length < 2 + TXID_BYTES) return null;
      const r = readAddress(b, 2 + TXID_BYTES);
      if (!r || r.next !== b.length) return null;
      return { type: 'pong', txid: new Uint8Array(b.subarray(2, 2 + TXID_BYTES)), src: r.addr };
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

// PCP (RFC 6887) messages for one UDP mapping (the MAP opcode) and the ANNOUNCE probe: pure.
//
//   request header (24 bytes):  0 version=2 | 1 R=0,opcode(7) | 2-3 reserved
//                               4-7 requested lifetime (s) | 8-23 client IP (IPv4 as ::ffff:a.b.c.d)
//   response header (24 bytes): 0 version=2 | 1 R=1,opcode(7) | 2 reserved | 3 result code
//                               4-7 lifetime (s) | 8-11 epoch time (s) | 12-23 reserved
//   MAP body (36 bytes):        0-11 mapping nonce | 12 protocol (17 = UDP) | 13-15 reserved
//                               16-17 internal port | 18-19 suggested / assigned external port
//                               20-35 suggested / assigned external IP
// Options (after the body) are not sent and are skipped on receipt. A server that speaks only
// NAT-PMP answers with a version 0 packet (RFC 6887 section 9): decoded as `unsupported-version`.
import { formatIPv4, formatIPv6, writeIPv4 } from '../net/ip.js';

export const PCP_PORT = 5351;
const VERSION = 2;
export const PCP_OP_ANNOUNCE = 0;
export const PCP_OP_MAP = 1;
const PROTO_UDP = 17;
const HEADER = 24;
const MAP_BODY = 36;
/** RFC 6887 section 7: messages are at most 1100 bytes. */
const MAX_MESSAGE = 1100;

/** RFC 6887 section 7.4 result codes. */
export const PCP_RESULTS: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized',
  3: 'malformed request',
  4: 'unsupported opcode',
  5: 'unsupported option',
  6: 'malformed option',
  7: 'network failure (the router has no usable external address)',
  8: 'no resources',
  9: 'unsupported protocol',
  10: 'user exceeded quota',
  11: 'cannot provide external address',
  12: 'address mismatch (a NAT between us and the router?)',
  13: 'excessive remote peers',
};

export function pcpResultText(code: number): string {
  return PCP_RESULTS[code] ?? `result code ${code}`;
}

function writeMappedV4(ip: string, b: Buffer, offset: number): void {
  b.fill(0, offset, offset + 16);
  b[offset + 10] = 0xff;
  b[offset + 11] = 0xff;
  if (!writeIPv4(ip, b, offset + 12)) throw new Error(`PCP: "${ip}" is not an IPv4 address`);
}

function header(opcode: number, lifetimeS: number, clientIp: string, bodyLength: number): Buffer {
  const b = Buffer.alloc(HEADER + bodyLength);
  b[0] = VERSION;
  b[1] = opcode & 0x7f;
  b.writeUInt32BE(lifetimeS >>> 0, 4);
  writeMappedV4(clientIp, b, 8);
  return b;
}

/** ANNOUNCE: asks only for the server's epoch; an answer says PCP is spoken here. */
export function encodePcpAnnounce(clientIp: string): Uint8Array {
  return header(PCP_OP_ANNOUNCE, 0, clientIp, 0);
}

export interface PcpMapRequest {
  /** Our address as the server sees it: the source address of the request. */
  readonly clientIp: string;
  /** 12 random bytes naming this mapping; renewals and the delete reuse it. */
  readonly nonce: Uint8Array;
  readonly internalPort: number;
  /** 0: any. */
  readonly suggestedExternalPort: number;
  /** "0.0.0.0": any. */
  readonly suggestedExternalIp: string;
  /** Seconds; 0 deletes the mapping. */
  readonly lifetimeS: number;
}

export function encodePcpMap(r: PcpMapRequest): Uint8Array {
  if (r.nonce.length !== 12) throw new Error('PCP: the mapping nonce is 12 bytes');
  const b = header(PCP_OP_MAP, r.lifetimeS, r.clientIp, MAP_BODY);
  b.set(r.nonce, HEADER);
  b[HEADER + 12] = PROTO_UDP;
  b.writeUInt16BE(r.internalPort, HEADER + 16);
  b.writeUInt16BE(r.suggestedExternalPort, HEADER + 18);
  writeMappedV4(r.suggestedExternalIp, b, HEADER + 20);
  return b;
}

export interface PcpMapBody {
  readonly nonce: Uint8Array;
  readonly protocol: number;
  readonly internalPort: number;
  readonly externalPort: number;
  /** Dotted quad for an IPv4-mapped address, else IPv6 text. */
  readonly externalAddress: string;
}

export type PcpResponse =
  | { readonly kind: 'unsupported-version'; readonly version: number }
  | {
      readonly kind: 'response';
      readonly opcode: number;
      readonly result: number;
      readonly lifetimeS: number;
      readonly epochS: number;
      /** MAP responses that carry their body; null otherwise. */
      readonly map: PcpMapBody | null;
    };

function readAddress(b: Buffer, offset: number): string {
  const mapped = b.subarray(offset, offset + 10).every((x) => x === 0) && b[offset + 10] === 0xff && b[offset + 11] === 0xff;
  return mapped ? formatIPv4(b, offset + 12) : formatIPv6(b, offset);
}

/** A server's answer, or null for anything that is not a well-formed PCP (or NAT-PMP version) response. */
export function decodePcpResponse(buf: Uint8Array): PcpResponse | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  // A NAT-PMP-only server's "unsupported version" (RFC 6886 section 3.5 header, result 1).
  if (b.length >= 4 && b[0] === 0 && (b[1]! & 0x80) !== 0) return { kind: 'unsupported-version', version: 0 };
  if (b.length < HEADER || b.length > MAX_MESSAGE || b.length % 4 !== 0) return null;
  if (b[0] !== VERSION) return b[0]! < VERSION ? { kind: 'unsupported-version', version: b[0]! } : null;
  if ((b[1]! & 0x80) === 0) return null; // a request, not a response
  const opcode = b[1]! & 0x7f;
  const result = b[3]!;
  const lifetimeS = b.readUInt32BE(4);
  const epochS = b.readUInt32BE(8);
  let map: PcpMapBody | null = null;
  if (opcode === PCP_OP_MAP && b.length >= HEADER + MAP_BODY) {
    map = {
      nonce: Uint8Array.from(b.subarray(HEADER, HEADER + 12)),
      protocol: b[HEADER + 12]!,
      internalPort: b.readUInt16BE(HEADER + 16),
      externalPort: b.readUInt16BE(HEADER + 18),
      externalAddress: readAddress(b, HEADER + 20),
    };
  } else if (opcode === PCP_OP_MAP && result === 0) return null; // a success must carry the body
  return { kind: 'response', opcode, result, lifetimeS, epochS, map };
}

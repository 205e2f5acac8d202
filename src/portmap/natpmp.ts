// NAT-PMP (RFC 6886) messages for one UDP mapping, as bytes: pure, no I/O.
//
//   request, external address (opcode 0):   0 version=0 | 1 opcode=0
//   request, map UDP (opcode 1):            0 version=0 | 1 opcode=1 | 2-3 reserved
//                                           4-5 internal port | 6-7 suggested external port
//                                           8-11 requested lifetime (s; 0 deletes)
//   response header (every response):      0 version=0 | 1 opcode+128 | 2-3 result code
//                                           4-7 seconds since the gateway's start of epoch
//   response, external address (12 bytes):  8-11 external IPv4 address
//   response, map UDP (16 bytes):           8-9 internal port | 10-11 mapped external port
//                                           12-15 lifetime granted (s)
// An error response may be the 8-byte header alone (RFC 6886 section 3.5).
import { formatIPv4 } from '../net/ip.js';

export const NATPMP_PORT = 5351;
const OP_EXTERNAL = 0;
const OP_MAP_UDP = 1;

/** RFC 6886 section 3.5 result codes, named for messages. */
export const NATPMP_RESULTS: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized (port mapping disabled on the router)',
  3: 'network failure (the router has no usable external address)',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export function natpmpResultText(code: number): string {
  return NATPMP_RESULTS[code] ?? `result code ${code}`;
}

export function encodeNatPmpExternalAddressRequest(): Uint8Array {
  return Uint8Array.of(0, OP_EXTERNAL);
}

export interface NatPmpMapRequest {
  readonly internalPort: number;
  /** The external port we would like (the router may give another); 0: any. */
  readonly suggestedExternalPort: number;
  /** Seconds; 0 deletes the mapping. */
  readonly lifetimeS: number;
}

export function encodeNatPmpMapRequest(r: NatPmpMapRequest): Uint8Array {
  const b = Buffer.alloc(12);
  b[0] = 0;
  b[1] = OP_MAP_UDP;
  b.writeUInt16BE(r.internalPort, 4);
  b.writeUInt16BE(r.suggestedExternalPort, 6);
  b.writeUInt32BE(r.lifetimeS >>> 0, 8);
  return b;
}

export type NatPmpResponse =
  | { readonly op: 'external-address'; readonly result: number; readonly epochS: number; readonly externalAddress: string | null }
  | {
      readonly op: 'map-udp';
      readonly result: number;
      readonly epochS: number;
      readonly internalPort: number;
      readonly externalPort: number;
      readonly lifetimeS: number;
    };

/** A gateway's answer, or null for anything that is not a well-formed NAT-PMP response. */
export function decodeNatPmpResponse(buf: Uint8Array): NatPmpResponse | null {
  if (buf.length < 8 || buf[0] !== 0) return null;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const result = b.readUInt16BE(2);
  const epochS = b.readUInt32BE(4);
  switch (b[1]) {
    case 128 + OP_EXTERNAL:
      if (result === 0 && b.length < 12) return null;
      return { op: 'external-address', result, epochS, externalAddress: b.length >= 12 ? formatIPv4(b, 8) : null };
    case 128 + OP_MAP_UDP:
      if (result === 0 && b.length < 16) return null;
      if (b.length < 16) return { op: 'map-udp', result, epochS, internalPort: 0, externalPort: 0, lifetimeS: 0 };
      return { op: 'map-udp', result, epochS, internalPort: b.readUInt16BE(8), externalPort: b.readUInt16BE(10), lifetimeS: b.readUInt32BE(12) };
    default:
      return null;
  }
}

// What the STUN server answers to one request, written into the responder's scratch buffer.
//
// This is the server's protocol logic, free of sockets: it takes the request bytes, who sent them
// and which of the server's sockets received them, and returns either "reply with N bytes of
// scratch from socket S" or "drop, for this reason". The caller sends the reply to the request's
// source and nowhere else.
//
// Amplification bound. A response is never more than MAX_RESPONSE_GROWTH (72) bytes larger than
// the request that caused it. The worst case is a bare 20-byte Binding request over IPv6 to a
// server in RFC 5780 mode: the 92-byte answer carries XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN and
// OTHER-ADDRESS (24 bytes each with an IPv6 address); an RFC 3489 client gets the same three
// sizes as MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS. FINGERPRINT is only echoed to a
// request that carried one (and so is 8 bytes longer itself). A 420 costs 32 bytes plus 2 per
// unknown attribute, each of which took at least 4 bytes of the request. PADDING is accepted but
// not echoed (so it cannot inflate the answer), and RESPONSE-PORT and RESPONSE-ADDRESS, which
// would let a spoofed request aim the answer at another port or host, get a 420 (see below).
import { Attr, ErrorCodes, HEADER_LENGTH, isComprehensionRequired, METHOD_BINDING } from './constants.js';
import { decodeMessage, type StunMessage } from './message.js';
import { readAttribute, writeAddressValue, type TransportAddress } from './attributes.js';
import { computeFingerprint } from './integrity.js';
import { StunDecodeError } from './errors.js';

/** Largest number of bytes by which a response may exceed its request (see the header comment). */
export const MAX_RESPONSE_GROWTH = 72;

/** Enough for the largest response this module writes (a 420 listing MAX_UNKNOWN_LISTED types). */
export const SCRATCH_SIZE = 256;

/** A 420 lists at most this many unknown types; the RFC lets a server list fewer. */
const MAX_UNKNOWN_LISTED = 32;

export type DropReason = 'malformed' | 'not-a-request' | 'unsupported-method' | 'bad-fingerprint';

/**
 * Attributes a Binding request may carry that this server understands, in the sense of RFC 8489
 * section 7.3.1: it knows what they mean, even when that meaning is "nothing for a STUN server
 * without credentials" (USERNAME, the integrity attributes, the ICE attributes). RESPONSE-PORT and
 * RESPONSE-ADDRESS are deliberately absent: honouring them would send the answer to a port or host
 * other than the request's source, which a spoofed request could aim at a victim; ignoring them
 * would silently answer a client that asked for something else. A 420 (sent to the source only) is
 * what RFC 5780 section 7.2 prescribes for a server that does not implement RESPONSE-PORT, and it
 * tells the client exactly what is missing. CHANGE-REQUEST is handled separately.
 */
const UNDERSTOOD = new Set<number>([
  Attr.Username,
  Attr.MessageIntegrity,
  Attr.MessageIntegritySha256,
  Attr.Userhash,
  Attr.Realm,
  Attr.Nonce,
  Attr.PasswordAlgorithm,
  Attr.Padding,
  Attr.Priority,
  Attr.UseCandidate,
  // Address attributes have no meaning in a request; a server that knows them ignores them.
  Attr.MappedAddress,
  Attr.XorMappedAddress,
  Attr.SourceAddress,
  Attr.ChangedAddress,
]);

/** One of the server's sockets, as the response logic needs to know it. */
export interface SocketRole {
  /** 0 primary IP, 1 alternate IP. */
  readonly ipIndex: 0 | 1;
  /** 0 primary port, 1 alternate port. */
  readonly portIndex: 0 | 1;
  /** RESPONSE-ORIGIN / SOURCE-ADDRESS value: this socket's address, or null when unknown (wildcard). */
  readonly origin: TransportAddress | null;
  /** OTHER-ADDRESS / CHANGED-ADDRESS value: the socket with both IP and port changed (RFC 5780 mode). */
  readonly other: TransportAddress | null;
}

export interface RespondContext {
  /** Indexed [ipIndex * 2 + portIndex]; one entry without RFC 5780 mode, four with it. */
  readonly sockets: readonly SocketRole[];
  /** Whether CHANGE-REQUEST can be honoured (four sockets, UDP only). */
  readonly changeSupported: boolean;
}

/** Result of respond(): bytes [0, length) of scratch to send from sockets[socketIndex], or a drop. */
export type Outcome =
  | { readonly kind: 'reply'; readonly length: number; readonly socketIndex: number; readonly error: boolean }
  | { readonly kind: 'drop'; readonly reason: DropReason };

// Outcomes without per-request data are shared, so the hot path allocates nothing for them.
const DROPS: Readonly<Record<DropReason, Outcome>> = {
  malformed: { kind: 'drop', reason: 'malformed' },
  'not-a-request': { kind: 'drop', reason: 'not-a-request' },
  'unsupported-method': { kind: 'drop', reason: 'unsupported-method' },
  'bad-fingerprint': { kind: 'drop', reason: 'bad-fingerprint' },
};

/** Mutable result reused for every reply from the same responder. */
interface ReplySlot {
  kind: 'reply';
  length: number;
  socketIndex: number;
  error: boolean;
}

/**
 * A responder owns one reply object and one scratch buffer; respond() overwrites both, so the caller
 * must send (or copy) the bytes before the next call.
 */
export class Responder {
  private buf: Buffer = Buffer.alloc(SCRATCH_SIZE);
  private readonly slot: ReplySlot = { kind: 'reply', length: 0, socketIndex: 0, error: false };
  private readonly unknown = new Uint16Array(MAX_UNKNOWN_LISTED);

  constructor(private readonly ctx: RespondContext) {}

  /** Where respond() wrote the last reply: bytes [0, length). */
  get scratch(): Buffer {
    return this.buf;
  }

  /** Leaves the current scratch buffer to whoever still holds it (a queued send) and takes a new one. */
  renewScratch(): void {
    this.buf = Buffer.alloc(SCRATCH_SIZE);
  }

  /**
   * Answers one datagram (or one TCP-framed message) received on sockets[socketIndex] from
   * `source`. `source.family` must describe the address as the client sees it (an IPv4-mapped
   * IPv6 source should be given as IPv4; see clientAddress()).
   */
  respond(req: Buffer, source: TransportAddress, socketIndex: number): Outcome {
    const n = req.length;
    if (n < HEADER_LENGTH || (req[0]! & 0xc0) !== 0) return DROPS.malformed;
    // The common case, a bare RFC 8489 Binding request, needs no attribute parse at all.
    if (n === HEADER_LENGTH && req[0] === 0 && req[1] === 1 && req[2] === 0 && req[3] === 0 && hasCookie(req)) {
      return this.success(req, true, source, socketIndex, false);
    }
    let msg: StunMessage;
    try {
      msg = decodeMessage(req);
    } catch (err) {
      if (err instanceof StunDecodeError) return DROPS.malformed;
      throw err;
    }
    if (msg.cls !== 'request') return DROPS['not-a-request'];
    if (msg.method !== METHOD_BINDING) return DROPS['unsupported-method'];
    const fp = msg.fingerprintOffset;
    if (fp !== -1 && req.readUInt32BE(fp + 4) !== computeFingerprint(req, fp)) return DROPS['bad-fingerprint'];

    let count = 0;
    let changeIp = false;
    let changePort = false;
    for (const a of msg.attributes) {
      if (a.type === Attr.ChangeRequest) {
        let flags: { changeIp: boolean; changePort: boolean };
        try {
          const v = readAttribute(msg, a);
          flags = v.type === 'CHANGE-REQUEST' ? v : { changeIp: false, changePort: false };
        } catch {
          return DROPS.malformed;
        }
        // Without alternate sockets a change cannot be honoured; RFC 5780 section 7.2 says 420.
        // A CHANGE-REQUEST asking for no change (classic clients send one in test I) is answered.
        if ((flags.changeIp || flags.changePort) && !this.ctx.changeSupported) count = this.addUnknown(count, a.type);
        changeIp ||= flags.changeIp;
        changePort ||= flags.changePort;
      } else if (isComprehensionRequired(a.type) && !UNDERSTOOD.has(a.type)) {
        count = this.addUnknown(count, a.type);
      }
    }
    if (count > 0) return this.unknownAttributes(req, msg.hasMagicCookie, count, fp !== -1, socketIndex);

    const from = this.ctx.sockets[socketIndex]!;
    let target = socketIndex;
    if (changeIp || changePort) {
      const ip = changeIp ? from.ipIndex ^ 1 : from.ipIndex;
      const port = changePort ? from.portIndex ^ 1 : from.portIndex;
      target = ip * 2 + port;
    }
    return this.success(req, msg.hasMagicCookie, source, target, fp !== -1, socketIndex);
  }

  private addUnknown(count: number, type: number): number {
    for (let i = 0; i < count; i++) if (this.unknown[i] === type) return count;
    if (count >= MAX_UNKNOWN_LISTED) return count;
    this.unknown[count] = type;
    return count + 1;
  }

  /**
   * Binding success response sent from sockets[target]. OTHER-ADDRESS / CHANGED-ADDRESS describe the
   * socket that received the request (its "other" address), RESPONSE-ORIGIN / SOURCE-ADDRESS the
   * one that sends the answer, as RFC 5780 section 7.3 and RFC 3489 section 8.1 say.
   */
  private success(
    req: Buffer,
    cookie: boolean,
    source: TransportAddress,
    target: number,
    fingerprint: boolean,
    received = target,
  ): Outcome {
    const b = this.buf;
    copyHeader(b, req, 0x0101);
    let pos = HEADER_LENGTH;
    pos = writeAddress(b, pos, cookie ? Attr.XorMappedAddress : Attr.MappedAddress, source, cookie);
    const sender = this.ctx.sockets[target]!;
    const receiver = this.ctx.sockets[received]!;
    if (cookie) {
      // RESPONSE-ORIGIN and OTHER-ADDRESS only in RFC 5780 mode: without alternates they add bytes
      // and tell the client nothing it can use.
      if (receiver.other !== null && sender.origin !== null) {
        pos = writeAddress(b, pos, Attr.ResponseOrigin, sender.origin, false);
        pos = writeAddress(b, pos, Attr.OtherAddress, receiver.other, false);
      }
    } else {
      if (sender.origin !== null) pos = writeAddress(b, pos, Attr.SourceAddress, sender.origin, false);
      if (receiver.other !== null) pos = writeAddress(b, pos, Attr.ChangedAddress, receiver.other, false);
    }
    pos = finish(b, pos, cookie && fingerprint);
    return this.reply(pos, target, false);
  }

  private unknownAttributes(req: Buffer, cookie: boolean, count: number, fingerprint: boolean, socketIndex: number): Outcome {
    const b = this.buf;
    copyHeader(b, req, 0x0111);
    let pos = HEADER_LENGTH;
    const reason = 'Unknown Attribute';
    b.writeUInt16BE(Attr.ErrorCode, pos);
    b.writeUInt16BE(4 + reason.length, pos + 2);
    b.writeUInt32BE(((ErrorCodes.UnknownAttribute / 100) << 8) | ErrorCodes.UnknownAttribute % 100, pos + 4);
    b.write(reason, pos + 8, 'latin1');
    pos += 8 + ((reason.length + 3) & ~3);
    b.fill(0, pos - ((4 - (reason.length & 3)) & 3), pos);
    b.writeUInt16BE(Attr.UnknownAttributes, pos);
    b.writeUInt16BE(2 * count, pos + 2);
    for (let i = 0; i < count; i++) b.writeUInt16BE(this.unknown[i]!, pos + 4 + 2 * i);
    const end = pos + 4 + ((2 * count + 3) & ~3);
    b.fill(0, pos + 4 + 2 * count, end);
    pos = finish(b, end, cookie && fingerprint);
    return this.reply(pos, socketIndex, true);
  }

  private reply(length: number, socketIndex: number, error: boolean): Outcome {
    const s = this.slot;
    s.length = length;
    s.socketIndex = socketIndex;
    s.error = error;
    return s;
  }
}

function hasCookie(b: Buffer): boolean {
  return b[4] === 0x21 && b[5] === 0x12 && b[6] === 0xa4 && b[7] === 0x42;
}

/** Message type and the 16 bytes after the length (cookie + transaction id, or an RFC 3489 id). */
function copyHeader(b: Buffer, req: Buffer, type: number): void {
  b[0] = type >> 8;
  b[1] = type & 0xff;
  // A byte loop: for 16 bytes it is cheaper than Buffer.copy's call into C++.
  for (let i = 4; i < HEADER_LENGTH; i++) b[i] = req[i]!;
}

function writeAddress(b: Buffer, pos: number, type: number, a: TransportAddress, xor: boolean): number {
  const len = a.family === 4 ? 8 : 20;
  b[pos] = type >> 8;
  b[pos + 1] = type & 0xff;
  b[pos + 2] = 0;
  b[pos + 3] = len;
  writeAddressValue(b, pos + 4, a, xor);
  return pos + 4 + len;
}

/** Writes the length field and, when asked, FINGERPRINT; returns the message size. */
function finish(b: Buffer, pos: number, fingerprint: boolean): number {
  const end = fingerprint ? pos + 8 : pos;
  b[2] = (end - HEADER_LENGTH) >> 8;
  b[3] = (end - HEADER_LENGTH) & 0xff;
  if (fingerprint) {
    b.writeUInt16BE(Attr.Fingerprint, pos);
    b.writeUInt16BE(4, pos + 2);
    b.writeUInt32BE(computeFingerprint(b, pos), pos + 4);
  }
  return end;
}

/**
 * The client's address as it should appear in XOR-MAPPED-ADDRESS. A dual-stack socket reports IPv4
 * peers as "::ffff:a.b.c.d"; the client sent from a.b.c.d and must be told so.
 */
export function clientAddress(address: string, port: number, family: string): TransportAddress {
  if (family === 'IPv4') return { family: 4, address, port };
  if (address.startsWith('::ffff:') && address.includes('.')) return { family: 4, address: address.slice(7), port };
  return { family: 6, address, port };
}

// The frames of a resumable stream on its carriers (UDX streams, TCP lanes, relay lanes), version 2:
// one frame is both the session's unit (offsets, acknowledgements) and the encryption's record, so
// each chunk of the stream gets one header, one seal and one write (record-cipher.ts). A carrier
// is a reliable byte stream, but it can die with its path; the stream then continues on a new
// carrier from the offsets below, so nothing is lost or repeated.
//
//   HELLO  0x01 | recvOffset (8) | tag (16)                    first frame of each side on a carrier
//   DATA   0x02 | offset (8) | length (4) | tag (16) | bytes   sealed stream bytes [offset, offset + length)
//   ACK    0x03 | recvOffset (8) | tag (16)                    "I have every byte before recvOffset"
//   FIN    0x04 | offset (8) | tag (16)                        "my stream ends at offset"
//   RST    0x05 | length (1) | tag (16) | reason               "abandon the stream" (sealed reason)
//   PING   0x06 | counter (8) | tag (16)                       keepalive after a silence
//
// Integers are big-endian. The tag (Poly1305) covers the header before it as associated data, and
// comes before the body so that the header and tag go out as one small buffer beside the body.
// Version 1 (before secret-stream was replaced) had no tags and no PING: a peer speaking it is
// refused at the stream's opening (request.ts), so these bytes never meet it.
//
// The decoder is incremental: it hands on each frame once it is whole, its body as the pieces it
// arrived in (sub-ranges of the carrier's reads, no copy), bounded by MAX_RECORD.
export const FrameType = { Hello: 1, Data: 2, Ack: 3, Fin: 4, Rst: 5, Ping: 6 } as const;

/** The most bytes one DATA frame carries; a larger one is a protocol error. */
export const MAX_RECORD = 64 << 10;

/** Each frame type's header length, the tag (its last 16 bytes) included. */
const HEAD_BYTES: Readonly<Record<number, number>> = { 1: 25, 2: 29, 3: 25, 4: 25, 5: 18, 6: 25 };
const MAX_HEAD = 29;

/** Offsets and counters are safe integers: 8 bytes on the wire, at most 2^53 - 1 in use. */
function writeU64(b: Buffer, value: number, at: number): void {
  b.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  b.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(b: Buffer, at: number): number {
  const hi = b.readUInt32BE(at);
  if (hi >= 0x20_0000) throw new FrameError('offset out of range');
  return hi * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

/** A header of `type` with `value` (an offset or counter), the tag left for the seal. */
export function frameHead(type: 1 | 3 | 4 | 6, value: number): Buffer {
  const b = Buffer.allocUnsafe(HEAD_BYTES[type]!);
  b[0] = type;
  writeU64(b, value, 1);
  return b;
}

export function dataHead(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(HEAD_BYTES[FrameType.Data]!);
  b[0] = FrameType.Data;
  writeU64(b, offset, 1);
  b.writeUInt32BE(length, 9);
  return b;
}

export function rstHead(reasonBytes: number): Buffer {
  const b = Buffer.allocUnsafe(HEAD_BYTES[FrameType.Rst]!);
  b[0] = FrameType.Rst;
  b[1] = reasonBytes;
  return b;
}

/** The value a frame's nonce is made from (record-cipher.ts): its offset or counter, 0 for RST. */
export function frameValue(head: Buffer): number {
  return head[0] === FrameType.Rst ? 0 : readU64(head, 1);
}

/** A DATA frame's length. */
export function dataLength(head: Buffer): number {
  return head.readUInt32BE(9);
}

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/**
 * Receives each whole frame: its header (the decoder's own buffer, valid only during the call)
 * and its body in pieces (empty for frames without one).
 */
export type FrameHandler = (head: Buffer, body: Buffer[]) => void;

const NO_BODY: Buffer[] = [];

export class FrameDecoder {
  private readonly head = Buffer.alloc(MAX_HEAD);
  private headHave = 0;
  private headNeed = 0;
  /** Body bytes of the current frame still to come, and the pieces that came. */
  private bodyLeft = 0;
  private body: Buffer[] = [];

  constructor(private readonly handler: FrameHandler) {}

  /** Feeds bytes from the carrier. Throws FrameError on a malformed stream. */
  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        this.body.push(i === 0 && n === chunk.length ? chunk : chunk.subarray(i, i + n));
        this.bodyLeft -= n;
        i += n;
        if (this.bodyLeft === 0) this.emit();
        continue;
      }
      if (this.headHave === 0) {
        const need = HEAD_BYTES[chunk[i]!];
        if (need === undefined) throw new FrameError(`unknown frame type ${chunk[i]} (a peer running another version of traverse?)`);
        this.headNeed = need;
      }
      const n = Math.min(this.headNeed - this.headHave, chunk.length - i);
      chunk.copy(this.head, this.headHave, i, i + n);
      this.headHave += n;
      i += n;
      if (this.headHave < this.headNeed) continue;
      this.headHave = 0;
      const type = this.head[0];
      const bodyBytes = type === FrameType.Data ? dataLength(this.head) : type === FrameType.Rst ? this.head[1]! : 0;
      if (bodyBytes > MAX_RECORD) throw new FrameError(`DATA frame of ${bodyBytes} bytes exceeds ${MAX_RECORD}`);
      if (bodyBytes === 0) {
        this.handler(this.head.subarray(0, this.headNeed), NO_BODY);
        continue;
      }
      this.bodyLeft = bodyBytes;
      this.body = [];
    }
  }

  private emit(): void {
    const body = this.body;
    this.body = [];
    this.handler(this.head.subarray(0, this.headNeed), body);
  }
}


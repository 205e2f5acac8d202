// The framing of a resumable stream on its carriers (UDX streams). A carrier is a reliable byte
// stream, but it can die with its path; the stream then continues on a new carrier from the
// byte offsets below, so nothing is lost or repeated.
//
//   HELLO  0x01 | recvOffset (8)                    first frame of each side on a carrier
//   DATA   0x02 | offset (8) | length (4) | bytes   stream bytes [offset, offset + length)
//   ACK    0x03 | recvOffset (8)                    "I have every byte before recvOffset"
//   FIN    0x04 | offset (8)                        "my stream ends at offset"
//   RST    0x05 | length (1) | reason               "abandon the stream"
//
// The decoder is incremental and never buffers a DATA payload: it hands each piece on with its
// absolute offset as it arrives, so a 64 KiB frame split over 50 UDX packets costs no copies.
export const FrameType = { Hello: 1, Data: 2, Ack: 3, Fin: 4, Rst: 5 } as const;

/** A DATA frame larger than this is a protocol error (senders write at most 64 KiB). */
export const MAX_DATA_FRAME = 1 << 20;

export function encodeOffsetFrame(type: 1 | 3 | 4, offset: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = type;
  b.writeBigUInt64BE(BigInt(offset), 1);
  return b;
}

export function encodeDataHeader(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b[0] = FrameType.Data;
  b.writeBigUInt64BE(BigInt(offset), 1);
  b.writeUInt32BE(length, 9);
  return b;
}

export function encodeRst(reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, 255);
  return Buffer.concat([Buffer.from([FrameType.Rst, r.length]), r]);
}

export interface FrameHandler {
  hello(recvOffset: number): void;
  data(offset: number, bytes: Buffer): void;
  ack(recvOffset: number): void;
  fin(offset: number): void;
  rst(reason: string): void;
}

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

const HEADER_SIZE: Readonly<Record<number, number>> = { 1: 9, 2: 13, 3: 9, 4: 9, 5: 2 };

export class FrameDecoder {
  private header = Buffer.alloc(13);
  private headerHave = 0;
  private headerNeed = 0;
  /** Bytes of the current DATA payload still to come, and the offset of the next one. */
  private dataLeft = 0;
  private dataOffset = 0;
  private rstLeft = 0;
  private rstBytes: Buffer[] = [];

  constructor(private readonly handler: FrameHandler) {}

  /** Feeds bytes from the carrier. Throws FrameError on a malformed stream. */
  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, chunk.length - i);
        const piece = chunk.subarray(i, i + n);
        const at = this.dataOffset;
        this.dataOffset += n;
        this.dataLeft -= n;
        i += n;
        this.handler.data(at, piece);
        continue;
      }
      if (this.rstLeft > 0) {
        const n = Math.min(this.rstLeft, chunk.length - i);
        this.rstBytes.push(chunk.subarray(i, i + n));
        this.rstLeft -= n;
        i += n;
        if (this.rstLeft === 0) this.handler.rst(Buffer.concat(this.rstBytes).toString('utf8'));
        continue;
      }
      if (this.headerHave === 0) {
        const need = HEADER_SIZE[chunk[i]!];
        if (need === undefined) throw new FrameError(`unknown frame type ${chunk[i]}`);
        this.headerNeed = need;
      }
      const n = Math.min(this.headerNeed - this.headerHave, chunk.length - i);
      chunk.copy(this.header, this.headerHave, i, i + n);
      this.headerHave += n;
      i += n;
      if (this.headerHave === this.headerNeed) {
        this.headerHave = 0;
        this.onHeader();
      }
    }
  }

  private onHeader(): void {
    const h = this.header;
    const type = h[0];
    if (type === FrameType.Rst) {
      this.rstLeft = h[1]!;
      this.rstBytes = [];
      if (this.rstLeft === 0) this.handler.rst('');
      return;
    }
    const offset = Number(h.readBigUInt64BE(1));
    if (!Number.isSafeInteger(offset)) throw new FrameError('offset out of range');
    switch (type) {
      case FrameType.Hello:
        return this.handler.hello(offset);
      case FrameType.Ack:
        return this.handler.ack(offset);
      case FrameType.Fin:
        return this.handler.fin(offset);
      case FrameType.Data: {
        const len = h.readUInt32BE(9);
        if (len > MAX_DATA_FRAME) throw new FrameError(`DATA frame of ${len} bytes exceeds ${MAX_DATA_FRAME}`);
        this.dataOffset = offset;
        this.dataLeft = len;
        return;
      }
    }
  }
}

// An encrypted byte stream that survives the death of the path under it. Its bytes travel on a
// carrier (a UDX stream over the current path, direct or relayed, a direct TCP lane, or a relay
// lane); when the path changes, a new carrier is attached and each side resends what the other
// has not acknowledged, from the offsets in frames.ts. Reliability and congestion control stay
// the carrier's; this layer only keeps the unacked tail (bounded: writes wait when it is full),
// drops what arrives twice, and seals every frame (record-cipher.ts), so a carrier sees only
// ciphertext and authenticated headers.
//
// Why one layer, not a session under an encryption stream (secret-stream before): each chunk
// then got one header, one seal and one write instead of a message header, a secret-stream
// record, a session frame and two stream layers with their own buffers, queues and callbacks.
// Measured in bench/streams.bench.ts (README, "Stream speed").
//
// What it guarantees: a frame that does not authenticate ends the stream with a SessionError
// (never passes a byte); on one carrier the DATA frames must follow each other without a gap or
// a repeat (a replayed or reordered frame ends the stream); across carriers a frame already
// delivered (a resend after a move) is dropped after it authenticates. Each side sends a sealed
// PING after keepAliveMs without sending anything, and a stream that hears nothing authentic for
// idleTimeoutMs is destroyed: a carrier to a dead peer is never noticed by an idle stream.
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { dataHead, dataLength, FrameDecoder, FrameError, frameHead, frameValue, FrameType, MAX_RECORD, rstHead } from './frames.js';
import { RecordCipher, RecordError, type StreamKeys } from './record-cipher.js';

export interface SessionOptions {
  /** The stream's keys, from its Noise handshake (noise.ts). */
  readonly keys: StreamKeys;
  /** Most bytes sent but not yet acknowledged; writes wait beyond it. Default 4 MiB. */
  readonly maxUnacked?: number;
  /** Acknowledge after this many new bytes (default 256 KiB: a sixteenth of the unacked bound, one ACK per four full frames)... */
  readonly ackBytes?: number;
  /** ...or this long after the first unacknowledged byte (default 20 ms). */
  readonly ackDelayMs?: number;
  /**
   * How long a carrier may take to deliver the RST of a stream destroyed with an error before it
   * is destroyed anyway (default 2000 ms; a peer that hears it closes its end sooner).
   */
  readonly resetLingerMs?: number;
  /** A PING goes out after this long without sending anything (default 5000 ms). */
  readonly keepAliveMs?: number;
  /**
   * The stream is destroyed after hearing nothing for this long (default 15000 ms; 0: never).
   * It must outlast a path change (about 6.5 s to notice a dead direct path, then the carrier
   * switch). Off once the peer has ended its side: it need not speak any more.
   */
  readonly idleTimeoutMs?: number;
}

/** A DATA frame sent and not yet acknowledged: kept sealed, so a resend repeats the same bytes. */
interface Pending {
  readonly offset: number;
  readonly length: number;
  /** The header (with its tag) and the ciphertext pieces. */
  readonly frame: Buffer[];
}

/** Whether a write to this carrier can still go out (net.Socket, or a UDX stream: streamx). */
function canWrite(c: Duplex): boolean {
  return !c.destroyed && !(c as { destroying?: boolean }).destroying && !c.writableEnded;
}

/**
 * How much a stream, and the sockets joined to it (services.ts), buffer each way before pushing
 * back: a few frames, so that a 64 KiB read does not stop its source by itself.
 */
export const STREAM_HIGH_WATER = 256 << 10;

/** A received body in more pieces than this (UDX packets) is joined before it is opened. */
const MAX_PIECES = 4;

export class SessionError extends Error {
  override readonly name = 'SessionError';
}

export class ResumableSession extends Duplex {
  private carrier: Duplex | null = null;
  private readonly carriers = new Set<Duplex>();
  /** Carriers paused because our reader is slow (UDX streams are streamx: no isPaused()). */
  private readonly paused = new Set<Duplex>();
  private readonly cipher: RecordCipher;
  private sendOffset = 0;
  private ackedOffset = 0;
  private recvOffset = 0;
  private lastAckSent = 0;
  private unacked: Pending[] = [];
  private unackedBytes = 0;
  private blockedWrite: (() => void) | null = null;
  /** The carrier whose 'drain' a blocked write waits for (its own buffer is full). */
  private drainWait: Duplex | null = null;
  private finalCallback: ((err?: Error | null) => void) | null = null;
  private finSent = false;
  private peerFin: number | null = null;
  private ended = false;
  private hardClose = false;
  private ackTimer: NodeJS.Timeout | null = null;
  /** Carriers let go of after a reset, still delivering the RST (each until it closes, or its timer). */
  private readonly resetting = new Map<Duplex, NodeJS.Timeout>();
  /** Liveness: whether a frame went out / an authentic one came in since the last tick, and when. */
  private sent = false;
  private heard = false;
  private sentAt = Date.now();
  private heardAt = Date.now();
  private pings = 0;
  private readonly ticker: NodeJS.Timeout;
  private readonly maxUnacked: number;
  private readonly ackBytes: number;
  private readonly ackDelayMs: number;
  private readonly resetLingerMs: number;
  private readonly keepAliveMs: number;
  private readonly idleTimeoutMs: number;

  constructor(options: SessionOptions) {
    // Buffers of several frames both ways: with Node's default (16 KiB) each 64 KiB chunk would
    // fill them alone, and every chunk would pause and resume the socket on the other side.
    super({ allowHalfOpen: true, readableHighWaterMark: STREAM_HIGH_WATER, writableHighWaterMark: STREAM_HIGH_WATER });
    this.cipher = new RecordCipher(options.keys);
    this.maxUnacked = options.maxUnacked ?? 4 << 20;
    this.ackBytes = options.ackBytes ?? 256 << 10;
    this.ackDelayMs = options.ackDelayMs ?? 20;
    this.resetLingerMs = options.resetLingerMs ?? 2000;
    this.keepAliveMs = options.keepAliveMs ?? 5000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 15_000;
    // One timer per stream, checking flags the data path sets (no clock reads per frame).
    const tickMs = Math.max(10, Math.min(1000, this.keepAliveMs / 2, this.idleTimeoutMs > 0 ? this.idleTimeoutMs / 4 : 1000));
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  /** Bytes held for a possible resend (for limits and tests). */
  get bufferedUnacked(): number {
    return this.unackedBytes;
  }

  /** Both directions are complete: every byte of ours acknowledged, every byte of theirs here. */
  get settled(): boolean {
    return this.ended && this.finSent && this.ackedOffset >= this.sendOffset;
  }

  get hasCarrier(): boolean {
    return this.carrier !== null;
  }

  /** Whether the bytes go out on this carrier now. */
  isCurrent(carrier: Duplex): boolean {
    return this.carrier === carrier;
  }

  /**
   * Moves the stream onto a new carrier: says how far we have received, and resends everything
   * the peer has not acknowledged. Older carriers keep being read (their late bytes are
   * deduplicated) until they close.
   */
  attach(carrier: Duplex): void {
    if (this.destroyed) {
      carrier.destroy();
      return;
    }
    this.carriers.add(carrier);
    this.carrier = carrier;
    /** Where the next DATA frame on this carrier must start (null: none came yet). */
    let next: number | null = null;
    const decoder = new FrameDecoder((head, body) => {
      const type = head[0]!;
      const value = frameValue(head);
      // A frame split over a few reads (most are: a 64 KiB frame never fits one 64 KiB read) is
      // opened piece by piece, with no copy to join them: half the new memory per frame, which
      // is what drives the collector here (join() in services.ts corks the socket the pieces go
      // to, so they still leave in one write). One in many UDX packets is joined first.
      const plain = this.cipher.open(head, body.length > MAX_PIECES ? [Buffer.concat(body)] : body);
      this.heard = true;
      switch (type) {
        case FrameType.Data: {
          const length = dataLength(head);
          if (next !== null && value !== next) throw new FrameError(`DATA at ${value} on a carrier whose previous frame ended at ${next} (replayed or reordered)`);
          next = value + length;
          return this.onData(value, length, plain);
        }
        case FrameType.Hello:
        case FrameType.Ack:
          return this.onAck(value);
        case FrameType.Fin:
          return this.onFin(value);
        case FrameType.Rst: {
          const reason = Buffer.concat(plain).toString('utf8');
          return void this.destroy(new SessionError(`the peer reset the stream${reason ? `: ${reason}` : ''}`));
        }
        case FrameType.Ping:
          return; // authentic, so heard: that is all a keepalive is for
      }
    });
    carrier.on('data', (chunk: Buffer) => {
      // A carrier delivering our RST after the stream was destroyed: what it still reads is moot.
      if (this.destroyed) return;
      try {
        decoder.push(chunk);
      } catch (err) {
        if (err instanceof FrameError) this.destroy(new SessionError(`protocol error: ${err.message}`));
        else if (err instanceof RecordError) this.destroy(new SessionError(`security error: ${err.message}`));
        else this.destroy(err as Error);
      }
    });
    const drop = (): void => {
      this.carriers.delete(carrier);
      this.paused.delete(carrier);
      if (this.carrier === carrier) this.carrier = null;
      this.unblockWrite();
    };
    carrier.on('error', drop);
    carrier.on('close', drop);
    carrier.on('end', () => carrier.end());
    const corks = carrier instanceof Socket;
    if (corks) carrier.cork();
    this.writeControl(carrier, FrameType.Hello, this.recvOffset);
    this.lastAckSent = this.recvOffset;
    for (const p of this.unacked) this.writeFrame(carrier, p.frame);
    if (this.finSent) this.writeControl(carrier, FrameType.Fin, this.sendOffset);
    if (corks) carrier.uncork();
    this.unblockWrite();
  }

  /** Closes carriers that are not the current one (the new path works). */
  retireOldCarriers(): void {
    for (const c of this.carriers) if (c !== this.carrier) c.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendBytes([chunk], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.sendBytes(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finSent = true;
    if (this.carrier) this.writeControl(this.carrier, FrameType.Fin, this.sendOffset);
    // Finished only when the peer has every byte: a carrier closed earlier could lose them.
    if (this.ackedOffset >= this.sendOffset) cb();
    else this.finalCallback = cb;
  }

  override _read(): void {
    for (const c of this.paused) c.resume();
    this.paused.clear();
  }

  /**
   * Ends the stream now, carriers included, without a graceful close (the node is shutting down);
   * also a carrier still delivering the RST of an earlier reset.
   */
  closeNow(): void {
    this.hardClose = true;
    this.destroy();
    for (const [c, timer] of this.resetting) {
      clearTimeout(timer);
      c.destroy();
    }
    this.resetting.clear();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearInterval(this.ticker);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    // An error of ours (not the peer's RST) is told to the peer, on the carrier it reads now
    // (else on the newest one still open), so that its end of the stream goes at once instead of
    // waiting to resume until its idle timeout.
    let resetOn: Duplex | null = null;
    if (err && !this.hardClose && !(err instanceof SessionError && /peer reset/.test(err.message))) {
      resetOn = this.carrier && canWrite(this.carrier) ? this.carrier : null;
      if (!resetOn) for (const c of this.carriers) if (canWrite(c)) resetOn = c;
    }
    for (const c of this.carriers) {
      if (c === resetOn) this.sendReset(c, err!.message);
      else if (err || this.hardClose) c.destroy();
      else c.end();
    }
    this.carriers.clear();
    this.paused.clear();
    this.carrier = null;
    this.unacked = [];
    cb(err);
  }

  /**
   * Seals the written chunks into DATA frames of at most MAX_RECORD bytes (a frame may gather
   * several chunks, a chunk may span frames: no copies either way), keeps them for resends and
   * sends them on the current carrier with one writev.
   */
  private sendBytes(chunks: readonly Buffer[], cb: (err?: Error | null) => void): void {
    const carrier = this.carrier;
    const corks = carrier instanceof Socket;
    if (corks) carrier.cork();
    let group: Buffer[] = [];
    let groupBytes = 0;
    try {
      for (const c of chunks) {
        for (let at = 0; at < c.length; ) {
          const n = Math.min(c.length - at, MAX_RECORD - groupBytes);
          group.push(at === 0 && n === c.length ? c : c.subarray(at, at + n));
          groupBytes += n;
          at += n;
          if (groupBytes === MAX_RECORD) {
            this.sendRecord(group, groupBytes);
            group = [];
            groupBytes = 0;
          }
        }
      }
      if (groupBytes > 0) this.sendRecord(group, groupBytes);
    } catch (err) {
      if (corks) carrier.uncork();
      return cb(err as Error);
    }
    if (corks) carrier.uncork();
    this.blockedWrite = () => cb();
    this.unblockWrite();
  }

  /**
   * Lets the writer go on once the unacked tail is under its bound and the current carrier's own
   * buffer has room. Frames queued in a carrier's buffer live until the kernel takes them: held
   * there by the megabyte behind a slow path, they outlive the collector's young generation and
   * each costs a full collection later; waiting here pauses the source socket instead.
   */
  private unblockWrite(): void {
    if (!this.blockedWrite || this.unackedBytes > this.maxUnacked) return;
    const c = this.carrier;
    if (c && !c.destroyed && c.writableLength > STREAM_HIGH_WATER) {
      if (this.drainWait !== c) {
        this.drainWait = c;
        c.once('drain', () => {
          if (this.drainWait !== c) return;
          this.drainWait = null;
          this.unblockWrite();
        });
      }
      return;
    }
    this.drainWait = null;
    const go = this.blockedWrite;
    this.blockedWrite = null;
    go();
  }

  private sendRecord(plain: Buffer[], length: number): void {
    const offset = this.sendOffset;
    // The nonce is made from the offset (record-cipher.ts): it must never wrap.
    if (offset + length > Number.MAX_SAFE_INTEGER) throw new SessionError('the stream reached its limit of 2^53 bytes; open a new one');
    const head = dataHead(offset, length);
    const frame = this.cipher.seal(head, plain);
    frame.unshift(head);
    this.unacked.push({ offset, length, frame });
    this.unackedBytes += length;
    this.sendOffset += length;
    if (this.carrier) this.writeFrame(this.carrier, frame);
  }

  /** A frame's pieces, as one writev on a TCP carrier (UDX packs small writes by itself). */
  private writeFrame(carrier: Duplex, frame: readonly Buffer[]): void {
    this.sent = true;
    if (frame.length === 1) {
      carrier.write(frame[0]);
      return;
    }
    const corks = carrier instanceof Socket;
    if (corks) carrier.cork();
    for (const piece of frame) carrier.write(piece);
    if (corks) carrier.uncork();
  }

  /** A sealed HELLO, ACK, FIN or PING. */
  private writeControl(carrier: Duplex, type: 1 | 3 | 4 | 6, value: number): void {
    const head = frameHead(type, value);
    this.cipher.seal(head, []);
    this.sent = true;
    carrier.write(head);
  }

  /**
   * Writes the RST and lets the carrier deliver it before it goes. Destroying it in the same turn
   * would lose the frame: a UDX stream (streamx) writes on the next tick, a TCP socket drops what
   * it still holds behind a slow peer (and one closed with unread bytes is reset by the kernel,
   * which drops what it had yet to send). So the carrier is
   * ended (RST, then its own FIN) and closes when the peer, having read the RST, closes its end;
   * a peer that never does has the carrier destroyed after resetLingerMs.
   */
  private sendReset(carrier: Duplex, reason: string): void {
    const r = Buffer.from(reason, 'utf8').subarray(0, 255);
    const head = rstHead(r.length);
    const frame = this.cipher.seal(head, [r]);
    frame.unshift(head);
    this.writeFrame(carrier, frame);
    carrier.end();
    // Read on (into nothing, see attach) so the peer's close is noticed even on a paused carrier.
    carrier.resume();
    const timer = setTimeout(() => carrier.destroy(), this.resetLingerMs);
    timer.unref();
    this.resetting.set(carrier, timer);
    carrier.once('close', () => {
      clearTimeout(timer);
      this.resetting.delete(carrier);
    });
  }

  /** Keepalive and idle timeout, from what the data path noted since the last tick. */
  private tick(): void {
    const now = Date.now();
    if (this.sent) this.sentAt = now;
    // Carriers paused for our slow reader read nothing, the peer's pings included: the peer's
    // silence cannot be judged then (as tcp-lane.ts's closeWhenSilent does for a paused lane).
    if (this.heard || this.paused.size > 0) this.heardAt = now;
    this.sent = this.heard = false;
    if (this.idleTimeoutMs > 0 && !this.ended && now - this.heardAt >= this.idleTimeoutMs) {
      this.destroy(new SessionError(`the peer was silent for ${Math.round((now - this.heardAt) / 1000)} s (it or the path is gone)`));
      return;
    }
    if (this.carrier && now - this.sentAt >= this.keepAliveMs) this.writeControl(this.carrier, FrameType.Ping, this.pings++);
  }

  private onData(offset: number, length: number, plain: Buffer[]): void {
    const end = offset + length;
    if (end <= this.recvOffset) return; // a resend we already have
    if (offset !== this.recvOffset) {
      this.destroy(new SessionError(`protocol error: data at ${offset} but ${this.recvOffset} received`));
      return;
    }
    this.recvOffset = end;
    let more = true;
    for (const p of plain) more = this.push(p);
    if (!more) {
      for (const c of this.carriers) {
        if (!this.paused.has(c)) {
          this.paused.add(c);
          c.pause();
        }
      }
    }
    if (this.recvOffset - this.lastAckSent >= this.ackBytes) this.sendAck();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.sendAck(), this.ackDelayMs);
    this.maybeEnd();
  }

  private sendAck(): void {
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
    }
    if (this.recvOffset === this.lastAckSent || !this.carrier) return;
    this.lastAckSent = this.recvOffset;
    this.writeControl(this.carrier, FrameType.Ack, this.recvOffset);
  }

  private onAck(offset: number): void {
    if (offset > this.sendOffset) {
      this.destroy(new SessionError(`protocol error: ack of ${offset} beyond ${this.sendOffset} sent`));
      return;
    }
    if (offset <= this.ackedOffset) return;
    this.ackedOffset = offset;
    while (this.unacked.length > 0) {
      const p = this.unacked[0]!;
      if (p.offset + p.length > offset) break;
      this.unacked.shift();
      this.unackedBytes -= p.length;
    }
    this.unblockWrite();
    if (this.finalCallback && this.ackedOffset >= this.sendOffset) {
      const done = this.finalCallback;
      this.finalCallback = null;
      done();
    }
  }

  private onFin(offset: number): void {
    if (this.peerFin !== null && this.peerFin !== offset) {
      this.destroy(new SessionError('protocol error: two different ends of stream'));
      return;
    }
    this.peerFin = offset;
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.ended && this.peerFin !== null && this.recvOffset === this.peerFin) {
      this.ended = true;
      this.sendAck();
      this.push(null);
    }
  }
}

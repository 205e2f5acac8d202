// A byte stream that survives the death of the path under it. Its bytes travel on a carrier (a
// UDX stream over the current path, direct or relayed, or a direct TCP lane); when the path changes, a new carrier
// is attached and each side resends what the other has not acknowledged, from the offsets in
// frames.ts. Reliability and congestion control stay UDX's; this layer only keeps the unacked
// tail (bounded: writes wait when it is full) and drops what arrives twice.
//
// It is the raw stream under the encryption (secret-stream), so a carrier sees only ciphertext.
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { encodeDataHeader, encodeOffsetFrame, encodeRst, FrameDecoder, FrameError, FrameType } from './frames.js';

export interface SessionOptions {
  /** Most bytes sent but not yet acknowledged; writes wait beyond it. Default 4 MiB. */
  readonly maxUnacked?: number;
  /** Acknowledge after this many new bytes (default 128 KiB)... */
  readonly ackBytes?: number;
  /** ...or this long after the first unacknowledged byte (default 20 ms). */
  readonly ackDelayMs?: number;
  /**
   * How long a carrier may take to deliver the RST of a stream destroyed with an error before it
   * is destroyed anyway (default 2000 ms; a peer that hears it closes its end sooner).
   */
  readonly resetLingerMs?: number;
}

interface Pending {
  readonly offset: number;
  readonly data: Buffer;
}

/** The most bytes one DATA frame carries (the decoder refuses more than MAX_DATA_FRAME). */
const MAX_FRAME_PAYLOAD = 256 << 10;

/** Received bytes are handed on at the latest when this many have gathered. */
const INBOX_BATCH = 64 << 10;

/** Whether a write to this carrier can still go out (net.Socket, or a UDX stream: streamx). */
function canWrite(c: Duplex): boolean {
  return !c.destroyed && !(c as { destroying?: boolean }).destroying && !c.writableEnded;
}

export class SessionError extends Error {
  override readonly name = 'SessionError';
}

export class ResumableSession extends Duplex {
  private carrier: Duplex | null = null;
  private readonly carriers = new Set<Duplex>();
  /** Carriers paused because our reader is slow (UDX streams are streamx: no isPaused()). */
  private readonly paused = new Set<Duplex>();
  private sendOffset = 0;
  private ackedOffset = 0;
  private recvOffset = 0;
  private lastAckSent = 0;
  private unacked: Pending[] = [];
  private unackedBytes = 0;
  private blockedWrite: (() => void) | null = null;
  private finalCallback: ((err?: Error | null) => void) | null = null;
  private finSent = false;
  private peerFin: number | null = null;
  private ended = false;
  private hardClose = false;
  private inbox: Buffer[] = [];
  private inboxBytes = 0;
  private inboxScheduled = false;
  private ackTimer: NodeJS.Timeout | null = null;
  /** Carriers let go of after a reset, still delivering the RST (each until it closes, or its timer). */
  private readonly resetting = new Map<Duplex, NodeJS.Timeout>();
  private readonly maxUnacked: number;
  private readonly ackBytes: number;
  private readonly ackDelayMs: number;
  private readonly resetLingerMs: number;

  constructor(options: SessionOptions = {}) {
    super({ allowHalfOpen: true });
    this.maxUnacked = options.maxUnacked ?? 4 << 20;
    this.ackBytes = options.ackBytes ?? 128 << 10;
    this.ackDelayMs = options.ackDelayMs ?? 20;
    this.resetLingerMs = options.resetLingerMs ?? 2000;
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
    const decoder = new FrameDecoder({
      hello: (off) => this.onAck(off),
      ack: (off) => this.onAck(off),
      data: (off, bytes) => this.onData(off, bytes),
      fin: (off) => this.onFin(off),
      rst: (reason) => this.destroy(new SessionError(`the peer reset the stream${reason ? `: ${reason}` : ''}`)),
    });
    carrier.on('data', (chunk: Buffer) => {
      // A carrier delivering our RST after the stream was destroyed: what it still reads is moot.
      if (this.destroyed) return;
      try {
        decoder.push(chunk);
      } catch (err) {
        this.destroy(err instanceof FrameError ? new SessionError(`protocol error: ${err.message}`) : (err as Error));
      }
    });
    const drop = (): void => {
      this.carriers.delete(carrier);
      this.paused.delete(carrier);
      if (this.carrier === carrier) this.carrier = null;
    };
    carrier.on('error', drop);
    carrier.on('close', drop);
    carrier.on('end', () => carrier.end());
    carrier.write(encodeOffsetFrame(FrameType.Hello, this.recvOffset));
    this.lastAckSent = this.recvOffset;
    for (const p of this.unacked) this.writeData(carrier, p.offset, p.data);
    if (this.finSent) carrier.write(encodeOffsetFrame(FrameType.Fin, this.sendOffset));
  }

  /** Closes carriers that are not the current one (the new path works). */
  retireOldCarriers(): void {
    for (const c of this.carriers) if (c !== this.carrier) c.destroy();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const p: Pending = { offset: this.sendOffset, data: chunk };
    this.unacked.push(p);
    this.unackedBytes += chunk.length;
    this.sendOffset += chunk.length;
    if (this.carrier) this.writeData(this.carrier, p.offset, chunk);
    if (this.unackedBytes <= this.maxUnacked) cb();
    else this.blockedWrite = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finSent = true;
    this.carrier?.write(encodeOffsetFrame(FrameType.Fin, this.sendOffset));
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
   * Writes the RST and lets the carrier deliver it before it goes. Destroying it in the same turn
   * would lose the frame: a UDX stream (streamx) writes on the next tick, a TCP socket drops what
   * it still holds behind a slow peer (and one closed with unread bytes is reset by the kernel,
   * which drops what it had yet to send). So the carrier is
   * ended (RST, then its own FIN) and closes when the peer, having read the RST, closes its end;
   * a peer that never does has the carrier destroyed after resetLingerMs.
   */
  private sendReset(carrier: Duplex, reason: string): void {
    carrier.write(encodeRst(reason));
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

  private writeData(carrier: Duplex, offset: number, data: Buffer): void {
    // Two writes per frame, no copy: UDX packs small writes together into its packets, and a TCP
    // lane (a net.Socket, which can cork) sends them with one writev. A write larger than a frame
    // may be (one big write() into the stream) goes as several frames.
    const corks = carrier instanceof Socket;
    if (corks) carrier.cork();
    for (let at = 0; at < data.length; at += MAX_FRAME_PAYLOAD) {
      const piece = at === 0 && data.length <= MAX_FRAME_PAYLOAD ? data : data.subarray(at, at + MAX_FRAME_PAYLOAD);
      carrier.write(encodeDataHeader(offset + at, piece.length));
      carrier.write(piece);
    }
    if (corks) carrier.uncork();
  }

  /**
   * Hands received bytes to the reader in batches: UDX delivers one packet (about 1.2 KB) at a
   * time, and a push per packet through two stream layers costs more than one copy per batch.
   */
  private flushInbox(): void {
    this.inboxScheduled = false;
    if (this.inbox.length === 0 || this.destroyed) return;
    const batch = this.inbox.length === 1 ? this.inbox[0]! : Buffer.concat(this.inbox, this.inboxBytes);
    this.inbox = [];
    this.inboxBytes = 0;
    if (!this.push(batch)) {
      for (const c of this.carriers) {
        if (!this.paused.has(c)) {
          this.paused.add(c);
          c.pause();
        }
      }
    }
  }

  private onData(offset: number, bytes: Buffer): void {
    const end = offset + bytes.length;
    if (end <= this.recvOffset) return; // a resend we already have
    if (offset > this.recvOffset) {
      this.destroy(new SessionError(`protocol error: data at ${offset} but only ${this.recvOffset} received`));
      return;
    }
    const fresh = offset < this.recvOffset ? bytes.subarray(this.recvOffset - offset) : bytes;
    this.recvOffset = end;
    this.inbox.push(fresh);
    this.inboxBytes += fresh.length;
    if (this.inboxBytes >= INBOX_BATCH) this.flushInbox();
    else if (!this.inboxScheduled) {
      this.inboxScheduled = true;
      setImmediate(() => this.flushInbox());
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
    this.carrier.write(encodeOffsetFrame(FrameType.Ack, this.recvOffset));
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
      if (p.offset + p.data.length > offset) break;
      this.unacked.shift();
      this.unackedBytes -= p.data.length;
    }
    if (this.blockedWrite && this.unackedBytes <= this.maxUnacked) {
      const go = this.blockedWrite;
      this.blockedWrite = null;
      go();
    }
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
      this.flushInbox();
      this.push(null);
    }
  }
}

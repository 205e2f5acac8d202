// STUN client transactions over a UDP socket that the caller owns. Later layers share one socket
// for STUN, disco and data, so the client never reads the socket itself unless asked to
// (attach): the owner hands it every datagram that looks like STUN, and responses are matched
// to requests by transaction id alone. Matching by source address would break RFC 5780
// CHANGE-REQUEST probes, whose answers come from another address; a 96-bit random transaction id
// cannot be guessed by an off-path sender.
import { randomBytes } from 'node:crypto';
import type { Socket, RemoteInfo } from 'node:dgram';
import { Attr, METHOD_BINDING } from './constants.js';
import { encodeMessage } from './encode.js';
import { decodeMessage, findAttribute, looksLikeStun, type StunMessage } from './message.js';
import { readAddress, readAttribute, type Attribute, type TransportAddress } from './attributes.js';
import { RetransmitSchedule } from './retransmit.js';
import { RtoEstimator } from './rto.js';
import { StunDecodeError } from './errors.js';
import { formatEndpoint } from '../net/endpoint.js';

/** Where to send a request: a literal IP and a port. */
export interface StunTarget {
  readonly address: string;
  readonly port: number;
}

export interface BindingResult {
  /** Our address as the server saw it (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from old servers). */
  readonly mapped: TransportAddress;
  /** The server's RESPONSE-ORIGIN (RFC 5780), or null. */
  readonly responseOrigin: TransportAddress | null;
  /** The server's OTHER-ADDRESS (RFC 5780; CHANGED-ADDRESS from RFC 3489 servers), or null. */
  readonly otherAddress: TransportAddress | null;
  /** Where the response actually came from. */
  readonly from: TransportAddress;
  /** Time from the last transmission to the response; only meaningful if transmissions is 1. */
  readonly rttMs: number;
  readonly transmissions: number;
  readonly response: StunMessage;
}

export class StunTimeoutError extends Error {
  override readonly name = 'StunTimeoutError';
}

export class StunErrorResponse extends Error {
  override readonly name = 'StunErrorResponse';
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`server answered with error ${code}${reason ? ` (${reason})` : ''}`);
  }
}

export interface RequestOptions {
  /** Extra attributes for the request (e.g. CHANGE-REQUEST). */
  readonly attributes?: readonly Attribute[];
  /** Overrides the estimated RTO for this transaction. */
  readonly rtoMs?: number;
  /** Total time budget for this transaction in ms (the RFC schedule lasts 39.5 s by default). */
  readonly timeoutMs?: number;
  readonly rc?: number;
  readonly rm?: number;
  readonly signal?: AbortSignal;
}

/** The socket operations the client needs; a dgram.Socket has them. */
export interface DatagramSender {
  send(msg: Uint8Array, port: number, address: string): void;
}

/** The clock and timers, injectable so tests can drive retransmissions without sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Pending {
  readonly resolve: (r: BindingResult) => void;
  readonly reject: (e: Error) => void;
  readonly schedule: RetransmitSchedule;
  readonly request: Buffer;
  readonly target: StunTarget;
  lastSentAt: number;
  timer: unknown;
  readonly onAbort: (() => void) | null;
  readonly signal: AbortSignal | undefined;
}

export interface StunClientOptions {
  readonly clock?: Clock;
  /** Initial RTO in ms (default 500, RFC 8489). */
  readonly rtoMs?: number;
  /** Add FINGERPRINT to requests, so that servers and peers sharing a port can tell STUN apart. */
  readonly fingerprint?: boolean;
}

export class StunClient {
  private readonly pending = new Map<string, Pending>();
  private readonly clock: Clock;
  /** RTO per server address, cached across transactions as RFC 8489 recommends. */
  private readonly rtos = new Map<string, RtoEstimator>();
  private readonly initialRto: number;
  private readonly fingerprint: boolean;
  private detach: (() => void) | null = null;

  constructor(
    private readonly socket: DatagramSender,
    options: StunClientOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.initialRto = options.rtoMs ?? 500;
    this.fingerprint = options.fingerprint ?? true;
  }

  /** Listens on a dgram socket for responses (for callers that don't route datagrams themselves). */
  attach(socket: Socket): this {
    const listener = (msg: Buffer, rinfo: RemoteInfo): void => {
      this.handleDatagram(msg, rinfo);
    };
    socket.on('message', listener);
    this.detach = () => socket.off('message', listener);
    return this;
  }

  /** Number of transactions in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The RTO this client would start a transaction to `target` with. */
  rtoFor(target: StunTarget): number {
    return this.estimator(target).current;
  }

  /**
   * Offers a datagram to the client. Returns true if it answered one of our transactions (the
   * caller should not process it further), false otherwise.
   */
  handleDatagram(buf: Uint8Array, from: { address: string; port: number }): boolean {
    if (!looksLikeStun(buf) || this.pending.size === 0) return false;
    const key = Buffer.from(buf.buffer, buf.byteOffset + 8, 12).toString('latin1');
    const p = this.pending.get(key);
    if (!p) return false;
    let msg: StunMessage;
    try {
      msg = decodeMessage(buf);
    } catch (err) {
      if (err instanceof StunDecodeError) return true; // ours by id, but mangled: keep waiting
      throw err;
    }
    if (msg.cls !== 'success' && msg.cls !== 'error') return false;
    const now = this.clock.now();
    this.finish(key, p);
    try {
      if (msg.cls === 'error') {
        const a = findAttribute(msg, Attr.ErrorCode);
        const e = a ? readAttribute(msg, a) : null;
        if (e && e.type === 'ERROR-CODE') p.reject(new StunErrorResponse(e.code, e.reason));
        else p.reject(new StunErrorResponse(0, 'error response without ERROR-CODE'));
        return true;
      }
      const rttMs = now - p.lastSentAt;
      if (p.schedule.transmissions === 1) this.estimator(p.target).sample(rttMs);
      p.resolve(bindingResult(msg, from, rttMs, p.schedule.transmissions));
    } catch (err) {
      p.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return true;
  }

  /** Sends a Binding request and resolves with the response, retransmitting as RFC 8489 says. */
  binding(target: StunTarget, options: RequestOptions = {}): Promise<BindingResult> {
    const tid = randomBytes(12);
    const request = encodeMessage(
      { method: METHOD_BINDING, cls: 'request', transactionId: tid, attributes: options.attributes ?? [] },
      { fingerprint: this.fingerprint },
    );
    const key = tid.toString('latin1');
    return new Promise<BindingResult>((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new StunTimeoutError('aborted'));
        return;
      }
      const now = this.clock.now();
      const schedule = new RetransmitSchedule(now, {
        rtoMs: options.rtoMs ?? this.rtoFor(target),
        ...(options.rc !== undefined ? { rc: options.rc } : {}),
        ...(options.rm !== undefined ? { rm: options.rm } : {}),
        ...(options.timeoutMs !== undefined ? { deadlineMs: options.timeoutMs } : {}),
      });
      const onAbort = options.signal
        ? () => {
            const p = this.pending.get(key);
            if (p) {
              this.finish(key, p);
              reject(new StunTimeoutError('aborted'));
            }
          }
        : null;
      const p: Pending = {
        resolve,
        reject,
        schedule,
        request,
        target,
        lastSentAt: now,
        timer: null,
        onAbort,
        signal: options.signal,
      };
      this.pending.set(key, p);
      if (onAbort) options.signal?.addEventListener('abort', onAbort, { once: true });
      this.tick(key, p);
    });
  }

  /** Fails every transaction in flight and stops listening. The socket stays the caller's. */
  close(): void {
    for (const [key, p] of this.pending) {
      this.finish(key, p);
      p.reject(new StunTimeoutError('client closed'));
    }
    this.detach?.();
    this.detach = null;
  }

  private tick(key: string, p: Pending): void {
    const now = this.clock.now();
    const step = p.schedule.step(now);
    if (step.action === 'timeout') {
      this.finish(key, p);
      const n = p.schedule.transmissions;
      p.reject(
        new StunTimeoutError(
          `no answer from ${formatEndpoint(p.target.address, p.target.port)} after ${n} request${n === 1 ? '' : 's'} in ${Math.round(now - p.schedule.startedAt)} ms`,
        ),
      );
      return;
    }
    if (step.action === 'send') {
      p.lastSentAt = now;
      try {
        this.socket.send(p.request, p.target.port, p.target.address);
      } catch (err) {
        this.finish(key, p);
        p.reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
    p.timer = this.clock.setTimeout(() => this.tick(key, p), Math.max(0, step.nextAt - now));
  }

  private finish(key: string, p: Pending): void {
    this.pending.delete(key);
    if (p.timer !== null) this.clock.clearTimeout(p.timer);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
  }

  private estimator(target: StunTarget): RtoEstimator {
    let e = this.rtos.get(target.address);
    if (!e) {
      if (this.rtos.size >= 256) this.rtos.clear(); // bounded: a long-lived node talks to few servers
      e = new RtoEstimator({ initialMs: this.initialRto });
      this.rtos.set(target.address, e);
    }
    return e;
  }
}

/** Pulls the addresses out of a Binding success response. */
export function bindingResult(
  msg: StunMessage,
  from: { address: string; port: number },
  rttMs: number,
  transmissions: number,
): BindingResult {
  const xor = findAttribute(msg, Attr.XorMappedAddress);
  const plain = findAttribute(msg, Attr.MappedAddress);
  let mapped: TransportAddress;
  if (xor) mapped = readAddress(msg, xor, true);
  else if (plain) mapped = readAddress(msg, plain, false);
  else throw new StunDecodeError('Binding response has neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS', 20);
  const origin = findAttribute(msg, Attr.ResponseOrigin) ?? findAttribute(msg, Attr.SourceAddress);
  const other = findAttribute(msg, Attr.OtherAddress) ?? findAttribute(msg, Attr.ChangedAddress);
  return {
    mapped,
    responseOrigin: origin ? readAddress(msg, origin, false) : null,
    otherAddress: other ? readAddress(msg, other, false) : null,
    from: { family: from.address.includes(':') ? 6 : 4, address: from.address, port: from.port },
    rttMs,
    transmissions,
    response: msg,
  };
}

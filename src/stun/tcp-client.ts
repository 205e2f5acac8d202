// A Binding transaction over TCP (RFC 8489 section 6.2.2): no retransmissions, the stream is
// reliable; the transaction fails if no response arrives within the timeout (Ti, 39.5 s default).
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { METHOD_BINDING } from './constants.js';
import { encodeMessage } from './encode.js';
import { decodeMessage } from './message.js';
import { StunStreamDecoder } from './framing.js';
import { bindingResult, StunErrorResponse, StunTimeoutError, type BindingResult, type StunTarget } from './client.js';
import { findAttribute } from './message.js';
import { Attr } from './constants.js';
import { readAttribute } from './attributes.js';
import { formatEndpoint } from '../net/endpoint.js';

export interface TcpBindingOptions {
  readonly timeoutMs?: number;
  readonly localPort?: number;
}

export interface TcpBindingResult extends BindingResult {
  readonly local: { address: string; port: number };
}

export function bindingOverTcp(target: StunTarget, options: TcpBindingOptions = {}): Promise<TcpBindingResult> {
  const timeoutMs = options.timeoutMs ?? 39_500;
  const tid = randomBytes(12);
  const request = encodeMessage(
    { method: METHOD_BINDING, cls: 'request', transactionId: tid, attributes: [] },
    { fingerprint: true },
  );
  return new Promise<TcpBindingResult>((resolve, reject) => {
    const started = performance.now();
    let sentAt = started;
    const decoder = new StunStreamDecoder();
    const sock: Socket = connect({
      host: target.address,
      port: target.port,
      ...(options.localPort ? { localPort: options.localPort } : {}),
    });
    const done = (err: Error | null, result?: TcpBindingResult): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else if (result) resolve(result);
    };
    const timer = setTimeout(
      () => done(new StunTimeoutError(`no answer from ${formatEndpoint(target.address, target.port)} over TCP in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.once('connect', () => {
      sentAt = performance.now();
      sock.write(request);
    });
    sock.on('error', (err) => done(new Error(`TCP connection to ${formatEndpoint(target.address, target.port)} failed: ${err.message}`)));
    sock.on('close', () => done(new Error(`${formatEndpoint(target.address, target.port)} closed the TCP connection without answering`)));
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const raw of decoder.push(chunk)) {
          const msg = decodeMessage(raw);
          if (!Buffer.from(msg.transactionId).equals(tid)) continue;
          if (msg.cls === 'error') {
            const a = findAttribute(msg, Attr.ErrorCode);
            const e = a ? readAttribute(msg, a) : null;
            done(e && e.type === 'ERROR-CODE' ? new StunErrorResponse(e.code, e.reason) : new StunErrorResponse(0, ''));
            return;
          }
          if (msg.cls !== 'success') continue;
          const r = bindingResult(msg, { address: sock.remoteAddress ?? target.address, port: sock.remotePort ?? target.port }, performance.now() - sentAt, 1);
          done(null, { ...r, local: { address: sock.localAddress ?? '', port: sock.localPort ?? 0 } });
          return;
        }
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

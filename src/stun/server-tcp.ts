// STUN over TCP (RFC 8489 section 6.2.2): messages back to back on the stream, each one's length
// field telling where it ends. A connection is closed, never resynchronised, when the stream stops
// looking like STUN, when a message is larger than we accept, when the client stops reading, or
// when it has been idle too long.
import net from 'node:net';
import { HEADER_LENGTH } from './constants.js';
import type { Responder } from './server-respond.js';
import type { SourceRateLimiter } from './server-rate-limit.js';
import type { ServerMetrics } from './server-metrics.js';

export interface TcpLimits {
  /** Largest STUN message accepted, header included; also bounds each connection's buffer. */
  readonly maxMessage: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** Unsent response bytes after which a client that does not read is disconnected. */
  readonly maxPendingWrite: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  maxMessage: 2048,
  idleTimeoutMs: 30_000,
  maxConnections: 1024,
  maxPendingWrite: 64 * 1024,
};

export interface TcpServeOptions {
  readonly address: string;
  readonly port: number;
  /** False in cluster workers: the listening socket is shared through the primary. */
  readonly exclusive: boolean;
  readonly responder: Responder;
  readonly limiter: SourceRateLimiter;
  readonly metrics: ServerMetrics;
  readonly limits: TcpLimits;
}

export interface TcpStunServer {
  readonly port: number;
  close(): Promise<void>;
}

export function serveTcp(options: TcpServeOptions): Promise<TcpStunServer> {
  const { responder, limiter, metrics, limits } = options;
  const tally = metrics.tcp;
  const open = new Set<net.Socket>();
  const source = { family: 4 as 4 | 6, address: '', port: 0 };

  const onConnection = (socket: net.Socket): void => {
    open.add(socket);
    metrics.tcpConnections++;
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => undefined); // resets by the peer are normal; close follows
    socket.on('close', () => {
      open.delete(socket);
      metrics.tcpConnections--;
    });
    const remote = socket.remoteAddress ?? '';
    const mapped = remote.startsWith('::ffff:') && remote.includes('.');
    const family: 4 | 6 = socket.remoteFamily === 'IPv4' || mapped ? 4 : 6;
    const address = mapped ? remote.slice(7) : remote;
    const port = socket.remotePort ?? 0;
    let pending: Buffer = Buffer.alloc(0);

    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let pos = 0;
      while (pending.length - pos >= 4) {
        if ((pending[pos]! & 0xc0) !== 0) {
          // Not STUN: there is no way to find the next message boundary.
          tally.requests++;
          tally.malformed++;
          socket.destroy();
          return;
        }
        const size = HEADER_LENGTH + pending.readUInt16BE(pos + 2);
        if (size > limits.maxMessage) {
          tally.requests++;
          tally.tcpOversize++;
          socket.destroy();
          return;
        }
        if (pending.length - pos < size) break;
        const msg = pending.subarray(pos, pos + size);
        pos += size;
        tally.requests++;
        if (limiter.enabled && !limiter.allow(address)) {
          tally.rateLimited++;
          continue;
        }
        source.family = family;
        source.address = address;
        source.port = port;
        const out = responder.respond(msg, source, 0);
        if (out.kind === 'drop') {
          tally.drop(out.reason);
          continue;
        }
        if (out.error) tally.error++;
        else tally.success++;
        // write() may hold the buffer until the kernel takes it, so the scratch bytes are copied.
        socket.write(Buffer.from(responder.scratch.subarray(0, out.length)));
        if (socket.writableLength > limits.maxPendingWrite) {
          socket.destroy();
          return;
        }
      }
      // Keep only the unfinished message, copied so the chunk it came from can be freed.
      pending = pos === 0 ? pending : Buffer.from(pending.subarray(pos));
    });
  };

  const server = net.createServer(onConnection);
  server.maxConnections = limits.maxConnections;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.address, port: options.port, exclusive: options.exclusive }, () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : options.port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of open) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

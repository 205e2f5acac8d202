// What an agent does with an accepted stream: connect it to a TCP target inside the workspace, or
// run a speed test. Half-close and resets pass through as TCP users expect: a FIN becomes a FIN,
// an error on either side destroys the other.
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { StreamRequest } from './request.js';
import type { AcceptDecision } from './streams.js';
import type { AllowList } from './allow-list.js';
import { STREAM_HIGH_WATER } from './session.js';


export const TARGET_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Corks `to` for the rest of this tick whenever `from` has data for it: what a stream delivers
 * in one go (a frame opened in pieces, several frames from one read) then leaves in one writev
 * instead of one write each.
 */
function corkPerTick(from: Duplex, to: Duplex): void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    to.uncork();
  };
  // Before pipe's own listener, which writes the chunk.
  from.prependListener('data', () => {
    if (corked || to.writableEnded || to.destroyed) return;
    corked = true;
    to.cork();
    process.nextTick(uncork);
  });
}

/** Joins two duplexes both ways, keeping half-close; an error on one destroys the other. */
export function join(a: Duplex, b: Duplex): void {
  corkPerTick(a, b);
  corkPerTick(b, a);
  a.pipe(b);
  b.pipe(a);
  a.on('error', (err) => b.destroy(err));
  b.on('error', (err) => a.destroy(err));
  a.on('close', () => {
    if (!b.destroyed && !b.writableEnded) b.destroy();
  });
  b.on('close', () => {
    if (!a.destroyed && !a.writableEnded) a.destroy();
  });
}

function connectTarget(address: string, port: number): Promise<Socket | { error: string }> {
  return new Promise((resolve) => {
    // net.Socket passes the high-water marks on to its streams; NetConnectOpts does not list them.
    const options = { host: address, port, allowHalfOpen: true, readableHighWaterMark: STREAM_HIGH_WATER, writableHighWaterMark: STREAM_HIGH_WATER };
    const sock = connect(options);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ error: `connecting to ${address}:${port} timed out` });
    }, TARGET_CONNECT_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: `cannot connect to ${address}:${port} on the agent: ${err.code ?? err.message}` });
    });
  });
}

const SPEEDTEST_CHUNK = Buffer.alloc(64 << 10, 0x5a);

function speedtest(stream: Duplex, direction: 'download' | 'upload', seconds: number): void {
  stream.on('error', () => undefined);
  if (direction === 'upload') {
    stream.resume(); // swallow
    stream.on('end', () => stream.end());
    return;
  }
  const until = Date.now() + seconds * 1000;
  const pump = (): void => {
    while (Date.now() < until) {
      if (!stream.write(SPEEDTEST_CHUNK)) {
        stream.once('drain', pump);
        return;
      }
    }
    stream.end();
  };
  stream.resume();
  pump();
}

/** The agent's answer to a request, for StreamManager's `accept`. */
export async function serveRequest(request: StreamRequest, allow: AllowList): Promise<AcceptDecision> {
  if (request.kind === 'speedtest') {
    return { ok: true, take: (s) => speedtest(s, request.direction, request.seconds) };
  }
  const checked = await allow.check(request.target);
  if ('error' in checked) return { ok: false, error: checked.error };
  const sock = await connectTarget(checked.address, checked.port);
  if ('error' in sock) return { ok: false, error: sock.error };
  return { ok: true, take: (stream) => join(stream, sock), abandon: () => sock.destroy() };
}

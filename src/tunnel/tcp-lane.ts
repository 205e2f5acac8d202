// A TCP lane: a direct TCP connection between two peers, opened by TCP simultaneous open, that
// carries a stream's bytes instead of its UDX carrier.
//
// Why: UDX sends one datagram of at most 1.5 KB per system call, and every datagram (and every
// UDX acknowledgement, one per packet) makes its own trip through the kernel and each NAT on the
// way. TCP hands the kernel 64 KB at a time and is segmented as late as possible, so on the same
// direct path it moves several times more bytes per CPU second. The UDX carrier stays: the lane
// is an upgrade tried once a stream runs on a direct path, and the stream falls back to UDX when
// the lane cannot open or dies.
//
// How: the client picks a free local port and sends it, with a random token, in a sealed disco
// message; the agent answers with its own port and token, and the port of a listener it opened.
// Then, at about the same time:
//   - both connect from their port to the other's public IP (the direct path's) and port. A NAT
//     that keeps the local port as the public one (most home routers, Linux MASQUERADE) lets the
//     two SYNs cross: each side's SYN opens its own NAT for the other's, and the kernels complete
//     a TCP simultaneous open;
//   - the client also connects to the agent's listener, which is what works when nothing
//     between them drops unsolicited SYNs (same host, same LAN, an agent with a public address):
//     there the first SYN of a simultaneous open is answered with a reset.
// The first connection that proves itself wins; the others are closed. A NAT that picks another
// port makes the attempt fail within its timeout, and the stream stays on UDX.
//
// Who, and which: on every candidate connection the client speaks first, with the token the agent
// sent in its sealed message. The agent takes the first connection that shows it, answers on that
// one only with the client's token, and closes the rest; the client takes the connection that
// answers. So both ends pick the same connection, a connection from anyone but the peer is
// closed before a byte of the stream reaches it, and the agent never tells a stranger anything
// (the stream's bytes are sealed frames anyway, frames.ts).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';

export class LaneError extends Error {
  override readonly name = 'LaneError';
}

/**
 * A local TCP port that is free right now, for a lane to connect from. The small race (another
 * socket taking it before we bind) only fails that lane attempt.
 */
export async function reserveLanePort(): Promise<number> {
  const probe = await LaneListener.open();
  probe.close();
  return probe.port;
}

/** The agent's listener for one lane attempt: accepts a few connections, for a short time. */
export class LaneListener {
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static open(): Promise<LaneListener> {
    return new Promise((resolve, reject) => {
      // A handful of connections at most: one is the client's, the rest are strangers.
      const server = createServer({ pauseOnConnect: true });
      server.maxConnections = 4;
      server.once('error', reject);
      server.listen(0, () => {
        const a = server.address();
        if (typeof a === 'object' && a) resolve(new LaneListener(server, a.port));
        else reject(new LaneError('no free TCP port'));
      });
    });
  }

  close(): void {
    this.server.close();
  }
}

export interface LaneAttempt {
  /** Our local port for the simultaneous open (the one we told the peer). */
  readonly localPort: number;
  /** The peer's public IP and the port it told us. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Client: the agent's listener port, tried as well. */
  readonly remoteListenPort?: number;
  /** Agent: its listener, whose connections are candidates as well. */
  readonly listener?: LaneListener;
  /** What we must receive first (we sent it to the peer). */
  readonly ownToken: Uint8Array;
  /** What we send (the peer sent it to us). */
  readonly peerToken: Uint8Array;
  /** The client sends its proof at once; the agent answers on the connection it takes. */
  readonly role: 'client' | 'agent';
  /** Give up after this long (ms). */
  readonly timeoutMs: number;
}

/**
 * Destroys a lane on which nothing has arrived for `silentMs` (checked each second). What we
 * hear, not what we send: writes into a dead lane still succeed into the kernel's buffer, so
 * socket.setTimeout(), which counts them, would never fire. A lane paused because our reader is
 * slow reads nothing, which is not the peer's silence.
 */
export function closeWhenSilent(sock: Socket, silentMs: number, onSilent: () => void): void {
  let read = sock.bytesRead;
  let heard = Date.now();
  const watch = setInterval(() => {
    if (sock.bytesRead !== read || sock.isPaused()) {
      read = sock.bytesRead;
      heard = Date.now();
    } else if (Date.now() - heard > silentMs) {
      onSilent();
      sock.destroy();
    }
  }, 1000);
  watch.unref();
  sock.once('close', () => clearInterval(watch));
}

class WrongLaneToken extends LaneError {}

/**
 * The lane's proof, on one connection: the client sends the token the agent gave it, the agent
 * checks it and answers with the client's. Resolves (the socket paused, any bytes after the token
 * put back) when the peer's token has arrived and matched; rejects with WrongLaneToken when it
 * does not match. Whatever else happens to the socket (an error, a close, a timeout) is the
 * caller's to watch.
 */
export function proveLane(sock: Socket, a: Pick<LaneAttempt, 'role' | 'ownToken' | 'peerToken'>): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let got: Buffer = Buffer.alloc(0);
    const speaksFirst = a.role === 'client';
    if (speaksFirst) sock.write(a.peerToken);
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      if (got.length < a.ownToken.length) return;
      sock.off('data', onData);
      sock.pause();
      if (!timingSafeEqual(got.subarray(0, a.ownToken.length), a.ownToken)) return reject(new WrongLaneToken('the peer sent the wrong token'));
      if (!speaksFirst) sock.write(a.peerToken);
      const rest = got.subarray(a.ownToken.length);
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
    sock.resume();
  });
}

/** Refused or reset before the peer's SYN opened the way: try again after a short pause. */
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EADDRNOTAVAIL', 'EHOSTUNREACH', 'ENETUNREACH']);
const RETRY_MS = 40;

/**
 * Opens the lane: tries every candidate (connecting again while refused) until one connection
 * stands and the peer has proved itself with our token. Resolves with that socket, paused, any
 * bytes after the token put back; rejects with a LaneError after timeoutMs or on abort.
 */
export function openLane(a: LaneAttempt, signal?: AbortSignal): Promise<Socket> {
  const deadline = Date.now() + a.timeoutMs;
  return new Promise<Socket>((resolve, reject) => {
    const sockets = new Set<Socket>();
    const timers = new Set<NodeJS.Timeout>();
    let settled = false;
    let lastError = '';
    /** Outlives later errors: the reason that matters most when the attempt times out. */
    let wrongToken = false;
    const finish = (err: Error | null, winner?: Socket): void => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      for (const t of timers) clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
      a.listener?.close();
      for (const s of sockets) if (s !== winner) s.destroy();
      if (err) reject(err);
      else resolve(winner!);
    };
    const overall = setTimeout(
      () => {
        const why = wrongToken ? 'a connection sent the wrong token' : lastError;
        finish(new LaneError(`no TCP lane to ${a.remoteAddress}:${a.remotePort} within ${a.timeoutMs} ms${why ? ` (${why})` : ''}`));
      },
      a.timeoutMs,
    );
    const onAbort = (): void => finish(new LaneError('cancelled'));
    signal?.addEventListener('abort', onAbort);

    /** Reads the token; on a match this socket wins. */
    const authenticate = (sock: Socket): void => {
      proveLane(sock, a).then(
        () => {
          sock.removeAllListeners('error');
          sock.removeAllListeners('close');
          sockets.delete(sock);
          finish(null, sock);
        },
        (err: Error) => {
          if (err instanceof WrongLaneToken) wrongToken = true;
          sock.destroy();
        },
      );
    };

    const dial = (port: number, localPort: number | undefined): void => {
      if (settled) return;
      const sock = connect({ host: a.remoteAddress, port, noDelay: true, ...(localPort ? { localPort } : {}) });
      sockets.add(sock);
      sock.on('error', (err: NodeJS.ErrnoException) => {
        sockets.delete(sock);
        sock.destroy();
        lastError = err.message;
        if (settled) return;
        if (err.code && RETRYABLE.has(err.code) && Date.now() + RETRY_MS < deadline) {
          // Jittered, so two sides that keep resetting each other do not stay in step.
          const t = setTimeout(() => {
            timers.delete(t);
            dial(port, localPort);
          }, RETRY_MS * (0.5 + Math.random()));
          timers.add(t);
        }
      });
      sock.on('close', () => sockets.delete(sock));
      sock.once('connect', () => authenticate(sock));
    };

    if (a.listener) {
      a.listener.server.on('connection', (sock: Socket) => {
        if (settled) return void sock.destroy();
        sock.setNoDelay(true);
        sockets.add(sock);
        sock.on('error', () => sock.destroy());
        sock.on('close', () => sockets.delete(sock));
        authenticate(sock);
      });
    }
    dial(a.remotePort, a.localPort);
    if (a.remoteListenPort) dial(a.remoteListenPort, undefined);
  });
}

/** A lane's remote end as endpoint text ("ip:port", "[v6]:port"), or null once it no longer knows. */
export function laneEndpoint(sock: Socket): string | null {
  const { remoteAddress: a, remotePort: p } = sock;
  if (!a || !p) return null;
  return a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`;
}

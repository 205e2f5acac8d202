// The UDP side of the STUN server: binding one socket (or four, in RFC 5780 mode) and the
// per-datagram path, which is written to allocate as little as Node lets it.
//
// Why the send path looks the way it does:
// - Sockets get a lookup function that answers synchronously. Node's default is dns.lookup, which
//   for an IP literal still defers the send to process.nextTick; ours lets send() run at once.
// - The response is written into the responder's scratch buffer, and send() is given a cached view
//   of it. Node's UDP send first tries uv_udp_try_send, which hands the bytes to the kernel
//   before send() returns; only when the socket buffer is full does it queue the send and keep a
//   reference to our buffer. getSendQueueCount() tells us that happened, and then the scratch
//   buffer is abandoned to the queued send and a fresh one is used from the next packet on.
import dgram from 'node:dgram';
import type { Responder } from './server-respond.js';
import type { SourceRateLimiter } from './server-rate-limit.js';
import type { Tally } from './server-metrics.js';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/** Addresses here are always IP literals, so "resolving" them is the identity. */
function literalLookup(address: string, family: unknown, callback: LookupCallback): void {
  callback(null, address, typeof family === 'number' ? family : address.includes(':') ? 6 : 4);
}

export interface UdpBindOptions {
  readonly address: string;
  readonly port: number;
  /** False in cluster workers: the primary owns the socket and shares it. */
  readonly exclusive: boolean;
}

/** Binds a UDP socket; rejects with the bind error (EADDRINUSE, EADDRNOTAVAIL, ...). */
export function bindUdp(options: UdpBindOptions): Promise<dgram.Socket> {
  const type = options.address.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket({
    type,
    lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address: options.address, port: options.port, exclusive: options.exclusive }, () => {
      socket.off('error', onError);
      enlargeBuffers(socket);
      resolve(socket);
    });
  });
}

/**
 * The default receive buffer (about 200 KB on Linux) overflows under bursts of a few hundred
 * requests while the process is busy, and every datagram lost there is a client retransmission.
 * The kernel caps the request at net.core.rmem_max / wmem_max, which is fine: this is best effort.
 */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

function enlargeBuffers(socket: dgram.Socket): void {
  try {
    socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
    socket.setSendBufferSize(SOCKET_BUFFER_BYTES / 4);
  } catch {
    // Not fatal: the defaults still work, only with more loss under load.
  }
}

export interface UdpPathOptions {
  readonly sockets: readonly dgram.Socket[];
  readonly responder: Responder;
  readonly limiter: SourceRateLimiter;
  readonly tally: Tally;
  /** Called for a socket error after binding (they are rare: ICMP-driven errors are not reported). */
  readonly onError: (err: Error, socketIndex: number) => void;
}

/** Starts answering on every socket. */
export function serveUdp(options: UdpPathOptions): void {
  const { sockets, responder, limiter, tally } = options;
  // One mutable source object for every datagram: the responder reads it synchronously.
  const source = { family: 4 as 4 | 6, address: '', port: 0 };
  let views: Buffer[] = [];
  const view = (length: number): Buffer => {
    let v = views[length];
    if (v === undefined) {
      v = responder.scratch.subarray(0, length);
      views[length] = v;
    }
    return v;
  };

  const handle = (socketIndex: number, msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    tally.requests++;
    const address = rinfo.address;
    if (limiter.enabled && !limiter.allow(address)) {
      tally.rateLimited++;
      return;
    }
    if (rinfo.family === 'IPv4') {
      source.family = 4;
      source.address = address;
    } else if (address.startsWith('::ffff:') && address.includes('.')) {
      source.family = 4; // an IPv4 client seen through a dual-stack socket
      source.address = address.slice(7);
    } else {
      source.family = 6;
      source.address = address;
    }
    source.port = rinfo.port;
    const out = responder.respond(msg, source, socketIndex);
    if (out.kind === 'drop') {
      tally.drop(out.reason);
      return;
    }
    if (out.error) tally.error++;
    else tally.success++;
    const sender = sockets[out.socketIndex]!;
    sender.send(view(out.length), rinfo.port, address);
    if (sender.getSendQueueCount() > 0) {
      // The kernel did not take it synchronously: the queued send now owns the scratch bytes.
      responder.renewScratch();
      views = [];
    }
  };

  sockets.forEach((socket, i) => {
    socket.on('message', (msg, rinfo) => handle(i, msg, rinfo));
    socket.on('error', (err) => options.onError(err, i));
  });
}

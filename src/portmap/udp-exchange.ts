// One request/response exchange with the gateway over UDP: a socket of its own bound to our
// address towards the gateway, the request sent at the given offsets, and the first answer from
// the gateway's address and port that `decode` accepts. Anything else (other senders, malformed
// answers) is ignored: a gateway's bad packet is never more than a lost packet.
import { createSocket, type Socket } from 'node:dgram';

export interface ExchangeOptions<T> {
  readonly localAddress: string;
  readonly to: { readonly address: string; readonly port: number };
  readonly request: Uint8Array;
  /** When to (re)send, in ms from the start; e.g. [0, 120]. */
  readonly sendAtMs: readonly number[];
  readonly timeoutMs: number;
  /** The answer, or null to keep waiting (malformed, or not the answer to this request). */
  readonly decode: (buf: Buffer) => T | null;
  /** Accept answers from any port of `to.address` (SSDP answers come from another port). */
  readonly anyPort?: boolean;
  /** Called once with the bound socket right after the first send (SSDP's multicast copy). */
  readonly alsoSend?: (sock: Socket) => void;
}

/** Resolves with the first accepted answer, or null when none came in time (or the socket failed). */
export function exchange<T>(o: ExchangeOptions<T>): Promise<T | null> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    const finish = (v: T | null): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      resolve(v);
    };
    sock.on('error', () => finish(null));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== o.to.address || (!o.anyPort && rinfo.port !== o.to.port)) return;
      let v: T | null = null;
      try {
        v = o.decode(msg);
      } catch {
        v = null; // a decoder that throws on hostile input must not take the node down
      }
      if (v !== null) finish(v);
    });
    sock.bind(0, o.localAddress, () => {
      if (o.alsoSend) {
        try {
          o.alsoSend(sock);
        } catch {
          /* the extra copy is best effort */
        }
      }
      for (const at of o.sendAtMs) {
        timers.push(
          setTimeout(() => {
            if (!done) sock.send(o.request, o.to.port, o.to.address, () => undefined);
          }, at),
        );
      }
      timers.push(setTimeout(() => finish(null), o.timeoutMs));
    });
  });
}

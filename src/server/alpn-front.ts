// The listener in front of the https server when ACME TLS-ALPN-01 is on: it reads the first TLS
// record of each connection, and a ClientHello that offers only "acme-tls/1" for a name with a
// pending challenge gets the challenge certificate (RFC 8737 3) and nothing else. Every other
// connection goes to the https server untouched, its first bytes put back where TLS reads them.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import type { Server as HttpsServer } from 'node:https';
import { MAX_HELLO_BYTES, peekClientHello } from './client-hello.js';

export const ACME_TLS_ALPN = 'acme-tls/1';
/** A connection that does not send its ClientHello in this time is closed. */
const PEEK_TIMEOUT_MS = 10_000;

/** Challenge certificates by domain, while their authorization is pending. */
export class AlpnChallenges {
  private readonly byName = new Map<string, SecureContext>();

  /** `answered` hears of every validation connection answered (for the log). */
  constructor(readonly answered: (domain: string, from: string) => void = () => undefined) {}

  set(domain: string, cert: string, key: string): void {
    this.byName.set(domain.toLowerCase(), createSecureContext({ cert, key }));
  }

  delete(domain: string): void {
    this.byName.delete(domain.toLowerCase());
  }

  get(domain: string): SecureContext | undefined {
    return this.byName.get(domain.toLowerCase());
  }
}

export function alpnFront(https: HttpsServer, challenges: AlpnChallenges): Server {
  return createServer({ pauseOnConnect: false }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(PEEK_TIMEOUT_MS, () => socket.destroy());
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const peek = peekClientHello(seen);
      if (peek.kind === 'more' && seen.length < MAX_HELLO_BYTES) return;
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(seen);
      const challenge = peek.kind === 'hello' && peek.serverName !== null && peek.alpn.length === 1 && peek.alpn[0] === ACME_TLS_ALPN ? challenges.get(peek.serverName) : undefined;
      if (challenge && peek.kind === 'hello') {
        challenges.answered(peek.serverName!, socket.remoteAddress ?? 'unknown');
        answerChallenge(socket, challenge);
      }
      else https.emit('connection', socket);
    };
    socket.on('data', onData);
  });
}

/** The validation connection: a handshake with the challenge certificate, then it is closed. */
function answerChallenge(socket: Socket, context: SecureContext): void {
  const tls = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: [ACME_TLS_ALPN] });
  tls.setTimeout(PEEK_TIMEOUT_MS, () => tls.destroy());
  tls.on('error', () => tls.destroy());
  tls.on('secure', () => tls.end());
  tls.resume();
}

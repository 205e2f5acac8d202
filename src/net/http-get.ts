// GET of a JSON resource (the server's HTTP API with a bearer token, an ACME directory), over
// http or https with the trust the user gave (--ca): Node's fetch cannot take a private CA,
// node:https can. Bodies are bounded.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DEFAULT_TRUST, tlsClientOptions, type Trust } from './tls-trust.js';

export interface GetResult {
  readonly status: number;
  /** The parsed JSON body; undefined when the body is not JSON. */
  readonly body: unknown;
}

/** Why a request failed before an answer: the system's code (ECONNREFUSED, CERT_HAS_EXPIRED...) or message. */
export class HttpGetError extends Error {
  override readonly name = 'HttpGetError';
  /** True when TLS failed (an untrusted or wrong certificate): the server is up, the hint differs. */
  readonly tls: boolean;
  constructor(readonly reason: string) {
    super(reason);
    this.tls = isTlsFailure(reason);
  }
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Options of getJson: a keep-alive `agent` lets several requests share one connection. */
export interface GetOptions {
  readonly timeoutMs?: number;
  readonly trust?: Trust;
  readonly agent?: HttpAgent;
}

/** One connection kept open between requests (for round trips that should not count handshakes). */
export function keepAliveAgent(url: URL, trust: Trust = DEFAULT_TRUST): HttpAgent {
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  return secure ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tlsClientOptions(trust) }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
}

export function getJson(url: URL, token: string | null, opts: GetOptions = {}): Promise<GetResult> {
  const target = new URL(url);
  // The API lives on the same listener as the WebSocket: ws(s) URLs name it too.
  if (target.protocol === 'wss:') target.protocol = 'https:';
  if (target.protocol === 'ws:') target.protocol = 'http:';
  const secure = target.protocol === 'https:';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const headers = { accept: 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) };
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) return void req.destroy(new Error('answer larger than 16 MiB'));
        chunks.push(c);
      });
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', (err) => reject(new HttpGetError(connectFailure(err))));
    };
    // Without a keep-alive agent of the caller's, no pooled socket outlives the request.
    const agent = { agent: opts.agent ?? false };
    const req = secure
      ? httpsRequest(target, { headers, ...agent, ...tlsClientOptions(opts.trust ?? DEFAULT_TRUST) }, onResponse)
      : httpRequest(target, { headers, ...agent }, onResponse);
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(new HttpGetError(connectFailure(err))));
    req.end();
  });
}

/** Whether connectFailure() described a TLS problem (retrying the same server will not help). */
export function isTlsFailure(description: string): boolean {
  return /^(the server's certificate|TLS failed)/.test(description);
}

/** A certificate problem says what to do about it; other errors give the system's code. */
export function connectFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the server's certificate is not for this name (${message})`;
  if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ISSUER/.test(code)) {
    return `the server's certificate is not trusted (${code}): give its CA with --ca FILE or TRAVERSE_CA`;
  }
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(message)) {
    return `TLS failed (${message}): does the server speak https? check the URL's scheme`;
  }
  return code ?? message;
}

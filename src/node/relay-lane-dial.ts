// The node's end of a relay lane (coordination/relay-lane.ts): an HTTP upgrade request to the
// coordination server, with this node's token, that the server answers once the other end has
// asked for the same lane. The socket it yields is then the stream layer's to prove and use.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { ROLE_HEADER } from '../coordination/protocol.js';
import { LANE_ID_HEADER, LANE_NODE_HEADER, LANE_PEER_HEADER, RELAY_LANE_PATH, RELAY_LANE_UPGRADE } from '../coordination/relay-lane.js';
import { refusalMessage } from './coordinator-client.js';
import { pinnedLookup, type ServerTarget } from './server-targets.js';
import { DEFAULT_TRUST, tlsClientOptions, type Trust } from '../net/tls-trust.js';

export interface RelayLaneDial {
  /**
   * The coordination server this node is connected to now (the other end must be on the same
   * server process): its URL (http(s):// or ws(s)://) and the address it was reached at.
   */
  readonly server: string | Pick<ServerTarget, 'url' | 'address'>;
  /** Whom to trust for https:// (the node's --ca). */
  readonly trust?: Trust;
  readonly token: string;
  readonly role: 'agent' | 'client';
  /** Our node key and the other end's (hex). */
  readonly nodeKey: string;
  readonly peerKey: string;
  readonly lane: Uint8Array;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Connects to the server and waits until it joins us to the lane; rejects with the server's reason. */
export function dialRelayLane(d: RelayLaneDial): Promise<Socket> {
  const target = typeof d.server === 'string' ? { url: d.server } : d.server;
  const url = new URL(target.url);
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  url.protocol = secure ? 'https:' : 'http:';
  url.pathname = RELAY_LANE_PATH;
  url.search = '';
  return new Promise<Socket>((resolve, reject) => {
    let settled = false;
    let req: ClientRequest | null = null;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      d.signal?.removeEventListener('abort', onAbort);
      req?.destroy();
      reject(new Error(`no relay lane: ${why}`));
    };
    const timer = setTimeout(() => fail(`the server did not join the lane within ${d.timeoutMs} ms`), d.timeoutMs);
    const onAbort = (): void => fail('cancelled');
    if (d.signal?.aborted) return onAbort();
    d.signal?.addEventListener('abort', onAbort);
    const options = {
      method: 'GET',
      agent: false as const,
      ...(target.address ? { lookup: pinnedLookup(target.address) } : {}),
      ...(secure ? tlsClientOptions(d.trust ?? DEFAULT_TRUST) : {}),
      headers: {
        connection: 'Upgrade',
        upgrade: RELAY_LANE_UPGRADE,
        authorization: `Bearer ${d.token}`,
        [ROLE_HEADER]: d.role,
        [LANE_ID_HEADER]: Buffer.from(d.lane).toString('hex'),
        [LANE_NODE_HEADER]: d.nodeKey,
        [LANE_PEER_HEADER]: d.peerKey,
      },
    };
    req = secure ? httpsRequest(url, options) : httpRequest(url, options);
    req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (settled) return void socket.destroy();
      settled = true;
      clearTimeout(timer);
      d.signal?.removeEventListener('abort', onAbort);
      socket.setNoDelay(true);
      socket.pause();
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res: IncomingMessage) => {
      // Refused: the server says why in a small JSON body; read a bounded amount.
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 2048) body += chunk;
      });
      res.on('end', () => fail(refusalMessage(body) ?? `HTTP ${res.statusCode ?? 0}`));
      res.on('error', () => fail(`HTTP ${res.statusCode ?? 0}`));
    });
    req.on('error', (err) => fail(err.message));
    req.end();
  });
}

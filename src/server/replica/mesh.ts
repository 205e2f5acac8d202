// The relay mesh: a relayed datagram from a node of this replica to a node of another crosses
// once, over one authenticated WebSocket per ordered pair of replicas (this one dials every other
// replica alive in the heartbeat table, at the URL it published with --mesh-url). The payload is
// what the peers sealed end to end; the mesh adds only the two keys.
//
//   mesh frame (dialer -> acceptor)  [32-byte destination key][32-byte source key][payload]
//
// Bounds: a link that is not keeping up drops datagrams rather than queue them (as the relay does
// for a slow peer), and each inbound link has a byte budget.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_RELAY_PAYLOAD, NODE_KEY_BYTES } from '../../coordination/protocol.js';
import type { Logger } from '../../log/logger.js';
import { TokenBucket } from '../rate-limit.js';
import { MESH_PATH, meshAuth, meshHello, meshMac, meshMacValid, meshOk, newNonce, type MeshTranscript } from './mesh-auth.js';
import type { MeshSender } from './mirror.js';
import { DEFAULT_TRUST, tlsClientOptions, type Trust } from '../../net/tls-trust.js';

export interface MeshOptions {
  readonly self: string;
  readonly key: Buffer;
  /** A frame from an authenticated replica: [destination key][source key][payload]. */
  readonly deliver: (from: string, frame: Buffer) => void;
  readonly logger: Logger;
  /** Bytes queued on one outbound link beyond which datagrams are dropped (default 4 MiB). */
  readonly maxBuffered?: number;
  /** Payload bytes per second one inbound link may deliver (default 512 MiB/s; 0: unlimited). */
  readonly bytesPerSec?: number;
  /** Why a datagram was dropped on the way out or in. */
  readonly dropped?: (reason: string) => void;
  /** The CAs an https:// mesh URL's certificate is checked against (the server's --ca; default: Node's and the system's). */
  readonly trust?: Trust;
}

const MAX_FRAME = 2 * NODE_KEY_BYTES + MAX_RELAY_PAYLOAD;
const HANDSHAKE_TIMEOUT_MS = 5000;
const CLOSE_AUTH = 4401;

/** The outbound link to one other replica. */
class Link {
  ws: WebSocket | null = null;
  ready = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  closed = false;

  constructor(
    readonly replica: string,
    public url: string,
    private readonly mesh: Mesh,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const target = new URL(MESH_PATH, this.url.replace(/^http/, 'ws'));
    const ws = new WebSocket(target, { perMessageDeflate: false, maxPayload: 4096, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, ...tlsClientOptions(this.mesh.trust) });
    this.ws = ws;
    const dialerNonce = newNonce();
    let transcript: MeshTranscript | null = null;
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) return ws.close(1008, 'the dialer receives no frames');
      let json: unknown;
      try {
        json = JSON.parse(data.toString('utf8'));
      } catch {
        return ws.close(1008, 'not JSON');
      }
      if (!transcript) {
        const hello = meshHello.safeParse(json);
        if (!hello.success || hello.data.id !== this.replica) return ws.close(CLOSE_AUTH, 'unexpected hello');
        transcript = { acceptor: hello.data.id, acceptorNonce: hello.data.nonce, dialer: this.mesh.self, dialerNonce };
        ws.send(JSON.stringify({ t: 'auth', id: this.mesh.self, nonce: dialerNonce, mac: meshMac(this.mesh.key, 'dial', transcript) }));
        return;
      }
      const ok = meshOk.safeParse(json);
      if (this.ready || !ok.success || !meshMacValid(this.mesh.key, 'accept', transcript, ok.data.mac)) {
        this.mesh.log.warn({ replica: this.replica, url: this.url }, 'mesh peer did not prove the mesh key; closing');
        return ws.close(CLOSE_AUTH, 'mesh key proof failed');
      }
      this.ready = true;
      this.attempt = 0;
      this.mesh.log.info({ replica: this.replica, url: this.url }, 'mesh link up');
    });
    ws.on('error', (err) => this.mesh.log.debug({ replica: this.replica, err: err.message }, 'mesh link error'));
    ws.on('close', () => {
      if (this.ws !== ws) return;
      if (this.ready) this.mesh.log.info({ replica: this.replica }, 'mesh link down');
      this.ready = false;
      this.ws = null;
      if (this.closed) return;
      const delay = Math.min(5000, 250 * 2 ** this.attempt++);
      this.timer = setTimeout(() => this.connect(), delay);
      this.timer.unref();
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.ready = false;
    this.ws?.terminate();
  }
}

export class Mesh implements MeshSender {
  readonly log: Logger;
  private readonly links = new Map<string, Link>();
  private readonly inbound = new Set<WebSocket>();
  private readonly wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: MAX_FRAME });
  private readonly maxBuffered: number;
  private readonly bytesPerSec: number;

  readonly trust: Trust;

  constructor(private readonly opts: MeshOptions) {
    this.log = opts.logger;
    this.trust = opts.trust ?? DEFAULT_TRUST;
    this.maxBuffered = opts.maxBuffered ?? 4 * 1024 * 1024;
    this.bytesPerSec = opts.bytesPerSec ?? 512 * 1024 * 1024;
  }

  get self(): string {
    return this.opts.self;
  }

  get key(): Buffer {
    return this.opts.key;
  }

  /** Dials every replica in `peers` (id -> mesh URL) not yet dialled; drops links to the others. */
  setPeers(peers: ReadonlyMap<string, string>): void {
    for (const [id, link] of this.links) {
      if (!peers.has(id)) {
        link.close();
        this.links.delete(id);
      }
    }
    for (const [id, url] of peers) {
      const link = this.links.get(id);
      if (link && link.url === url) continue;
      link?.close();
      this.links.set(id, new Link(id, url, this));
    }
  }

  /** Whether the link to `replica` is authenticated and carrying frames. */
  ready(replica: string): boolean {
    return this.links.get(replica)?.ready ?? false;
  }

  send(replica: string, destKey: Buffer, frame: Buffer): void {
    const link = this.links.get(replica);
    if (!link?.ready || !link.ws) return this.opts.dropped?.('mesh-down');
    if (link.ws.bufferedAmount > this.maxBuffered) return this.opts.dropped?.('mesh-slow');
    const out = Buffer.allocUnsafe(NODE_KEY_BYTES + frame.length);
    destKey.copy(out, 0, 0, NODE_KEY_BYTES);
    frame.copy(out, NODE_KEY_BYTES);
    link.ws.send(out, { binary: true });
  }

  buffered(replica: string): number {
    return this.links.get(replica)?.ws?.bufferedAmount ?? 0;
  }

  /** An upgrade at MESH_PATH: another replica dialling in. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? null));
  }

  private accept(ws: WebSocket, remote: string | null): void {
    this.inbound.add(ws);
    const acceptorNonce = newNonce();
    let from: string | null = null;
    const budget = new TokenBucket(this.bytesPerSec, Math.max(this.bytesPerSec / 8, MAX_FRAME * 64), Date.now());
    const timeout = setTimeout(() => {
      if (from === null) ws.close(CLOSE_AUTH, 'no mesh key proof in time');
    }, HANDSHAKE_TIMEOUT_MS);
    timeout.unref();
    ws.send(JSON.stringify({ t: 'hello', id: this.self, nonce: acceptorNonce }));
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (from !== null && binary) {
        if (!budget.take(Date.now(), data.length)) return this.opts.dropped?.('mesh-rate');
        return this.opts.deliver(from, data);
      }
      if (from !== null || binary) return ws.close(1008, 'unexpected frame');
      let json: unknown;
      try {
        json = JSON.parse(data.toString('utf8'));
      } catch {
        return ws.close(1008, 'not JSON');
      }
      const auth = meshAuth.safeParse(json);
      const transcript: MeshTranscript | null = auth.success
        ? { acceptor: this.self, acceptorNonce, dialer: auth.data.id, dialerNonce: auth.data.nonce }
        : null;
      if (!auth.success || !transcript || !meshMacValid(this.key, 'dial', transcript, auth.data.mac)) {
        this.log.warn({ remote }, 'mesh connection without a valid mesh key proof; closed');
        return ws.close(CLOSE_AUTH, 'mesh key proof failed');
      }
      from = auth.data.id;
      clearTimeout(timeout);
      ws.send(JSON.stringify({ t: 'ok', mac: meshMac(this.key, 'accept', transcript) }));
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      clearTimeout(timeout);
      this.inbound.delete(ws);
    });
  }

  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const ws of this.inbound) ws.terminate();
    this.inbound.clear();
  }
}

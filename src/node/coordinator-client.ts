// The peer side of the coordination protocol, for the peer engine: keeps one WebSocket to
// the server, reconnects with backoff and jitter, and after every reconnect republishes the
// node and asks again for the tunnels it had, so a server restart costs a few seconds, not state.
// Given several servers (replicas; or one name with several addresses), it moves to another one
// when its server goes away (server-choice.ts decides which, and when).
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { BackoffOptions } from './backoff.js';
import { ServerChoice } from './server-choice.js';
import { pinnedLookup, resolveTargets, type Resolver, type ServerTarget } from './server-targets.js';
import {
  CloseCode,
  MAX_RELAY_PAYLOAD,
  MAX_REASON_LENGTH,
  PROTOCOL_PATH,
  MAX_SERVER_FRAME_BYTES,
  ROLE_HEADER,
  describeIssues,
  nodeKey,
  serverMessage,
  type ClientMessage,
  type Node,
  type NodeKeyHex,
  type Path,
  type PeerKind,
  type ServerConfig,
  type StreamCarriers,
  type TunnelStatus,
} from '../coordination/protocol.js';
import { bytesToKey, decodeRelayFrame, encodeRelayFrame } from '../coordination/relay-frame.js';
import { decodeRelayBatch, RELAY_BATCH_FORMAT, RELAY_FRAMES_HEADER } from '../coordination/relay-batch.js';
import { RelayBatcher } from '../coordination/relay-batcher.js';
import type { KeyChallenge } from '../coordination/key-proof.js';
import { DEFAULT_TRUST, tlsClientOptions, type Trust } from '../net/tls-trust.js';
import { connectFailure } from '../net/http-get.js';
import { trace } from '../log/trace.js';

/** What a path report may carry besides the path, for the operators' views. */
export interface PathExtras {
  /** The path's round trip as this node measures it (direct paths; ms). */
  readonly rttMs?: number | null;
  /** For a relayed path: why, in plain words. */
  readonly reason?: string;
  /** How many of the tunnel's streams ride a TCP lane, and how many UDX. */
  readonly streams?: StreamCarriers;
}

export interface CoordinatorClientOptions {
  /**
   * The server: http(s)://host:port or ws(s)://host:port; the protocol path is added. Several
   * are replicas of one service, tried in turn (a host name with several addresses counts as
   * several).
   */
  readonly url: string | readonly string[];
  readonly token: string;
  /** This node's X25519 public key, 64 hex characters. */
  readonly key: NodeKeyHex;
  /**
   * The role this node joins as. The server refuses a token of another kind before the node
   * joins, so a client command given an agent's token cannot replace the running agent.
   */
  readonly role: PeerKind;
  /**
   * Answers the server's key challenge (coordination/key-proof.ts) with the node's private key:
   * the server takes a node key only with this proof.
   */
  readonly proveKey: (challenge: KeyChallenge) => string;
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
  /** The CAs an https/wss server's certificate is checked against (default: Node's store and the system's bundle). */
  readonly trust?: Trust;
  /** How host names become addresses (default: the system's resolver, as dns.lookup). */
  readonly resolve?: Resolver;
  /**
   * How long one server may take to accept the WebSocket (ms). Default 10 s with one server;
   * 5 s with several, so that a server that swallows connections (a dead host, a black-holed
   * address) costs a one-shot command with a 10 s budget one try, not all of it.
   */
  readonly handshakeTimeoutMs?: number;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A peer this node has a tunnel with, as the server last described it. */
export interface PeerInfo {
  readonly name: string;
  readonly kind: PeerKind;
  readonly node: Node;
  /** The IP the server saw this node's connection come from (no port); null when it did not say. */
  readonly seenFrom: string | null;
}

export interface PeerGone {
  readonly name: string;
  readonly kind: PeerKind;
  readonly key: NodeKeyHex | null;
}

/** What the node publishes; the key comes from the options and the time is filled in. */
export type NodeUpdate = Omit<Node, 'key' | 'updatedAt'> & { readonly updatedAt?: number };

export interface CoordinatorClientEvents {
  /** Connection state changes; `detail` says why for 'reconnecting' and 'closed'. */
  state: [state: ConnectionState, detail: string | undefined];
  /** The server's configuration, after every (re)connect. */
  config: [config: ServerConfig];
  /** A tunnel peer published its node (endpoints, key, netcheck summary). */
  peer: [peer: PeerInfo];
  /** A tunnel peer closed its connection cleanly. */
  peerDisconnected: [peer: PeerGone];
  /** A tunnel peer stopped answering; it may come back. */
  peerLost: [peer: PeerGone];
  /** The state of a tunnel this client asked for. */
  tunnel: [agent: string, status: TunnelStatus, reason: string | undefined];
  /** A datagram relayed by the server from a tunnel peer. */
  relay: [fromKey: NodeKeyHex, payload: Buffer];
  /** The server refused a request (the connection stays open). */
  serverError: [code: string, message: string];
  /** Something the user should hear about this connection (config.notice). */
  notice: [message: string];
}

/** A connection that held this long resets the backoff. */
const STABLE_CONNECTION_MS = 10_000;

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES = new Set<number>([CloseCode.revoked, CloseCode.replaced, CloseCode.tooManyNodes, CloseCode.wrongRole, CloseCode.keyProof]);

export class CoordinatorClient extends EventEmitter<CoordinatorClientEvents> {
  private ws: WebSocket | null = null;
  private _state: ConnectionState = 'closed';
  private attempt = 0;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private stableTimer: NodeJS.Timeout | null = null;
  private node: Node | null = null;
  private readonly tunnels = new Set<string>();
  private readonly known = new Map<NodeKeyHex, PeerInfo>();
  private _config: ServerConfig | null = null;
  /** The key proof for the current connection's challenge, computed once per connection. */
  private proof: string | null = null;
  private readonly log: Logger;
  private readonly wsUrls: readonly string[];
  /** The URLs as given, for messages: wsUrls[i] is givenUrls[i] made a WebSocket URL. */
  private readonly givenUrls: readonly string[];
  private readonly choice: ServerChoice;
  /** The target of the current connection (or attempt). */
  private current: ServerTarget | null = null;
  /** This connection's binary frames are relay batches (its config said `relay.frames: 2`). */
  private relayBatches = false;
  private readonly batcher = new RelayBatcher({
    send: (frame) => {
      if (this._state === 'connected' && this.ws && this.relayBatches) this.ws.send(frame, { binary: true });
    },
    defer: (fn) => void setImmediate(fn),
  });
  private _malformedRelayFrames = 0;

  constructor(private readonly opts: CoordinatorClientOptions) {
    super();
    if (!nodeKey.safeParse(opts.key).success) throw new TypeError('key must be 64 lowercase hex characters (an X25519 public key)');
    this.log = opts.logger ?? silentLogger;
    const urls = typeof opts.url === 'string' ? [opts.url] : [...opts.url];
    if (urls.length === 0) throw new TypeError('no server URL');
    this.givenUrls = urls;
    this.wsUrls = urls.map((url) => {
      const u = new URL(url);
      u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
      u.pathname = PROTOCOL_PATH;
      return u.toString();
    });
    this.choice = new ServerChoice(this.wsUrls, opts.backoff);
  }

  /** The server of the current connection or attempt: its URL as given, and the address when its name has several. */
  get server(): string | null {
    const t = this.current;
    if (!t) return null;
    const given = this.givenUrls[this.wsUrls.indexOf(t.url)] ?? t.url;
    return t.address ? `${given} (${t.address.address})` : given;
  }

  /** The target (URL and pinned address) of the current connection: relay lanes go to the same server. */
  get target(): ServerTarget | null {
    return this.current;
  }

  get state(): ConnectionState {
    return this._state;
  }

  get config(): ServerConfig | null {
    return this._config;
  }

  /** Relay frames from the server that were malformed, each dropped whole. */
  get malformedRelayFrames(): number {
    return this._malformedRelayFrames;
  }

  /** Tunnel peers whose node is known, by key. */
  get peers(): ReadonlyMap<NodeKeyHex, PeerInfo> {
    return this.known;
  }

  /**
   * Starts connecting. Resolves at the first config from the server; rejects if the server
   * refuses the token (the client then stays closed) or close() is called first.
   */
  connect(): Promise<ServerConfig> {
    this.stopped = false;
    const first = new Promise<ServerConfig>((resolve, reject) => {
      const onConfig = (c: ServerConfig): void => {
        this.off('state', onState);
        resolve(c);
      };
      const onState = (s: ConnectionState, detail: string | undefined): void => {
        if (s !== 'closed') return;
        this.off('config', onConfig);
        reject(new Error(detail ?? 'closed'));
      };
      this.once('config', onConfig);
      this.on('state', onState);
    });
    void this.tryNext(true);
    return first;
  }

  /** Publishes (and remembers, for reconnects) this node's endpoints and netcheck summary. */
  publishNode(update: NodeUpdate): void {
    this.node = { ...update, key: this.opts.key, updatedAt: update.updatedAt ?? Date.now() };
    this.sendNode();
  }

  /** Asks for a tunnel to an agent (clients only); remembered across reconnects. */
  requestTunnel(agentName: string): void {
    this.tunnels.add(agentName);
    this.send({ type: 'tunnel', agent: agentName });
  }

  closeTunnel(agentName: string): void {
    this.tunnels.delete(agentName);
    this.send({ type: 'untunnel', agent: agentName });
  }

  /** Tells the server which path the tunnel to a peer uses now. */
  reportPath(peerKey: NodeKeyHex, path: Path, extra: PathExtras = {}): void {
    const { rttMs = null, reason, streams } = extra;
    const rtt = rttMs === null ? null : Math.round(rttMs * 100) / 100;
    this.send({
      type: 'path',
      peer: peerKey,
      path,
      rttMs: rtt,
      ...(reason === undefined ? {} : { reason: reason.slice(0, MAX_REASON_LENGTH) }),
      ...(streams === undefined ? {} : { streams }),
    });
  }

  /**
   * Sends a datagram to a tunnel peer through the server's relay. Returns false when not
   * connected (relay datagrams are not queued: the layers above retransmit).
   */
  sendRelay(peerKey: NodeKeyHex, payload: Uint8Array): boolean {
    if (payload.length > MAX_RELAY_PAYLOAD) throw new RangeError(`relay payload of ${payload.length} bytes exceeds ${MAX_RELAY_PAYLOAD}`);
    if (this._state !== 'connected' || !this.ws) return false;
    if (!this.relayBatches) {
      this.ws.send(encodeRelayFrame(peerKey, payload), { binary: true });
      return true;
    }
    // With the others sent this turn to the same peer, in one frame at the end of the turn.
    if (payload.length === 0) return false; // an empty datagram has no batch form
    this.batcher.push(peerKey, payload);
    return true;
  }

  /** Closes the connection for good. */
  close(): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(CloseCode.normal, 'bye');
    this.setState('closed', 'closed by the application');
  }

  /**
   * Picks the server to try (resolving host names again, as replicas behind a name may have
   * changed) and connects to it, at once or after its backoff.
   */
  private async tryNext(first: boolean): Promise<void> {
    const targets = await resolveTargets(this.wsUrls, this.opts.resolve);
    if (this.stopped) return;
    this.choice.setTargets(targets.map((t) => t.key));
    const { target, delayMs } = this.choice.next(Date.now(), first);
    const chosen = targets.find((t) => t.key === target)!;
    if (delayMs === 0) return this.open(chosen);
    this.retryTimer = setTimeout(() => this.open(chosen), delayMs);
  }

  private open(target: ServerTarget): void {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', undefined);
    this.current = target;
    if (this.wsUrls.length > 1 || target.address) this.log.info({ server: this.server }, 'connecting to the coordination server');
    let ws: WebSocket;
    try {
      // ws hands its options to http.request and net.connect, which take `lookup`: the address
      // chosen is the one connected to, while Host and TLS keep the URL's name.
      const options: WebSocket.ClientOptions & { lookup?: ReturnType<typeof pinnedLookup> } = {
        headers: { authorization: `Bearer ${this.opts.token}`, [ROLE_HEADER]: this.opts.role, [RELAY_FRAMES_HEADER]: String(RELAY_BATCH_FORMAT) },
        perMessageDeflate: false,
        // Bounded like every buffer (ws would take 100 MiB): a relay batch or a list of peers is
        // far smaller; a server that sends more is closed with 1009 and we reconnect.
        maxPayload: MAX_SERVER_FRAME_BYTES,
        handshakeTimeout: this.opts.handshakeTimeoutMs ?? (this.wsUrls.length > 1 || target.address ? 5_000 : 10_000),
        ...(target.address ? { lookup: pinnedLookup(target.address) } : {}),
        // Only for wss://: a plain ws:// connection needs no trust store made.
        ...(target.url.startsWith('wss:') ? tlsClientOptions(this.opts.trust ?? DEFAULT_TRUST) : {}),
      };
      ws = new WebSocket(target.url, options);
    } catch (err) {
      // A URL ws cannot use, for one: the connection fails with the reason, not a throw.
      this.stopped = true;
      this.setState('closed', (err as Error).message);
      return;
    }
    this.ws = ws;
    let finalReason: string | null = null;
    ws.on('unexpected-response', (_req, res) => {
      // 400/401/403 will not change by retrying; anything else (502 from a proxy...) might.
      const status = res.statusCode ?? 0;
      if (status !== 400 && status !== 401 && status !== 403) return void ws.terminate();
      finalReason = `the server refused the token (HTTP ${status}); check TRAVERSE_TOKEN or ask for a new token`;
      // The server says why in a small JSON body ({"error", "message"}); read a bounded amount.
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 2048) body += chunk;
      });
      res.on('error', () => ws.terminate());
      res.on('end', () => {
        const message = refusalMessage(body);
        if (message) finalReason = message;
        ws.terminate();
      });
    });
    ws.on('open', () => trace('coordinator WebSocket open'));
    ws.on('ping', () => this.armSilenceTimer());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.armSilenceTimer();
      if (isBinary) return this.onRelay(data);
      this.onText(data.toString('utf8'));
    });
    let socketError: string | null = null;
    ws.on('error', (err) => {
      // "connect ECONNREFUSED 10.0.0.1:8080" says more than the close code that follows.
      socketError = connectFailure(err);
      this.log.debug({ err: err.message }, 'coordinator connection error');
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws !== ws) return; // superseded
      this.ws = null;
      this.batcher.clear();
      this.clearTimers();
      const why = reason.length > 0 ? reason.toString() : (socketError ?? `connection closed (${code})`);
      if (FINAL_CLOSES.has(code)) finalReason = why;
      if (this.stopped) return;
      if (finalReason !== null) {
        this.stopped = true;
        return this.setState('closed', finalReason);
      }
      // Closed, refused, or "server shutting down": this server waits out its backoff, and
      // another one (if there is one) is tried first.
      this.attempt++;
      this.choice.failed(this.current!.key, Date.now());
      this.log.info({ why, server: this.server }, 'coordinator connection lost; reconnecting');
      this.setState('reconnecting', why);
      void this.tryNext(false);
    });
  }

  private onText(text: string): void {
    let parsed;
    try {
      parsed = serverMessage.safeParse(JSON.parse(text));
    } catch {
      this.log.warn('server sent a message that is not JSON');
      return;
    }
    if (!parsed.success) {
      this.log.warn({ issue: describeIssues(parsed.error) }, 'server sent a message this client does not understand');
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'config':
        trace('config received');
        this._config = msg;
        this.relayBatches = msg.relay.frames === RELAY_BATCH_FORMAT;
        // The backoff starts over only once a connection has held for a while: a server that
        // accepts and then refuses at once (a key proof it rejects, a rate limit) is not hammered.
        if (this.stableTimer) clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => {
          this.attempt = 0;
          if (this.current) this.choice.held(this.current.key);
        }, STABLE_CONNECTION_MS);
        this.stableTimer.unref();
        this.setState('connected', undefined);
        this.armSilenceTimer();
        // Republish before telling the application, so its view is current.
        this.proof = null; // a new connection, a new challenge
        this.sendNode();
        for (const agent of this.tunnels) this.send({ type: 'tunnel', agent });
        if (msg.notice) this.emit('notice', msg.notice);
        this.emit('config', msg);
        return;
      case 'peers':
        for (const u of msg.updates) {
          if (u.kind === 'node') {
            const info: PeerInfo = { name: u.name, kind: u.peerKind, node: u.node, seenFrom: u.seenFrom ?? null };
            this.known.set(u.node.key, info);
            this.emit('peer', info);
          } else {
            if (u.key) this.known.delete(u.key);
            const gone: PeerGone = { name: u.name, kind: u.peerKind, key: u.key };
            if (u.kind === 'lost') this.emit('peerLost', gone);
            else this.emit('peerDisconnected', gone);
          }
        }
        return;
      case 'tunnel':
        if (msg.status === 'refused' || msg.status === 'closed') this.tunnels.delete(msg.agent);
        this.emit('tunnel', msg.agent, msg.status, msg.reason);
        return;
      case 'error':
        this.emit('serverError', msg.code, msg.message);
        return;
    }
  }

  private onRelay(frame: Buffer): void {
    if (!this.relayBatches) {
      const decoded = decodeRelayFrame(frame);
      if (typeof decoded !== 'string') this.emit('relay', decoded.key, decoded.payload);
      return;
    }
    const batch = decodeRelayBatch(frame);
    if (typeof batch === 'string') {
      // Dropped whole: the layers above retransmit what mattered. Counted, and said once.
      if (this._malformedRelayFrames++ === 0) this.log.warn({ problem: batch }, 'the server relayed a malformed batch of datagrams; dropped');
      return;
    }
    const from = bytesToKey(batch.key);
    for (const p of batch.payloads) this.emit('relay', from, p);
  }

  /** Publishes the node with the proof of its key for this connection's challenge. */
  private sendNode(): void {
    if (!this.node || !this._config) return;
    if (!this.proof) {
      this.proof = this.opts.proveKey(this._config.challenge);
      trace('key proof done');
    }
    this.send({ type: 'node', node: this.node, proof: this.proof });
    // What peers were told, in order (the lab checks that the mapped candidate comes first).
    this.log.debug({ endpoints: this.node.endpoints }, 'node published');
  }

  private send(msg: ClientMessage): void {
    if (this._state === 'connected' && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** A server that stops pinging is gone even if TCP has not noticed: reconnect. */
  private armSilenceTimer(): void {
    const interval = this._config?.pingIntervalMs;
    if (!interval) return;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.ws?.terminate(), interval * 2.5);
    this.silenceTimer.unref();
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.retryTimer = this.silenceTimer = this.stableTimer = null;
  }

  private setState(state: ConnectionState, detail: string | undefined): void {
    if (state === this._state && state !== 'reconnecting') return;
    this._state = state;
    this.emit('state', state, detail);
  }
}

/** The server's reason in a refused upgrade's JSON body, if it gave one. */
export function refusalMessage(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && 'message' in parsed && typeof parsed.message === 'string') {
      return parsed.message.slice(0, 300);
    }
  } catch {
    // not JSON: keep the generic reason
  }
  return undefined;
}

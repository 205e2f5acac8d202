// The coordination server: one HTTP listener that authenticates WebSocket upgrades at
// PROTOCOL_PATH and hands the connections to the Hub, serves the HTTP API, pings every peer,
// and applies revocations and rule changes made by other processes on the same Store.
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as NetServer } from 'node:net';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatEndpoint, parseHostPort } from '../net/endpoint.js';
import { apiRouter, handleHttp, isRefused, metrics as serveMetrics, type AuthOutcome } from './http-api.js';
import { refusalMessage } from './refusal.js';
import { AuthThrottle, DEFAULT_AUTH_THROTTLE, type AuthThrottleOptions } from './auth-throttle.js';
import { DEFAULT_LIMITS, Hub, Peer, type EndKind, type HubLimits } from './hub.js';
import { roleProblem } from './role.js';
import { keyProof } from '../coordination/key-proof.js';
import { NodeKey } from '../identity/node-key.js';
import { createMetrics, type CoordinatorMetrics } from './metrics.js';
import { CloseCode, MAX_TEXT_BYTES, MAX_RELAY_PAYLOAD, PROTOCOL_PATH, PROTOCOL_VERSION, ROLE_HEADER, type ServerConfig } from '../coordination/protocol.js';
import type { Identity, Store, TokenInfo } from './store/store.js';
import { bearerToken, hashesEqual, hashToken } from './tokens.js';
import { RELAY_LANE_PATH } from '../coordination/relay-lane.js';
import { asksForRelayBatches, MAX_BATCH_FRAME, RELAY_BATCH_FORMAT } from '../coordination/relay-batch.js';
import { RelayLanes } from './relay-lane.js';
import { WebSocketLink } from './ws-link.js';
import { HistoryWriter, type ConnectionRecordRef } from './history.js';
import type { TlsServing } from './tls.js';
import { clientAddress, isTrustedProxy, PerAddressCap, type ProxyTrust } from './client-address.js';
import { Replica, type ReplicationOptions } from './replica/replica.js';
import { MESH_PATH } from './replica/mesh-auth.js';
import { createDashboard, type Dashboard, type DashboardOptions } from './dashboard/dashboard.js';

export interface CoordinatorServerOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly store: Store;
  /** STUN servers (HOST:PORT) sent to every peer; empty: STUN disabled unless embedded. */
  readonly stun: readonly string[];
  /**
   * The embedded STUN server. With a wildcard host its address is taken, per peer, from the
   * Host header the peer used to reach this server, which is the name that peer can resolve.
   */
  readonly embeddedStun?: { readonly host: string; readonly port: number };
  readonly blockDirect?: boolean;
  readonly pingIntervalMs?: number;
  readonly policyPollMs?: number;
  readonly limits?: Partial<HubLimits>;
  readonly logger?: Logger;
  readonly metrics?: CoordinatorMetrics;
  /** How long connection history, path reports and unused node keys are kept (default 30 days). */
  readonly historyRetentionMs?: number;
  /** Failed authentications per source address (default: 10 at once, then 1/s). */
  readonly authThrottle?: Partial<AuthThrottleOptions>;
  /** Open TCP connections one source address may hold (0: no limit). Default 256. */
  readonly maxConnectionsPerAddress?: number;
  /** Time a connection has to send its request headers (ms). Default 10 s. */
  readonly headersTimeoutMs?: number;
  /** A second listener serving /metrics without authentication, for Prometheus. */
  readonly metricsListen?: { readonly host: string; readonly port: number };
  /** Serve HTTPS and WSS with this certificate source (tls.ts, acme.ts); plain HTTP without. */
  readonly tls?: TlsServing;
  /**
   * Behind a reverse proxy: connections from these proxy addresses ("loopback": 127/8 and ::1)
   * stand for the right-most X-Forwarded-For entry (client-address.ts); their TCP connections
   * are not capped per address, the nodes of each forwarded client are. Default: none.
   */
  readonly trustProxy?: ProxyTrust;
  /** Run as one of several replicas on a PostgreSQL database (replica/); meshUrl defaults to this listener's URL. */
  readonly replication?: Omit<ReplicationOptions, 'meshUrl'> & { readonly meshUrl?: string };
  /**
   * This process's name among the servers sharing one database: its connection records carry
   * it, and at start it ends only its own records left open by a crash. Stable across restarts
   * of the same replica; '' (default) for a lone server.
   */
  readonly replica?: string;
  /** The operators' web dashboard at / (dashboard/dashboard.ts); false: not served. */
  readonly dashboard?: false | Pick<DashboardOptions, 'matrixReport' | 'feedIntervalMs' | 'webDir' | 'sessions'>;
}

export interface CoordinatorServer {
  /** http(s)://host:port of the listener (the WebSocket URL is ws(s)://host:port + PROTOCOL_PATH). */
  readonly url: string;
  readonly port: number;
  readonly metricsUrl: string | null;
  readonly hub: Hub;
  readonly metrics: CoordinatorMetrics;
  /** The replica layer, when running as one of several replicas. */
  readonly replica: Replica | null;
  close(): Promise<void>;
}

/** Per connection: what the server (not the hub) needs to know. */
interface Conn {
  readonly ws: WebSocket;
  readonly peer: Peer;
  readonly tokenId: number;
  readonly expiresAt: number | null;
  readonly record: ConnectionRecordRef;
  alive: boolean;
  /** Set when the server ends the connection, so the close event reports the right kind. */
  endKind?: EndKind;
  endReason?: string;
}

/** One of the server's listeners could not start: which one, where, and the system's reason. */
export class ListenError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly which: 'listen' | 'metrics',
    readonly address: string,
    cause: unknown,
  ) {
    super(`cannot listen on ${address}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.code = (cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** Replication was asked for and the database could not be joined. */
export class ReplicationError extends Error {
  constructor(cause: unknown) {
    super(`cannot join the replicas on the database: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** An agent's allow list: agents open no tunnels. One shared empty set, not one per connection. */
const NO_AGENTS: ReadonlySet<string> = new Set();

export const DEFAULT_HISTORY_RETENTION_MS = 30 * 86_400_000;
/**
 * Enough for the nodes of a whole office behind one NAT (every forward, ssh session and ping is a
 * node of its own), small enough that one address cannot hold the server's sockets.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;

export async function startCoordinatorServer(opts: CoordinatorServerOptions): Promise<CoordinatorServer> {
  const log = opts.logger ?? silentLogger;
  const store = opts.store;
  const metrics = opts.metrics ?? createMetrics();
  const limits: HubLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const pingIntervalMs = opts.pingIntervalMs ?? 15_000;
  const conns = new Map<Peer, Conn>();
  const pending = new Set<Promise<unknown>>();
  /** Store writes nobody waits for, except close(). */
  const track = (p: Promise<unknown>, what: string): void => {
    const q = p.catch((err: unknown) => log.error({ err }, `${what} failed`)).finally(() => pending.delete(q));
    pending.add(q);
  };

  // Connection and path history, batched (history.ts); a drop is counted and said, at most once a second.
  let lastDropWarning = 0;
  const history = new HistoryWriter(store, (kind, rows, why) => {
    metrics.historyDrops.inc({ kind }, rows);
    if (Date.now() - lastDropWarning < 1000) return;
    lastDropWarning = Date.now();
    log.warn({ kind, rows, why }, 'history rows not written');
  });

  // The server's half of every node key proof; a new one per process is enough, since every
  // connection's challenge also has a nonce of its own.
  const serverKey = NodeKey.generate();
  let replica: Replica | null = null;
  const hub = new Hub(limits, metrics, {
    changed: (change) => replica?.changed(change),
    nodeKeyRegistered: (peer, key) => {
      // A key stays with the identity that first proved it: another identity holding the same
      // private key (a copied key file) is refused rather than allowed to take it over.
      const claimed = store.claimNodeKey(peer.identityId, key, Date.now()).then((ok) => {
        if (ok || peer.closed) return;
        log.warn({ peer: peer.id }, 'node key belongs to another identity; refused');
        peer.link.close(CloseCode.keyProof, 'this node key belongs to another identity; use a key of your own');
      });
      track(claimed, 'saving a node key');
    },
    verifyKeyProof: (peer, key, proof) => {
      if (proof === undefined) return false;
      // The proof is 64 hex characters (the message schema): a constant-time compare of two hashes.
      return hashesEqual(keyProof(serverKey.sharedSecret(Buffer.from(key, 'hex')), peer.challengeNonce, key), proof);
    },
    agentReplaced: (old, by) => {
      log.info({ old: old.id, by: by.id, remote: by.remote }, 'a new agent process replaced the old one');
    },
    pathReported: (reporter, other, path) => {
      log.debug({ reporter: reporter.id, peer: other.id, path }, 'path reported');
      history.path(reporter.identityId, other.identityId, path, Date.now());
    },
  });

  const replicaName = opts.replica ?? '';
  const dangling = await store.closeDanglingConnections(Date.now(), 'server stopped', replicaName);
  if (dangling > 0) log.info({ dangling }, 'closed connection records left open by a previous run');

  // History is kept for a bounded time: every connection and path change adds a row.
  const retentionMs = opts.historyRetentionMs ?? DEFAULT_HISTORY_RETENTION_MS;
  const prune = (): void =>
    track(
      store.pruneHistory(Date.now() - retentionMs).then((n) => {
        if (n > 0) log.info({ rows: n, olderThanDays: retentionMs / 86_400_000 }, 'pruned old history');
      }),
      'pruning history',
    );
  prune();
  const pruneTimer = setInterval(prune, 3600_000);
  pruneTimer.unref();

  const throttle = new AuthThrottle({ ...DEFAULT_AUTH_THROTTLE, ...opts.authThrottle }, Date.now, (s) =>
    log.warn(
      { failures: s.failures, refused: s.refused, addresses: s.addresses, top: s.top },
      `failed authentications: ${s.failures} from ${s.addresses} address(es), ${s.refused} refused unread (most: ${s.top.address}, ${s.top.failures})`,
    ),
  );
  const trustProxy = opts.trustProxy ?? [];
  const authenticate = (req: IncomingMessage): Promise<AuthOutcome> => authenticateToken(req, bearerToken(req.headers.authorization));
  /** A token from a header or the dashboard's sign-in form, under the same throttle of failures. */
  const authenticateToken = async (req: IncomingMessage, token: string | undefined): Promise<AuthOutcome> => {
    const source = clientAddress(req, trustProxy).address;
    if (!throttle.allowed(source)) {
      metrics.authFailures.inc();
      return { refused: 'throttled', message: 'too many failed authentications from this address; wait and retry' };
    }
    const auth = token === undefined ? undefined : await store.authenticate(hashToken(token), Date.now());
    if (auth) return auth;
    metrics.authFailures.inc();
    throttle.failed(source);
    const message = token === undefined ? 'no bearer token in the Authorization header' : refusalMessage(await store.refusal(hashToken(token), Date.now()));
    return { refused: 'unauthorized', message };
  };

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // The largest legal frame is a relay batch; ws closes bigger ones with 1009 itself.
    maxPayload: Math.max(MAX_TEXT_BYTES, MAX_BATCH_FRAME),
  });

  const router = apiRouter({
    networkConfig: (req) => {
      const c = configFor(req, 'client', 'nobody');
      return { stun: c.stun, relay: c.relay, blockDirect: c.blockDirect };
    },
    hub,
    registry: metrics.registry,
    authenticate,
    allowedAgents: (n) => store.allowedAgents(n),
    identities: () => store.listIdentities(),
  });
  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  // A connection that does not finish its request headers in time is closed (408): half-open
  // requests cannot pile up. Upgraded (WebSocket) connections are not subject to it.
  const timeouts = {
    headersTimeout: headersTimeoutMs,
    requestTimeout: Math.max(headersTimeoutMs, 30_000),
    connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
  };
  const dashboard: Dashboard | null =
    opts.dashboard === false
      ? null
      : createDashboard({
          ...opts.dashboard,
          hub,
          store,
          logger: log,
          authenticateToken: (req, token) => authenticateToken(req, token),
          replicas: { here: () => (replica ? replica.meshUrl : null), other: (id) => replica?.peers.get(id) ?? `replica ${id}` },
        });
  const onRequest: RequestListener = (req, res) => {
    const handled = dashboard?.handles(new URL(req.url ?? '/', 'http://localhost').pathname) ? dashboard.handle(req, res) : handleHttp(router, req, res);
    handled.catch(
      (err: unknown) => {
        log.error({ err }, 'HTTP request failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
  const tlsInitial = opts.tls?.initial;
  const https = opts.tls ? createHttpsServer({ ...timeouts, ...(tlsInitial ? { cert: tlsInitial.cert, key: tlsInitial.key } : {}) }, onRequest) : null;
  const http: Server = https ?? createServer(timeouts, onRequest);
  // What listens: the server itself, or a front that answers ACME challenges first.
  const listener: NetServer = opts.tls && https ? opts.tls.listenerFor(https) : http;
  const maxPerAddress = opts.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS;
  // Every client of a proxy comes from the proxy's address: its TCP connections are not capped,
  // the nodes of each client it forwards are. Everyone else is capped per TCP address.
  const nodesPerClient = new PerAddressCap(maxPerAddress);
  limitConnectionsPerAddress(listener, maxPerAddress, (address) => isTrustedProxy(trustProxy, address), () => metrics.closes.inc({ reason: 'address-cap' }));

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    upgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err }, 'upgrade failed');
      reject(socket, 500, 'Internal Server Error');
    });
  });

  const relayLanes = new RelayLanes(hub.routes, (s, r) => reject(s, r.status, r.text, r.message), metrics);

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === MESH_PATH && replica?.handleMeshUpgrade(req, socket, head)) return;
    const lane = path === RELAY_LANE_PATH;
    if (path !== PROTOCOL_PATH && !lane) return reject(socket, 404, 'Not Found');
    if (opts.replication && !replica?.serving) return reject(socket, 503, 'Service Unavailable', 'this replica has lost its database; connect to another one');
    const auth = await authenticate(req);
    if (isRefused(auth)) {
      return auth.refused === 'throttled' ? reject(socket, 429, 'Too Many Requests', auth.message) : reject(socket, 401, 'Unauthorized', auth.message);
    }
    const { identity, token } = auth;
    // The token's kind must be the role the node asked for, before anything changes: a `ping`
    // with an agent's token must not replace the running agent.
    const problem = roleProblem(req.headers[ROLE_HEADER], identity);
    if (problem) return reject(socket, problem.status, 'Forbidden', problem.message);
    if (identity.kind === 'admin') return reject(socket, 403, 'Forbidden');
    const from = clientAddress(req, trustProxy);
    if (from.forwarded && !nodesPerClient.take(from.address)) {
      metrics.closes.inc({ reason: 'address-cap' });
      return reject(socket, 429, 'Too Many Requests', 'too many connections from this address');
    }
    if (from.forwarded) socket.once('close', () => nodesPerClient.release(from.address));
    if (lane) return relayLanes.join(req, socket, head, identity.id);
    const allow = identity.kind === 'client' ? new Set(await store.allowedAgents(identity.name)) : NO_AGENTS;
    if (socket.destroyed) return;
    const remote = from.port === null ? from.address : formatEndpoint(from.address, from.port);
    const config = configFor(req, identity.kind as 'agent' | 'client', identity.name);
    // The connection's closures are made in accept(), not in here: made here they would keep the
    // upgrade request (its headers, a few KiB) alive for as long as the connection lasts.
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, identity, token, allow, remote, config));
  }

  /** The first reason a connection ends for is the one its close reports. */
  function endFor(conn: Conn, reason: string): void {
    if (conn.endKind !== undefined) return;
    conn.endKind = 'disconnected';
    conn.endReason = reason;
  }

  /** The server ends a connection (link.close): what it still sends is not read, and the close event reports why. */
  function ending(peer: Peer, reason: string): void {
    peer.closing = true;
    const conn = conns.get(peer);
    if (conn) endFor(conn, reason);
  }

  function accept(ws: WebSocket, identity: Identity, token: TokenInfo, allow: ReadonlySet<string>, remote: string, config: Omit<ServerConfig, 'challenge'>): void {
    const now = Date.now();
    const link = new WebSocketLink(ws, ending, config.relay.frames === RELAY_BATCH_FORMAT);
    const peer = new Peer(identity.id, identity.kind as 'agent' | 'client', identity.name, link, allow, now, remote, limits);
    link.peer = peer;
    const c: Conn = {
      ws,
      peer,
      tokenId: token.id,
      expiresAt: token.expiresAt,
      alive: true,
      record: history.connected(identity.id, now, remote, replicaName),
    };
    conns.set(peer, c);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      c.alive = true;
      if (isBinary) hub.handleBinary(peer, data);
      else hub.handleText(peer, data.toString('utf8'));
    });
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', (err) => {
      // ws reports oversized or malformed frames here and then closes (1009/1002).
      log.debug({ peer: peer.id, err: err.message }, 'connection error');
      endFor(c, err.message);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      conns.delete(peer);
      // A close frame from the peer (1000/1001) is a clean goodbye; anything else is lost.
      const kind: EndKind = c.endKind ?? (code === CloseCode.normal || code === CloseCode.goingAway ? 'disconnected' : 'lost');
      const why = c.endReason ?? (reason.length > 0 ? reason.toString() : `closed (${code})`);
      hub.detach(peer, kind);
      metrics.closes.inc({ reason: kind });
      log.debug({ peer: peer.id, code, kind, why }, 'peer gone');
      history.disconnected(c.record, Date.now(), `${kind}: ${why}`);
    });
    const attached = hub.attach(peer, {
      ...config,
      challenge: { key: serverKey.publicHex, nonce: peer.challengeNonce },
    });
    if (!attached.ok) {
      log.info({ peer: peer.id, reason: attached.reason }, 'node refused');
      link.close(attached.code, attached.reason); // never attached: nothing it sends reaches the hub
      return;
    }
    log.debug({ peer: peer.id, remote }, 'node connected');
  }

  function configFor(req: IncomingMessage, kind: 'agent' | 'client', name: string): Omit<ServerConfig, 'challenge'> {
    const stun = [...opts.stun];
    if (opts.embeddedStun) stun.unshift(embeddedStunAddress(req, opts.embeddedStun));
    return {
      type: 'config',
      version: PROTOCOL_VERSION,
      identity: { name, kind },
      stun,
      relay: { enabled: true, maxPayload: MAX_RELAY_PAYLOAD, ...(asksForRelayBatches(req.headers) ? { frames: RELAY_BATCH_FORMAT } : {}) },
      blockDirect: opts.blockDirect ?? false,
      pingIntervalMs,
    };
  }

  // Liveness: a peer that has not answered the previous ping (nor sent anything) is lost.
  const pingTimer = setInterval(() => {
    for (const c of conns.values()) {
      if (!c.alive) {
        c.endKind = 'lost';
        c.endReason = `no answer to ping within ${pingIntervalMs} ms`;
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }, pingIntervalMs);
  pingTimer.unref();

  // Revocations and rule changes from `traverse token ...` in another process: a version
  // counter in the store says when to re-check; expiry is checked on every tick.
  let policyVersion = await store.policyVersion();
  let polling = false;
  const pollTimer = setInterval(() => {
    if (polling) return;
    polling = true;
    applyPolicy()
      .catch((err: unknown) => log.error({ err }, 'checking revocations failed'))
      .finally(() => (polling = false));
  }, opts.policyPollMs ?? 1000);
  pollTimer.unref();

  async function applyPolicy(): Promise<void> {
    const now = Date.now();
    for (const c of conns.values()) {
      if (c.expiresAt !== null && c.expiresAt <= now) endForPolicy(c, 'token expired; ask an administrator for a new one');
    }
    const v = await store.policyVersion();
    if (v === policyVersion) return;
    policyVersion = v;
    for (const c of [...conns.values()]) {
      if (!(await store.tokenValid(c.tokenId, now))) {
        // `traverse identity delete` removes the tokens with the identity: say which happened.
        const deleted = (await store.findIdentity(c.peer.kind, c.peer.name))?.id !== c.peer.identityId;
        endForPolicy(c, deleted ? `${c.peer.kind} "${c.peer.name}" was deleted by an administrator` : 'token revoked; ask an administrator for a new one');
      } else if (c.peer.kind === 'client') {
        hub.setAllow(c.peer, new Set(await store.allowedAgents(c.peer.name)));
      }
    }
  }

  function endForPolicy(c: Conn, reason: string): void {
    log.info({ peer: c.peer.id, reason }, 'closing connection');
    c.peer.link.close(CloseCode.revoked, reason);
  }

  // A listener that cannot start stops everything started so far: no server half up, answering
  // /healthz on a store the caller is about to close.
  const abandon = async (which: ListenError['which'], host: string, listenPort: number, err: unknown): Promise<never> => {
    relayLanes.close();
    clearInterval(pingTimer);
    clearInterval(pollTimer);
    clearInterval(pruneTimer);
    if (listener.listening) await new Promise<void>((resolve) => listener.close(() => resolve()));
    while (pending.size > 0) await Promise.all([...pending]);
    throw new ListenError(which, formatEndpoint(host, listenPort), err);
  };
  /** A replica without its database: every peer goes, to reconnect to another replica. */
  function closeAllPeers(reason: string): void {
    for (const c of conns.values()) c.peer.link.close(CloseCode.goingAway, reason);
  }
  async function abandonReplication(err: unknown): Promise<never> {
    clearInterval(pingTimer);
    clearInterval(pollTimer);
    clearInterval(pruneTimer);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    if (listener !== http) http.close();
    while (pending.size > 0) await Promise.all([...pending]);
    throw new ReplicationError(err);
  }
  await listen(listener, opts.listen.host, opts.listen.port).catch((err: unknown) => abandon('listen', opts.listen.host, opts.listen.port, err));
  const port = (listener.address() as AddressInfo).port;
  if (opts.replication) {
    const wildcard = opts.listen.host === '0.0.0.0' || opts.listen.host === '::' || opts.listen.host === '';
    const meshUrl = opts.replication.meshUrl ?? `${opts.tls ? 'https' : 'http'}://${formatEndpoint(wildcard ? hostname() : opts.listen.host, port)}`;
    try {
      replica = await Replica.start(hub, { ...opts.replication, meshUrl }, { closeAll: closeAllPeers }, log.child({ component: 'replica' }), metrics);
    } catch (err) {
      await abandonReplication(err);
    }
  }

  let metricsServer: Server | null = null;
  let metricsUrl: string | null = null;
  if (opts.metricsListen) {
    const m = createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/metrics') return void res.writeHead(404).end();
      serveMetrics(metrics.registry, res).catch(() => res.writeHead(500).end());
    });
    const at = opts.metricsListen;
    await listen(m, at.host, at.port).catch((err: unknown) => abandon('metrics', at.host, at.port, err));
    metricsServer = m;
    metricsUrl = `http://${formatEndpoint(opts.metricsListen.host, (m.address() as AddressInfo).port)}/metrics`;
  }

  return {
    url: `${opts.tls ? 'https' : 'http'}://${formatEndpoint(opts.listen.host, port)}`,
    port,
    metricsUrl,
    hub,
    metrics,
    get replica() {
      return replica;
    },
    async close() {
      relayLanes.close();
      // The other replicas hear the goodbye before our peers' connections end.
      await replica?.leave();
      clearInterval(pingTimer);
      clearInterval(pollTimer);
      clearInterval(pruneTimer);
      const closing = [...conns.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.ws.once('close', () => resolve());
            c.peer.link.close(CloseCode.goingAway, 'server shutting down');
            setTimeout(() => c.ws.terminate(), 500).unref();
          }),
      );
      await Promise.all(closing);
      // Before the listener: the mesh's upgraded connections would keep it open.
      await replica?.shutdown();
      dashboard?.close();
      const httpClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
      if (listener !== http) http.close();
      http.closeAllConnections();
      await httpClosed;
      if (metricsServer) await new Promise<void>((resolve) => metricsServer!.close(() => resolve()));
      // History is written asynchronously; let it land before the caller closes the store (but
      // not wait out retries against a database that is gone).
      while (pending.size > 0) await Promise.all([...pending]);
      await history.finish();
    },
  };
}

function embeddedStunAddress(req: IncomingMessage, stun: { host: string; port: number }): string {
  const wildcard = stun.host === '0.0.0.0' || stun.host === '::' || stun.host === '';
  if (!wildcard) return formatEndpoint(stun.host, stun.port);
  try {
    if (req.headers.host) return formatEndpoint(parseHostPort(req.headers.host, 80).host, stun.port);
  } catch {
    // A malformed Host header: fall back to the address the request arrived on.
  }
  return formatEndpoint(req.socket.localAddress ?? '127.0.0.1', stun.port);
}

function reject(socket: Duplex, status: number, text: string, message?: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: text.toLowerCase(), ...(message ? { message } : {}) }) + '\n';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      (status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Closes a new connection at once when its source address already holds `max` (0: no limit); trusted proxies are exempt. */
function limitConnectionsPerAddress(server: NetServer, max: number, exempt: (address: string) => boolean, refused: () => void): void {
  if (max <= 0) return;
  const cap = new PerAddressCap(max);
  server.on('connection', (socket: Duplex & { remoteAddress?: string }) => {
    const address = socket.remoteAddress ?? 'unknown';
    if (exempt(address)) return;
    if (!cap.take(address)) {
      refused();
      socket.destroy();
      return;
    }
    socket.once('close', () => cap.release(address));
  });
}

function listen(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

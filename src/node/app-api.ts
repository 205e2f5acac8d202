// The programmatic API that src/index.ts publishes: an app joins as a client node and opens
// encrypted streams to an agent (connect), or joins as the agent and serves them (serve). A thin
// layer over PeerNode: options an app can name, errors with a code, no engine types.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { NodeKey } from '../identity/node-key.js';
import { RELAY, type Path } from '../net/path.js';
import { StreamOpenError, type AcceptDecision } from '../tunnel/streams.js';
import type { StreamRequest as TunnelRequest } from '../tunnel/request.js';
import { AllowListError, agentService } from './agent.js';
import { appDuplex } from './app-stream.js';
import { cleartextWarning, parseServerUrls } from './server-url.js';
import { trustFromPem, type Trust } from '../net/tls-trust.js';
import { PeerNode, type PeerNodeOptions, type PeerRecord } from './peer-node.js';

/** What went wrong, for code to branch on; the message says it in words, with what to do. */
export type TraverseErrorCode =
  /** An option or argument is not usable (a bad allow-list pattern, key file or target). */
  | 'INVALID_ARGUMENT'
  /** The coordination server could not be reached, or refused the token, in time. */
  | 'CONNECT_FAILED'
  /** The server will not give this client a tunnel to that agent (not in its allow list). */
  | 'TUNNEL_REFUSED'
  /** The agent is not connected to the coordination server (now, or within the timeout). */
  | 'AGENT_UNAVAILABLE'
  /** The agent answered no: the target is not allowed or does not answer there, or the app refused. */
  | 'STREAM_REFUSED'
  /** The stream could not be opened for another reason (no answer in time, the tunnel went away). */
  | 'STREAM_FAILED'
  /** The coordination server closed this node's connection for good (token revoked, replaced). */
  | 'SERVER_CLOSED'
  /** The connection or agent was closed by the app. */
  | 'CLOSED';

export class TraverseError extends Error {
  override readonly name = 'TraverseError';
  constructor(
    readonly code: TraverseErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A node of the other side: its identity's name and this node's public key (hex). */
export interface Peer {
  readonly name: string;
  readonly key: string;
}

/** Options both sides share. */
export interface NodeOptions {
  /**
   * The coordination server's URL, e.g. http://coord.example:8080; several (an array, or one
   * comma-separated string) are replicas, and the node moves to another when its server goes away.
   */
  readonly server: string | readonly string[];
  /** The identity's token (`traverse token create`): a client token to connect, an agent token to serve. */
  readonly token: string;
  /**
   * Keep the node key in this file (created if missing, mode 0600). Default: a fresh key for
   * this node. Never share one file between two running nodes.
   */
  readonly keyFile?: string;
  /** STUN servers ("host:port"), replacing the list the server sends; [] turns STUN off. */
  readonly stun?: readonly string[];
  /** The local addresses offered to peers as candidates (default: the machine's IPv4 interfaces). */
  readonly localAddresses?: () => readonly string[];
  /** Local UDP port of the node's socket (default: any free port). */
  readonly port?: number;
  /** Never use a direct path: everything goes through the relay. */
  readonly disableDirect?: boolean;
  /**
   * Ask the default gateway to map the node's UDP port (PCP, NAT-PMP, UPnP IGD). Default true,
   * except when `localAddresses` is given (a caller choosing the candidates chooses them all).
   */
  readonly portMapping?: boolean;
  /** Move streams on a direct path onto a TCP lane when one opens (default true). */
  readonly tcpLane?: boolean;
  /** How long the first connection to the server may take (ms, default 10000; 0: keep retrying). */
  readonly connectTimeoutMs?: number;
  /**
   * CA certificates (PEM text) trusted for an https:// server besides Node's store, for a
   * private CA. Verification cannot be turned off.
   */
  readonly ca?: string;
}

export interface ConnectOptions extends NodeOptions {
  /** How long to wait for the server to give the tunnel (ms, default 15000). */
  readonly tunnelTimeoutMs?: number;
}

/** A ping's answer: the path it came back on and the round trip. */
export interface Pong {
  readonly path: Path;
  readonly latencyMs: number;
}

export interface ConnectionEvents {
  /** The path to the agent changed (relay -> direct when a hole punch succeeds, and back). */
  path: [path: Path];
  /** The connection ended: null when the app closed it, else why (e.g. SERVER_CLOSED). */
  closed: [error: TraverseError | null];
}

/** A client node with a tunnel to one agent. */
export interface Connection extends EventEmitter<ConnectionEvents> {
  /** The agent's name, as given to connect(). */
  readonly agent: string;
  /** This node's public key (hex). */
  readonly key: string;
  /** The path to the agent now (relay while the agent is away). */
  readonly path: Path;
  /**
   * Opens an encrypted stream that the agent connects to `target`: "host:port" as the agent
   * sees it for an agent that serves targets, or any name (3 to 300 characters) that an app's
   * onStream understands. Rejects with a TraverseError (STREAM_REFUSED when the agent says no).
   */
  openStream(target: string): Promise<Duplex>;
  /** Pings the agent over the current path; null if no pong came within `timeoutMs` (default 2000). */
  ping(timeoutMs?: number): Promise<Pong | null>;
  /** Ends every stream and leaves the server; the process keeps no handle of this connection. */
  close(): Promise<void>;
}

/** What a client asked for when it opened a stream to this agent. */
export interface StreamRequest {
  /** The target the client named (openStream's argument). */
  readonly target: string;
  /** The client node that opened it (the server vouched for its name; the handshake proved its key). */
  readonly from: Peer;
}

/** Takes an accepted stream; a throw, or a returned promise that rejects, destroys the stream. */
export type StreamHandler = (request: StreamRequest, stream: Duplex) => void;

/** Decides on a request before its stream opens: true accepts; false or a reason refuses. */
export type StreamFilter = (request: StreamRequest) => boolean | string | Promise<boolean | string>;

interface ServeCommon extends NodeOptions {
  /** Streams one client node may have open here at once (default 256). */
  readonly maxStreamsPerClient?: number;
}

/**
 * An agent either serves targets itself (like `traverse agent`: a TCP connection per stream to
 * a target its allow list permits), or hands each stream to the app (onStream).
 */
export type ServeOptions =
  | (ServeCommon & {
      /** HOST:PORT patterns clients may reach (IP, CIDR, host name or *; a port, a-b or *). Default: the agent's loopback. */
      readonly allowTargets?: readonly string[];
      readonly onStream?: undefined;
      readonly accept?: undefined;
    })
  | (ServeCommon & {
      readonly onStream: StreamHandler;
      /** Default: every stream a client the server allows opens is accepted. */
      readonly accept?: StreamFilter;
      readonly allowTargets?: undefined;
    });

export interface AgentEvents {
  /** The path to a client node changed. */
  path: [client: Peer, path: Path];
  /** The agent ended: null when the app closed it, else why (e.g. SERVER_CLOSED). */
  closed: [error: TraverseError | null];
}

/** A running agent. */
export interface Agent extends EventEmitter<AgentEvents> {
  /** The agent's identity name (its token's). */
  readonly name: string;
  /** This node's public key (hex). */
  readonly key: string;
  /** The targets clients may reach; null when the app handles streams (onStream). */
  readonly allowTargets: readonly string[] | null;
  /** Ends every stream and leaves the server; the process keeps no handle of this agent. */
  close(): Promise<void>;
}

type AcceptStream = NonNullable<PeerNodeOptions['acceptStream']>;

async function startNodeWith(
  role: 'agent' | 'client',
  options: NodeOptions,
  extra: Partial<PeerNodeOptions>,
): Promise<{ node: PeerNode; publicKey: string }> {
  let key: NodeKey;
  try {
    key = options.keyFile ? NodeKey.loadOrCreate(options.keyFile) : NodeKey.generate();
  } catch (err) {
    throw new TraverseError('INVALID_ARGUMENT', `key file: ${(err as Error).message}`, { cause: err });
  }
  let server: string[];
  let trust: Trust | undefined;
  try {
    const urls = parseServerUrls(typeof options.server === 'string' ? options.server : options.server.join(','));
    server = urls.map((u) => u.href);
    for (const url of urls) {
      const warning = cleartextWarning(url);
      if (warning !== null) process.emitWarning(warning, 'TraverseCleartextWarning');
    }
  } catch (err) {
    throw new TraverseError('INVALID_ARGUMENT', `server: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (options.ca !== undefined) trust = trustFromPem(options.ca);
  } catch (err) {
    throw new TraverseError('INVALID_ARGUMENT', (err as Error).message, { cause: err });
  }
  const stun = options.stun ? { disabled: options.stun.length === 0, servers: [...options.stun] } : null;
  try {
    const node = await PeerNode.start({
      server,
      token: options.token,
      key,
      role,
      stun,
      disableDirect: options.disableDirect ?? false,
      portMapping: options.portMapping ?? options.localAddresses === undefined,
      tcpLane: options.tcpLane ?? true,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      ...(trust ? { trust } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.localAddresses ? { localAddresses: options.localAddresses } : {}),
      ...extra,
    });
    return { node, publicKey: key.publicHex };
  } catch (err) {
    throw new TraverseError('CONNECT_FAILED', `cannot connect to ${server.join(',')}: ${(err as Error).message}`, { cause: err });
  }
}

/** Shared by both sides: the node, ending it once, the 'closed' event. */
abstract class NodeHandle<T extends Record<keyof T, unknown[]> & { closed: [error: TraverseError | null] }> extends EventEmitter<T> {
  protected closed = false;

  constructor(
    protected readonly node: PeerNode,
    readonly key: string,
  ) {
    super();
    node.on('coordinator', (state, detail) => {
      if (state === 'closed' && !this.closed) {
        void this.end(new TraverseError('SERVER_CLOSED', `the coordination server closed this node's connection: ${detail ?? 'no reason given'}`));
      }
    });
  }

  close(): Promise<void> {
    return this.end(null);
  }

  private ending: Promise<void> | null = null;
  /** How to reset each stream open now (the app's, or one the agent joined to a target). */
  private readonly open = new Set<() => void>();

  /** Remembers a stream until it closes, to reset it at close(). */
  track(stream: Duplex, reset: () => void): void {
    this.open.add(reset);
    stream.once('close', () => this.open.delete(reset));
  }

  /** An encrypted stream as the app gets it, remembered until it closes. */
  forApp(secure: Duplex): Duplex {
    const d = appDuplex(secure);
    // Without an error for the app (its stream just closes); the wrapper resets the peer's side.
    this.track(d, () => d.destroy());
    return d;
  }

  private end(error: TraverseError | null): Promise<void> {
    if (this.ending) return this.ending;
    this.closed = true;
    this.ending = (async () => {
      // The app's streams first, reset (each tells its peer, which closes its end at once), while
      // the relay is still up: a carrier on a relayed path whose peer never hears of its end
      // keeps UDX (and the process) alive for UDX's ~13 s timeout on whichever side goes last;
      // PeerNode.close() would close the relay in the same turn. Bounded: a peer that is gone
      // does not answer.
      if (error === null && this.open.size > 0) {
        for (const reset of [...this.open]) reset();
        await idle(this.node.magicsock.socket, STREAM_TEARDOWN_MS);
      }
      this.node.close();
      (this as EventEmitter<{ closed: [error: TraverseError | null] }>).emit('closed', error);
    })();
    return this.ending;
  }
}

/**
 * How long close() waits for the streams' carriers to go before closing the node (ms): longer
 * than a session lets a reset carrier linger for its peer's answer (2 s).
 */
const STREAM_TEARDOWN_MS = 2500;

/** Resolves once the UDX socket carries no stream, or after `ms`. */
function idle(socket: PeerNode['magicsock']['socket'], ms: number): Promise<void> {
  if (socket.streams.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('idle', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.on('idle', done);
  });
}


class ClientConnection extends NodeHandle<ConnectionEvents> implements Connection {
  constructor(
    node: PeerNode,
    key: string,
    readonly agent: string,
  ) {
    super(node, key);
    node.on('path', (peer, path) => {
      if (peer.kind === 'agent' && peer.name === agent) this.emit('path', path);
    });
  }

  get path(): Path {
    const peer = this.closed ? undefined : this.node.peerByName(this.agent);
    return peer ? this.node.magicsock.pathOf(peer.key) : RELAY;
  }

  private agentKey(): string {
    if (this.closed) throw new TraverseError('CLOSED', 'the connection is closed');
    const peer = this.node.peerByName(this.agent);
    if (!peer) throw new TraverseError('AGENT_UNAVAILABLE', `agent "${this.agent}" is not connected to the coordination server right now`);
    return peer.key;
  }

  async openStream(target: string): Promise<Duplex> {
    if (typeof target !== 'string' || target.length < 3 || target.length > 300) {
      throw new TraverseError('INVALID_ARGUMENT', `a stream target has 3 to 300 characters ("host:port"), not ${JSON.stringify(target)}`);
    }
    const peerKey = this.agentKey();
    try {
      return this.forApp(await this.node.streams.open(peerKey, { kind: 'tcp', target }));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (this.closed) throw new TraverseError('CLOSED', 'the connection was closed while the stream opened', { cause: err });
      const code = err instanceof StreamOpenError && err.refusedByPeer ? 'STREAM_REFUSED' : 'STREAM_FAILED';
      throw new TraverseError(code, `cannot open a stream to ${target} through "${this.agent}": ${reason}`, { cause: err });
    }
  }

  async ping(timeoutMs = 2000): Promise<Pong | null> {
    const r = await this.node.magicsock.ping(this.agentKey(), timeoutMs);
    return r ? { path: r.path, latencyMs: r.latencyMs } : null;
  }
}

/**
 * Joins the coordination server as a client node and opens the tunnel to `agent`. Rejects with
 * a TraverseError: CONNECT_FAILED, TUNNEL_REFUSED, AGENT_UNAVAILABLE or INVALID_ARGUMENT.
 */
export async function connect(agent: string, options: ConnectOptions): Promise<Connection> {
  if (typeof agent !== 'string' || agent === '') throw new TraverseError('INVALID_ARGUMENT', 'connect() needs the agent\'s name');
  const { node, publicKey } = await startNodeWith('client', options, {});
  // The coordinator's verdict on the tunnel, to tell a refusal from an agent that is away.
  let status: string | undefined;
  const onTunnel = (a: string, s: string): void => {
    if (a === agent) status = s;
  };
  node.on('tunnel', onTunnel);
  try {
    await node.openTunnel(agent, options.tunnelTimeoutMs ?? 15_000);
  } catch (err) {
    node.close();
    const code = status === 'refused' ? 'TUNNEL_REFUSED' : 'AGENT_UNAVAILABLE';
    throw new TraverseError(code, (err as Error).message, { cause: err });
  } finally {
    node.off('tunnel', onTunnel);
  }
  return new ClientConnection(node, publicKey, agent);
}

class ServingAgent extends NodeHandle<AgentEvents> implements Agent {
  constructor(
    node: PeerNode,
    key: string,
    readonly allowTargets: readonly string[] | null,
  ) {
    super(node, key);
    node.on('path', (peer, path) => this.emit('path', { name: peer.name, key: peer.key }, path));
  }

  get name(): string {
    return this.node.config?.identity.name ?? '';
  }
}

/** Refusal reasons travel in the handshake answer, which holds at most 200 characters. */
function refusal(reason: string): AcceptDecision {
  return { ok: false, error: reason.length > 200 ? `${reason.slice(0, 197)}...` : reason };
}

function appAcceptor(onStream: StreamHandler, accept: StreamFilter | undefined, wrap: (secure: Duplex) => Duplex): AcceptStream {
  return async (peer: PeerRecord, request: TunnelRequest): Promise<AcceptDecision> => {
    if (request.kind !== 'tcp') return refusal('this agent runs no speed tests');
    const info: StreamRequest = { target: request.target, from: { name: peer.name, key: peer.key } };
    if (accept) {
      let verdict: boolean | string;
      try {
        verdict = await accept(info);
      } catch (err) {
        return refusal(`the agent could not decide: ${(err as Error).message}`);
      }
      if (verdict !== true) return refusal(typeof verdict === 'string' && verdict !== '' ? verdict : 'refused by the agent');
    }
    return {
      ok: true,
      take: (secure) => {
        const stream = wrap(secure);
        const fail = (err: unknown): void => {
          stream.destroy(err instanceof Error ? err : new Error(String(err)));
        };
        try {
          const r: unknown = onStream(info, stream);
          if (r instanceof Promise) r.catch(fail);
        } catch (err) {
          fail(err);
        }
      },
    };
  };
}

/**
 * Joins the coordination server as the agent. Without onStream it serves like `traverse agent`:
 * each stream is connected to its target if allowTargets permits it. With onStream, each stream
 * a client opens (and `accept` lets through) goes to the app. Rejects with a TraverseError:
 * CONNECT_FAILED or INVALID_ARGUMENT.
 */
export async function serve(options: ServeOptions): Promise<Agent> {
  // Set once the node runs; a stream accepted before that (in the same turn) is not tracked.
  let serving: ServingAgent | null = null;
  let acceptStream: AcceptStream;
  let allowed: readonly string[] | null;
  if (options.onStream) {
    if (typeof options.onStream !== 'function') throw new TraverseError('INVALID_ARGUMENT', 'onStream must be a function');
    acceptStream = appAcceptor(options.onStream, options.accept, (secure) => (serving ? serving.forApp(secure) : appDuplex(secure)));
    allowed = null;
  } else {
    try {
      const service = agentService(options.allowTargets);
      acceptStream = async (peer, request) => {
        const decision = await service.acceptStream(peer, request);
        if (!decision.ok) return decision;
        return {
          ok: true,
          take: (secure) => {
            serving?.track(secure, () => secure.destroy(new Error('the agent was closed')));
            decision.take(secure);
          },
        };
      };
      allowed = service.allowed;
    } catch (err) {
      if (err instanceof AllowListError) throw new TraverseError('INVALID_ARGUMENT', `allowTargets: ${err.message}`, { cause: err });
      throw err;
    }
  }
  const extra: Partial<PeerNodeOptions> = {
    acceptStream,
    ...(options.maxStreamsPerClient !== undefined ? { streamLimits: { maxStreamsPerPeer: options.maxStreamsPerClient } } : {}),
  };
  const { node, publicKey } = await startNodeWith('agent', options, extra);
  serving = new ServingAgent(node, publicKey, allowed);
  return serving;
}

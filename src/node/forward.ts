// Local TCP ports that lead, over the encrypted peer path, to targets behind an agent (what
// `traverse forward` runs): one listener per forward, one stream per accepted connection, bytes
// pumped both ways with half-close kept.
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { RELAY, type Path } from '../net/path.js';
import { join } from '../tunnel/services.js';
import { STREAM_HIGH_WATER } from '../tunnel/session.js';
import type { PeerNode } from './peer-node.js';

export interface ForwardTarget {
  /** Local port to listen on (0: any free port). */
  readonly localPort: number;
  /** "host:port" as the agent sees it. */
  readonly target: string;
}

export interface ForwardOptions {
  /** The agent's name; looked up per connection, so an agent that came back with a new key is the same agent. */
  readonly agent: string;
  readonly forwards: readonly ForwardTarget[];
  /** Local address to listen on. */
  readonly bind: string;
}

/** One forward, listening. */
export interface BoundForward {
  readonly forward: ForwardTarget;
  readonly bind: string;
  /** The port actually bound (differs from forward.localPort when that was 0). */
  readonly port: number;
  /** The path to the agent when the listener came up. */
  readonly path: Path;
}

export interface ForwarderEvents {
  /** A local connection was accepted and its stream to the target is open. */
  connection: [forward: ForwardTarget];
  /** A local connection could not be carried (agent away, target refused); the socket was closed. */
  connectionFailed: [forward: ForwardTarget, error: Error];
}

/** A listener that could not be bound. */
export class ForwardListenError extends Error {
  override readonly name = 'ForwardListenError';
  constructor(
    readonly forward: ForwardTarget,
    readonly bind: string,
    /** The errno code, e.g. EADDRINUSE. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class Forwarder extends EventEmitter<ForwarderEvents> {
  private readonly sockets = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly boundList: BoundForward[] = [];
  private closed = false;

  private constructor(
    private readonly node: PeerNode,
    private readonly agent: string,
  ) {
    super();
  }

  /**
   * Binds one local listener per forward. The tunnel to the agent should already be open
   * (PeerNode.openTunnel): connections accepted while the agent is unknown fail with
   * `connectionFailed`. Rejects with ForwardListenError if a listener cannot be bound (the
   * others are closed again).
   */
  static async start(node: PeerNode, options: ForwardOptions): Promise<Forwarder> {
    const fwd = new Forwarder(node, options.agent);
    try {
      await Promise.all(options.forwards.map((f) => fwd.listen(f, options.bind)));
    } catch (err) {
      await fwd.close();
      throw err;
    }
    return fwd;
  }

  /** The listeners, in the order of the forwards. */
  get bound(): readonly BoundForward[] {
    return this.boundList;
  }

  /** Number of local connections being carried right now. */
  get activeConnections(): number {
    return this.sockets.size;
  }

  /**
   * Stops listening and ends every carried connection; resolves once the listeners are closed.
   * The node stays open (it belongs to the caller).
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    // With an error, so that the stream resets the agent's side at once (a plain destroy would
    // leave the stream waiting to resume there until its idle timeout).
    for (const s of this.sockets) s.destroy(new Error('the forward was closed'));
    this.sockets.clear();
    return Promise.all(this.servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())))).then(
      () => undefined,
    );
  }

  private listen(f: ForwardTarget, bind: string): Promise<void> {
    const server = createServer({ allowHalfOpen: true, highWaterMark: STREAM_HIGH_WATER }, (sock) => void this.carry(f, sock));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new ForwardListenError(f, bind, err.code, err.code === 'EADDRINUSE' ? 'the port is in use' : err.message)),
      );
      server.listen(f.localPort, bind, () => {
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : f.localPort;
        this.boundList[this.servers.indexOf(server)] = { forward: f, bind, port, path: this.path() };
        resolve();
      });
    });
  }

  /** The path to the agent right now (relay while it is unknown). */
  path(): Path {
    const peer = this.node.peerByName(this.agent);
    return peer ? this.node.magicsock.pathOf(peer.key) : RELAY;
  }

  private async carry(forward: ForwardTarget, sock: Socket): Promise<void> {
    sock.setNoDelay(true);
    sock.pause();
    sock.on('error', () => undefined);
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    try {
      const peer = this.node.peerByName(this.agent);
      if (!peer) throw new Error(`${this.agent} is not connected to the coordination server right now`);
      const stream = await this.node.streams.open(peer.key, { kind: 'tcp', target: forward.target });
      if (this.closed || sock.destroyed) {
        stream.destroy(new Error(this.closed ? 'the forward was closed' : 'the local connection closed'));
        sock.destroy();
        return;
      }
      join(sock, stream);
      sock.resume();
      this.emit('connection', forward);
    } catch (err) {
      sock.destroy();
      this.emit('connectionFailed', forward, err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** Binds the forwards' listeners; see Forwarder.start. */
export function startForwards(node: PeerNode, options: ForwardOptions): Promise<Forwarder> {
  return Forwarder.start(node, options);
}

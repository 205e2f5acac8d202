// A running peer: the coordinator connection and the node's socket, wired together. The agent,
// `traverse ping` and the stream commands all run one of these.
//
// Start-up is ordered for a fast first connection: connect to the coordinator (its config names
// the STUN servers), learn our reflexive address with one Binding per server, publish the node,
// and only then run the full netcheck in the background and publish its summary.
// A quickStart node (`traverse proxy`) publishes at once and learns its reflexive address after:
// its one stream starts on the relay and moves to a direct path when one is found.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { CoordinatorClient, type PeerInfo } from './coordinator-client.js';
import { keyProof } from '../coordination/key-proof.js';
import type { NetcheckSummary, ServerConfig, TunnelStatus } from '../coordination/protocol.js';
import type { MagicSock, MagicSockOptions } from '../magicsock/magicsock.js';
import type { Path } from '../net/path.js';
import { interfaceFingerprint } from '../net/interfaces.js';
import { PORT_PREDICTION_DELAY_MS, planPortPrediction } from '../magicsock/port-prediction.js';
import type { NodeKey } from '../identity/node-key.js';
import type { NetcheckReport } from '../netcheck/report.js';
import { resolveEndpointFamilies } from '../net/resolve.js';
import { whyRelayed } from './why-relayed.js';
import { DEFAULT_PORT } from '../stun/constants.js';
import type { StunTarget } from '../stun/client.js';
import type { AcceptDecision, StreamLimits, StreamManager } from '../tunnel/streams.js';
import type { StreamRequest } from '../tunnel/request.js';
import { dialRelayLane } from './relay-lane-dial.js';
import type { Trust } from '../net/tls-trust.js';
import { isTlsFailure } from '../net/http-get.js';
import { trace } from '../log/trace.js';

export interface PeerNodeOptions {
  /** The coordination server, or several replicas of it (tried in turn, see server-choice.ts). */
  readonly server: string | readonly string[];
  readonly token: string;
  /** This process's node key: its own, never shared with another process of the identity. */
  readonly key: NodeKey;
  /** The role this node joins as; the server refuses a token of another kind. */
  readonly role: 'agent' | 'client';
  /** STUN servers from the command line: replaces the coordinator's list; [] with disabled = off. */
  readonly stun?: { readonly disabled: boolean; readonly servers: readonly string[] } | null;
  /** Relay only, whatever the network allows (--disable-direct). */
  readonly disableDirect?: boolean;
  /** Local UDP port of the node's socket (0: any). */
  readonly port?: number;
  /**
   * Ask the default gateway to map the node's port (PCP, NAT-PMP, UPnP IGD): the CLI and the app
   * API turn it on (--no-port-mapping, TRAVERSE_PORT_MAPPING=0 turn it off); off by default here,
   * so a node embedded in a test never talks to the machine's real router.
   */
  readonly portMapping?: boolean;
  readonly logger?: Logger;
  readonly localAddresses?: MagicSockOptions['localAddresses'];
  readonly paths?: MagicSockOptions['paths'];
  /** Netcheck time budget (ms). */
  readonly netcheckTimeoutMs?: number;
  /** How often to report the round trips of paths to the server (ms; default 30 s); a relayed one is measured by a ping through the relay first. */
  readonly rttReportMs?: number;
  /** How often to re-learn our reflexive address (ms). */
  readonly restunMs?: number;
  /** Agents: what to do with a stream a client opens (null: refuse all). */
  readonly acceptStream?: ((peer: PeerRecord, request: StreamRequest) => Promise<AcceptDecision>) | null;
  readonly streamLimits?: Partial<StreamLimits>;
  /** Offer and accept TCP lanes for streams on direct paths (default true; --no-tcp-lane). */
  readonly tcpLane?: boolean;
  /** Offer and accept relay lanes for streams on the relay path (default true; --no-relay-lane). */
  readonly relayLane?: boolean;
  /**
   * Give up if the first connection to the coordinator takes longer (one-shot commands); without
   * it the node keeps retrying with backoff, as an agent should.
   */
  readonly connectTimeoutMs?: number;
  /** Told why the first connection is not there yet (while the node keeps retrying). */
  readonly onConnectProblem?: (detail: string) => void;
  /** The CAs an https server's certificate is checked against (--ca; default: Node's store and the system's bundle). */
  readonly trust?: Trust;
  /**
   * A one-shot command waiting to open its stream (`traverse proxy`, run by ssh per connection):
   * start() returns as soon as the coordinator's config is in and the node is published with the
   * candidates it has; the reflexive address (STUN) follows in the background and is republished,
   * the gateway is asked for a port mapping PORT_MAPPING_DEFER_MS later, punching to peers starts
   * DIRECT_DEFER_MS later, and the netcheck NETCHECK_DEFER_MS later. The first stream goes over
   * the relay meanwhile and moves to a direct path once one is found.
   */
  readonly quickStart?: boolean;
  /**
   * The agent a one-shot command will open a tunnel to: asked for as the node joins, before it
   * is published, so the agent's node arrives sooner. openTunnel(that agent) then takes this
   * request's outcome.
   */
  readonly tunnelTo?: string;
}

/** How long a quick-start node waits before its netcheck, so it does not compete with set-up. */
export const NETCHECK_DEFER_MS = 2_000;
/** ... and before it asks its gateway for a port mapping (before the netcheck, which reports it). */
export const PORT_MAPPING_DEFER_MS = 1_000;
/**
 * ... and before it punches to its peers, pings them through the relay and reports their paths.
 * Its first stream opens and starts (ssh's banner and key exchange) on the relay meanwhile, then
 * moves to the direct path once one is found. Measured in the lab (easy/easy, set-up bench): the
 * proxy's CPU to its first byte 6-10 ms less, and the agent and the server spared work too.
 */
export const DIRECT_DEFER_MS = 1_000;

export interface PeerRecord {
  readonly name: string;
  readonly kind: 'agent' | 'client';
  readonly key: string;
  readonly endpoints: readonly string[];
  readonly netcheck: NetcheckSummary | undefined;
}

export interface PeerNodeEvents {
  path: [peer: PeerRecord, path: Path];
  peer: [peer: PeerRecord];
  peerGone: [peer: { name: string; key: string | null }, how: 'disconnected' | 'lost'];
  tunnel: [agent: string, status: TunnelStatus, reason: string | undefined];
  netcheck: [report: NetcheckReport];
  coordinator: [state: string, detail: string | undefined];
  /** Something the server wants this node's user to know (an agent that replaced another). */
  notice: [message: string];
}

/** How long after a stream changes carrier the path is reported again (one report per burst). */
const CARRIER_REPORT_DELAY_MS = 1000;

export class PeerNode extends EventEmitter<PeerNodeEvents> {
  private readonly peersByKey = new Map<string, PeerRecord>();
  private summary: NetcheckSummary | undefined;
  private netcheckDone: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private interfacesSeen = '';
  private closed = false;
  private quickStarted = false;
  /** Peers whose stream carriers changed and are to be reported (reportCarriersSoon). */
  private readonly carrierReports = new Map<string, NodeJS.Timeout>();
  /** Peers whose relayed round trip is being measured now (one ping at a time each). */
  private readonly relayMeasures = new Set<string>();
  /** A quick start's hold on direct-path work (see DIRECT_DEFER_MS); null once released. */
  private holdDirect: Promise<void> | null = null;
  /** The tunnel asked for at start (options.tunnelTo), until openTunnel takes it. */
  private earlyTunnel: { readonly agent: string; readonly record: Promise<PeerRecord> } | null = null;
  /** openTunnel calls waiting for an answer: close() ends them. */
  private readonly tunnelWaits = new Set<(err: Error) => void>();

  /** Encrypted streams to and from tunnel peers. */
  readonly streams: StreamManager;

  private constructor(
    Streams: typeof StreamManager,
    readonly magicsock: MagicSock,
    readonly coordinator: CoordinatorClient,
    private readonly options: PeerNodeOptions,
    private readonly log: Logger,
  ) {
    super();
    const accept = options.acceptStream;
    this.streams = new Streams({
      magicsock,
      key: options.key,
      logger: log,
      ...(options.streamLimits ? { limits: options.streamLimits } : {}),
      tcpLane: options.tcpLane ?? true,
      relayLane:
        options.relayLane === false
          ? null
        : (peerKey, lane, signal) => {
            // The coordinator's current server: the peer's end of the lane asks the same one.
            const server = this.coordinator.target;
            if (!server) return Promise.reject(new Error('not connected to the coordination server'));
            return dialRelayLane({
              server,
              ...(options.trust ? { trust: options.trust } : {}),
              token: options.token,
              role: options.role,
              nodeKey: options.key.publicHex,
              peerKey,
              lane,
              timeoutMs: 8_000,
              signal,
            });
          },
      accept: accept
        ? (peerKey, request) => {
            const peer = this.peersByKey.get(peerKey);
            return peer ? accept(peer, request) : Promise.resolve({ ok: false, error: 'unknown peer' });
          }
        : null,
      // Only clients open streams, and only to agents: the coordinator's access rules already
      // decided which clients have a tunnel to us.
      mayOpen: (peerKey) => this.peersByKey.get(peerKey)?.kind === 'client',
    });
  }

  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const log = options.logger ?? silentLogger;
    // The coordinator first: its TCP and WebSocket handshakes, and the server's check of the
    // token, run while the UDP socket opens (a set-up's first round trips; nothing arrives
    // before this node is published but the config, which connect() keeps).
    const coordinator = new CoordinatorClient({
      url: options.server,
      token: options.token,
      key: options.key.publicHex,
      role: options.role,
      proveKey: (c) => keyProof(options.key.sharedSecret(Buffer.from(c.key, 'hex')), c.nonce, options.key.publicHex),
      logger: log,
      ...(options.trust ? { trust: options.trust } : {}),
    });
    let lastProblem: string | undefined;
    let failNow: ((err: Error) => void) | undefined;
    const onState = (state: string, detail: string | undefined): void => {
      // 'closed' is final (the start fails with the detail): only a retry is worth a word here.
      if (detail && detail !== lastProblem && state !== 'closed') options.onConnectProblem?.(detail);
      if (detail) lastProblem = detail;
      // A one-shot command does not wait out its timeout for a certificate that retrying cannot fix.
      if (detail && options.connectTimeoutMs && isTlsFailure(detail)) {
        tlsProblem = detail;
        failNow?.(new Error(detail));
      }
    };
    let tlsProblem: string | undefined; // seen before the wait below began
    coordinator.on('state', onState);
    const connected = coordinator.connect();
    // If the timeout below wins, close() later rejects this promise too: nobody waits for it then.
    connected.catch(() => undefined);
    let magicsock: MagicSock;
    let Streams: typeof StreamManager;
    try {
      // The data path's modules (UDX, disco, the tunnel and its encryption: ~10 ms of CPU) load
      // only now, after one turn of the event loop in which the coordinator's TCP connection
      // (all but instant on a LAN) connects and its WebSocket upgrade goes out: they load while
      // the server checks the token, not before the upgrade is even sent.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const [{ MagicSock: Sock }, tunnel] = await Promise.all([import('../magicsock/magicsock.js'), import('../tunnel/streams.js')]);
      Streams = tunnel.StreamManager;
      magicsock = await Sock.open({
        key: options.key,
        relay: { send: (k, p) => coordinator.sendRelay(k, p) },
        directAllowed: !options.disableDirect,
        portMapping: options.portMapping === true && !options.disableDirect ? (options.quickStart ? { startAfterMs: PORT_MAPPING_DEFER_MS } : {}) : false,
        pinhole: options.portMapping === true && !options.disableDirect ? {} : false,
        logger: log,
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.localAddresses ? { localAddresses: options.localAddresses } : {}),
        ...(options.paths ? { paths: options.paths } : {}),
      });
    } catch (err) {
      coordinator.off('state', onState);
      coordinator.close();
      throw err;
    }
    trace('UDP socket open');
    const node = new PeerNode(Streams, magicsock, coordinator, options, log);
    if (options.quickStart) {
      node.holdDirect = new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          node.holdDirect = null;
          resolve();
        }, DIRECT_DEFER_MS);
        t.unref();
        node.timers.push(t);
      });
    }
    node.wire();
    if (options.tunnelTo) {
      // Asked for now, it goes to the server with (before) this node's publication: the server
      // answers it first, and the agent's node comes back a round trip sooner.
      const early = node.openTunnel(options.tunnelTo);
      early.catch(() => undefined); // its taker (openTunnel again) sees the outcome
      node.earlyTunnel = { agent: options.tunnelTo, record: early };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const config = options.connectTimeoutMs
        ? await Promise.race([
            connected,
            new Promise<never>((_, reject) => {
              failNow = reject;
              if (tlsProblem) reject(new Error(tlsProblem));
              timer = setTimeout(
                () => reject(new Error(`no connection within ${options.connectTimeoutMs} ms${lastProblem ? ` (${lastProblem})` : ''}`)),
                options.connectTimeoutMs,
              );
            }),
          ])
        : await connected;
      await node.applyConfig(config);
    } catch (err) {
      node.close();
      throw err;
    } finally {
      clearTimeout(timer);
      coordinator.off('state', onState);
    }
    node.startTimers();
    return node;
  }

  get config(): ServerConfig | null {
    return this.coordinator.config;
  }

  /** The coordination server this node is connected (or connecting) to, of those it was given. */
  get server(): string | null {
    return this.coordinator.server;
  }

  /** Our netcheck summary, once the background netcheck has finished. */
  get netcheck(): NetcheckSummary | undefined {
    return this.summary;
  }

  /** Resolves when the first background netcheck has finished (or failed). */
  netcheckSettled(): Promise<void> {
    return this.netcheckDone;
  }

  get directAllowed(): boolean {
    return this.magicsock.isDirectAllowed;
  }

  peer(key: string): PeerRecord | undefined {
    return this.peersByKey.get(key);
  }

  peerByName(name: string): PeerRecord | undefined {
    for (const p of this.peersByKey.values()) if (p.name === name) return p;
    return undefined;
  }

  /**
   * Asks for a tunnel to an agent and resolves with it once the coordinator has sent its node.
   * Rejects with the coordinator's reason if refused, or after `timeoutMs` if the agent is away.
   */
  openTunnel(agent: string, timeoutMs = 15_000): Promise<PeerRecord> {
    if (this.earlyTunnel?.agent === agent) {
      const early = this.earlyTunnel.record;
      this.earlyTunnel = null;
      return early;
    }
    if (this.closed) return Promise.reject(new Error('the node is closed'));
    return new Promise((resolve, reject) => {
      let waiting = false;
      const done = (err: Error | null, p?: PeerRecord): void => {
        clearTimeout(timer);
        this.tunnelWaits.delete(done);
        this.off('peer', onPeer);
        this.off('tunnel', onTunnel);
        if (err) reject(err);
        else resolve(p!);
      };
      const onPeer = (p: PeerRecord): void => {
        if (p.name === agent) {
          trace('peer known');
          done(null, p);
        }
      };
      const onTunnel = (a: string, status: TunnelStatus, reason: string | undefined): void => {
        if (a !== agent) return;
        if (status === 'refused') done(new Error(`the server refused a tunnel to "${agent}"${reason ? `: ${reason}` : ''}`));
        if (status === 'waiting' && !waiting) {
          // The server knows the agent but it is offline: give it a moment to come back, not the
          // whole timeout.
          waiting = true;
          clearTimeout(timer);
          timer = setTimeout(() => done(new Error(offline())), Math.min(timeoutMs, 5000));
        }
      };
      const offline = (): string => `agent "${agent}" is not connected to the coordination server; is \`traverse agent\` running there?`;
      let timer = setTimeout(
        () => done(new Error(waiting ? offline() : `no answer about agent "${agent}" from the server within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.on('peer', onPeer);
      this.on('tunnel', onTunnel);
      this.tunnelWaits.add(done);
      const known = this.peerByName(agent);
      if (known) return done(null, known);
      this.coordinator.requestTunnel(agent);
    });
  }

  /** Resolves once close() has finished its network goodbyes (the port mapping deleted). */
  get whenClosed(): Promise<void> {
    return this.magicsock.whenPortMappingClosed;
  }

  /** Whether close() was called: what the coordinator reports after it is our own doing. */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fail of [...this.tunnelWaits]) fail(new Error('the node closed'));
    for (const t of this.timers) clearInterval(t);
    for (const t of this.carrierReports.values()) clearTimeout(t);
    this.streams.close();
    this.coordinator.close();
    this.magicsock.close();
  }

  // ------------------------------------------------------------------------------------------

  private wire(): void {
    const c = this.coordinator;
    c.on('relay', (from, payload) => this.magicsock.handleRelay(from, payload));
    c.on('peer', (p: PeerInfo) => {
      const rec: PeerRecord = { name: p.name, kind: p.kind, key: p.node.key, endpoints: p.node.endpoints, netcheck: p.node.netcheck };
      // An agent that came back with a new key (a restarted workspace): forget the old one. A
      // client identity may have several nodes at once, each with its own key: they stay.
      for (const [k, old] of this.peersByKey) {
        if (rec.kind === 'agent' && old.kind === 'agent' && old.name === p.name && k !== rec.key) {
          this.streams.peerGone(k);
          this.peersByKey.delete(k);
          this.magicsock.removePeer(k);
        }
      }
      this.peersByKey.set(rec.key, rec);
      const group = `${p.kind}:${p.name}`;
      // Budgets are per identity (one may run many nodes); probes aim only where the coordinator
      // vouches for: the node's published endpoints and the IP it saw the node connect from.
      const goDirect = (): void => {
        if (this.closed || this.peersByKey.get(rec.key) !== rec) return; // replaced or gone meanwhile
        this.magicsock.upsertPeer(rec.key, this.magicsock.isDirectAllowed ? rec.endpoints : [], { group, vouchedIp: p.seenFrom });
        // The server forgets reported paths when it restarts, and only accepts a report once both
        // sides of the tunnel are back; a peer's node arriving is that moment, so report again.
        this.reportPath(rec.key);
        this.measureRelay(rec.key);
        this.maybePredictPorts(rec);
      };
      if (this.holdDirect) {
        // A quick start's set-up: the peer is known (its stream opens on the relay) but nothing
        // is aimed at it yet, so punching, pings through the relay and path reports take no CPU
        // (here, at the agent, at the server) from the first stream's opening.
        this.magicsock.upsertPeer(rec.key, [], { group });
        void this.holdDirect.then(goDirect);
      } else {
        goDirect();
      }
      this.emit('peer', rec);
    });
    const gone = (how: 'disconnected' | 'lost') => (g: { name: string; key: string | null }) => {
      // A lost peer may still be reachable directly (the coordinator, not the peer, may be the
      // one in trouble), so only a clean disconnect removes it at once.
      if (how === 'disconnected' && g.key) {
        this.streams.peerGone(g.key);
        this.peersByKey.delete(g.key);
        this.magicsock.removePeer(g.key);
      }
      this.emit('peerGone', { name: g.name, key: g.key }, how);
    };
    c.on('peerDisconnected', gone('disconnected'));
    c.on('peerLost', gone('lost'));
    c.on('tunnel', (a, s, r) => this.emit('tunnel', a, s, r));
    c.on('notice', (m) => this.emit('notice', m));
    c.on('state', (s, d) => this.emit('coordinator', s, d));
    this.magicsock.on('endpoints', () => this.publish());
    this.magicsock.on('path', (key, path) => {
      this.reportPath(key);
      if (path.kind === 'relay') this.measureRelay(key);
      const rec = this.peersByKey.get(key);
      if (rec) this.emit('path', rec, path);
    });
    this.streams.on('carrier', (key) => this.reportCarriersSoon(key));
  }

  /** Tells the server the path to a peer as the engine last announced it, with its round trip. */
  private reportPath(key: string): void {
    const path = this.magicsock.pathOf(key);
    const rttMs = this.magicsock.latencyOf(key);
    const streams = this.streams.carriersTo(key);
    if (path.kind === 'direct') return this.coordinator.reportPath(key, { kind: 'direct', endpoint: path.endpoint }, { rttMs, streams });
    // UDP relayed, but a direct TCP lane carries the streams (lane-offers.ts): that is the path.
    const tcp = this.streams.tcpPathTo(key);
    if (tcp) return this.coordinator.reportPath(key, tcp, { rttMs: null, streams });
    // A relayed path goes with its reason, the sentence `ping` prints, so the operators'
    // dashboard can say why without a netcheck of its own.
    const rec = this.peersByKey.get(key);
    const blockedByServer = this.config?.blockDirect ?? false;
    const reason = rec
      ? whyRelayed({
          disabledHere: !this.directAllowed && !blockedByServer,
          blockedByServer,
          hereName: this.config?.identity.name ?? 'this node',
          peerName: rec.name,
          here: this.summary,
          peer: rec.netcheck,
          peerHasEndpoints: rec.endpoints.length > 0,
        })
      : undefined;
    this.coordinator.reportPath(key, { kind: 'relay' }, { rttMs, streams, ...(reason === undefined ? {} : { reason }) });
  }

  /**
   * A relayed path's round trip, for the server's views: one ping through the relay (the engine's
   * own pings go to direct candidates only), then the path is reported again with it.
   */
  private measureRelay(key: string): void {
    if (this.closed || this.relayMeasures.has(key) || this.magicsock.pathOf(key).kind !== 'relay') return;
    this.relayMeasures.add(key);
    void this.magicsock
      .ping(key)
      .then((r) => {
        if (r && r.path.kind === 'relay' && !this.closed && this.peersByKey.has(key) && this.magicsock.pathOf(key).kind === 'relay') this.reportPath(key);
      })
      .finally(() => this.relayMeasures.delete(key));
  }

  /**
   * Streams moving onto or off TCP lanes change what the path report says; a burst of them (many
   * streams opening at once) is told once, a second later, within the server's message budget.
   */
  private reportCarriersSoon(key: string): void {
    if (this.carrierReports.has(key) || this.closed) return;
    const timer = setTimeout(() => {
      this.carrierReports.delete(key);
      if (!this.closed && this.peersByKey.has(key)) this.reportPath(key);
    }, CARRIER_REPORT_DELAY_MS);
    timer.unref();
    this.carrierReports.set(key, timer);
  }

  private async applyConfig(config: ServerConfig): Promise<void> {
    const directAllowed = !this.options.disableDirect && !config.blockDirect;
    this.magicsock.setDirectAllowed(directAllowed);
    if (this.options.quickStart && !this.quickStarted) {
      // Only the first config: later ones (after a reconnect) take the full path below.
      this.quickStarted = true;
      this.publish(); // what we have now; 'endpoints' republishes when the STUN answers come in
      trace('endpoints published (before STUN)');
      const learn = this.learnEndpoints(config).then(
        () => trace('STUN done (endpoints known)'),
        (err: Error) => this.log.warn({ err: err.message }, 'learning endpoints'),
      );
      const defer = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, NETCHECK_DEFER_MS);
        t.unref();
        this.timers.push(t);
      });
      this.netcheckDone = Promise.all([learn, defer]).then(() => (this.closed ? undefined : this.runNetcheck()));
      return;
    }
    await this.learnEndpoints(config);
    trace('STUN done (endpoints known)');
    this.publish();
    trace('endpoints published');
    this.netcheckDone = this.runNetcheck();
  }

  /** Sets the STUN servers (ours or the config's) and learns the node's reflexive address from them. */
  private async learnEndpoints(config: ServerConfig): Promise<void> {
    const override = this.options.stun;
    const list = override ? (override.disabled ? [] : override.servers) : config.stun;
    const resolved: StunTarget[] = [];
    for (const s of list) {
      try {
        // A name with A and AAAA records is a server in each family: the socket is dual-stack,
        // and magicsock asks only the families it can reach.
        for (const e of await resolveEndpointFamilies(s, DEFAULT_PORT)) resolved.push({ address: e.address, port: e.port });
      } catch (err) {
        this.log.warn({ stun: s, err: (err as Error).message }, 'skipping a STUN server that does not resolve');
      }
    }
    this.magicsock.setStunServers(resolved);
    if (this.closed) return;
    await this.magicsock.refreshEndpoints();
  }

  private async runNetcheck(): Promise<void> {
    try {
      const report = await this.magicsock.runNetcheck(this.options.netcheckTimeoutMs ?? 3000);
      this.summary = summarize(report);
      this.emit('netcheck', report);
      this.publish();
      for (const p of this.peersByKey.values()) this.maybePredictPorts(p);
      // A relayed tunnel's reason may read differently now that our own netcheck is known.
      for (const key of this.peersByKey.keys()) if (this.magicsock.pathOf(key).kind === 'relay') this.reportPath(key);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'netcheck failed');
    }
  }

  /**
   * Port prediction when planPortPrediction says the two NATs call for it (ours hard, the peer's
   * easy but filtering), and only if hole punching has not found a direct path shortly.
   */
  private maybePredictPorts(peer: PeerRecord): void {
    const plan = planPortPrediction(this.summary, peer.netcheck, peer.endpoints);
    if (!plan) return;
    const t = setTimeout(() => {
      if (this.closed || !this.peersByKey.has(peer.key)) return;
      if (this.magicsock.pathOf(peer.key).kind === 'direct') return;
      this.magicsock.predictPorts(peer.key, plan);
    }, PORT_PREDICTION_DELAY_MS);
    t.unref();
  }

  private publish(): void {
    if (this.closed) return;
    this.coordinator.publishNode({
      endpoints: [...this.magicsock.endpoints],
      preferredRelay: null,
      ...(this.summary ? { netcheck: this.summary } : {}),
    });
  }

  private startTimers(): void {
    // Later configs come after reconnects (the server restarted; its settings may have changed).
    this.coordinator.on('config', (cfg) => {
      if (!this.closed) void this.applyConfig(cfg).catch((err: Error) => this.log.warn({ err: err.message }, 'applying server config'));
    });
    this.interfacesSeen = interfaceFingerprint();
    // The round trip of each path changes under it: a report now and then keeps the server's
    // views (traverse status, the dashboard) current; the server stores a path only when it
    // changed. A relayed path is measured first, by a ping through the relay.
    this.timers.push(
      setInterval(() => {
        for (const key of this.peersByKey.keys()) {
          if (this.magicsock.pathOf(key).kind === 'direct') this.reportPath(key);
          else this.measureRelay(key);
        }
      }, this.options.rttReportMs ?? 30_000),
    );
    // Re-learn the reflexive address now and then: NAT mappings expire and move.
    this.timers.push(setInterval(() => void this.magicsock.refreshEndpoints().catch(() => undefined), this.options.restunMs ?? 30_000));
    // A network change (an address came or went) invalidates every path: punch again.
    this.timers.push(
      setInterval(() => {
        const now = interfaceFingerprint();
        if (now === this.interfacesSeen) return;
        this.interfacesSeen = now;
        this.log.info('network change: re-learning endpoints and punching again');
        this.magicsock.networkChanged();
        void this.magicsock.refreshEndpoints().catch(() => undefined);
      }, 5000),
    );
    for (const t of this.timers) t.unref();
  }
}

/** The parts of a netcheck report that peers see, to explain a relayed tunnel. */
export function summarize(r: NetcheckReport): NetcheckSummary {
  const mapping = r.mapping === 'unknown' && r.mappingVariesByDestIP === true ? 'address-and-port-dependent' : r.mapping;
  return {
    udp: r.udp,
    mapping,
    filtering: r.filtering,
    hairpinning: r.hairpinning,
    globalV4: r.globalV4,
    globalV6: r.globalV6,
    preferredStun: r.preferredServer,
    stunUnanswered: r.servers.filter((s) => s.latencyMs === null).map((s) => s.address).slice(0, 16),
    ...(r.portMapping
      ? { portMapping: r.portMapping.mapping ? { protocol: r.portMapping.mapping.protocol, external: r.portMapping.mapping.external, trusted: r.portMapping.trusted } : null }
      : {}),
  };
}

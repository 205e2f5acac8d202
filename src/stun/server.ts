// The STUN server: Binding over UDP (and optionally TCP), RFC 5780 behaviour discovery with an
// alternate address, per-source rate limiting and Prometheus metrics. The protocol decisions live
// in server-respond.ts; this file binds sockets and wires the pieces together.
import type dgram from 'node:dgram';
import { isIP } from 'node:net';
import { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatEndpoint } from '../net/endpoint.js';
import type { TransportAddress } from './attributes.js';
import { Responder, type SocketRole } from './server-respond.js';
import { DEFAULT_RATE_LIMIT, SourceRateLimiter } from './server-rate-limit.js';
import { ServerMetrics, type Tally } from './server-metrics.js';
import { bindUdp, serveUdp } from './server-udp.js';
import { DEFAULT_TCP_LIMITS, serveTcp, type TcpLimits, type TcpStunServer } from './server-tcp.js';

export interface StunServerOptions {
  readonly listen: { readonly address: string; readonly port: number };
  /** Alternate IP address: turns on RFC 5780 mode (four UDP sockets, CHANGE-REQUEST, OTHER-ADDRESS). */
  readonly altAddress?: string;
  /** Alternate port in RFC 5780 mode; default primary port + 1 (or another free port when port is 0). */
  readonly altPort?: number;
  /** Also serve STUN over TCP on the listen address and port. */
  readonly tcp?: boolean;
  /** Requests per second per source IP; 0 turns limiting off. Default DEFAULT_RATE_LIMIT. */
  readonly rateLimit?: number;
  readonly logger?: Logger;
  /** Where to register the metrics; default a registry of the server's own (see StunServer.registry). */
  readonly registry?: Registry;
  /** False when the sockets are shared among cluster workers. Default true. */
  readonly exclusive?: boolean;
  readonly tcpLimits?: Partial<TcpLimits>;
  /** Bound on the rate limiter's table of source addresses. */
  readonly rateLimitTableSize?: number;
}

export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

export interface StunServer {
  /** The primary UDP address (with the real port when 0 was asked for). */
  readonly address: BoundAddress;
  /**
   * Every UDP socket: [primary], or in RFC 5780 mode [primary IP + primary port, primary IP + alt
   * port, alt IP + primary port, alt IP + alt port].
   */
  readonly udp: readonly BoundAddress[];
  /** The TCP listener, when tcp was asked for. */
  readonly tcp: BoundAddress | null;
  readonly registry: Registry;
  /** Running totals since start, for tests and logs. */
  stats(): { readonly udp: Tally; readonly tcp: Tally };
  close(): Promise<void>;
}

/** A configuration the server cannot run with; the message says what to change. */
export class StunServerConfigError extends Error {
  override readonly name = 'StunServerConfigError';
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

function validate(o: StunServerOptions): void {
  const { address, port } = o.listen;
  if (isIP(address) === 0) throw new StunServerConfigError(`listen address "${address}" is not an IP address`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new StunServerConfigError(`listen port ${port} is not 0-65535`);
  if (o.rateLimit !== undefined && (!Number.isFinite(o.rateLimit) || o.rateLimit < 0)) {
    throw new StunServerConfigError(`rate limit ${o.rateLimit} must be a number of requests per second, or 0 for none`);
  }
  if (o.altPort !== undefined && o.altAddress === undefined) {
    throw new StunServerConfigError('an alternate port needs an alternate address too (--alt-address)');
  }
  if (o.altAddress === undefined) return;
  if (isIP(o.altAddress) === 0) throw new StunServerConfigError(`alternate address "${o.altAddress}" is not an IP address`);
  if (isWildcard(address)) {
    throw new StunServerConfigError(
      `RFC 5780 mode needs the primary address itself, not ${address}: listen on the address clients reach (e.g. --listen 192.0.2.1:3478)`,
    );
  }
  if (isIP(o.altAddress) !== isIP(address)) {
    throw new StunServerConfigError(`alternate address ${o.altAddress} and listen address ${address} are not of the same IP family`);
  }
  if (o.altAddress === address) throw new StunServerConfigError('the alternate address must differ from the listen address');
  if (o.altPort !== undefined) {
    if (!Number.isInteger(o.altPort) || o.altPort < 1 || o.altPort > 65535) {
      throw new StunServerConfigError(`alternate port ${o.altPort} is not 1-65535`);
    }
    if (o.altPort === port) throw new StunServerConfigError('the alternate port must differ from the listen port');
  }
}

function familyOf(address: string): 4 | 6 {
  return isIP(address) === 6 ? 6 : 4;
}

interface Bound {
  readonly sockets: dgram.Socket[];
  readonly addresses: BoundAddress[];
  readonly tcp: TcpStunServer | null;
}

/** Binds everything once; a random (port 0) layout that collides is retried by the caller. */
async function bindAll(
  o: StunServerOptions,
  tcpResponder: (primary: BoundAddress) => Responder,
  metrics: ServerMetrics, limiter: SourceRateLimiter): Promise<Bound> {
  const exclusive = o.exclusive ?? true;
  const sockets: dgram.Socket[] = [];
  let tcp: TcpStunServer | null = null;
  try {
    const primary = await bindUdp({ address: o.listen.address, port: o.listen.port, exclusive });
    sockets.push(primary);
    const port = primary.address().port;
    const addresses: BoundAddress[] = [{ address: o.listen.address, port }];
    if (o.altAddress !== undefined) {
      const wantAlt = o.altPort ?? (o.listen.port === 0 ? 0 : port + 1);
      const second = await bindUdp({ address: o.listen.address, port: wantAlt, exclusive });
      sockets.push(second);
      const altPort = second.address().port;
      sockets.push(await bindUdp({ address: o.altAddress, port, exclusive }));
      sockets.push(await bindUdp({ address: o.altAddress, port: altPort, exclusive }));
      addresses.push({ address: o.listen.address, port: altPort }, { address: o.altAddress, port }, { address: o.altAddress, port: altPort });
    }
    if (o.tcp === true) {
      tcp = await serveTcp({
        address: o.listen.address,
        port,
        exclusive,
        responder: tcpResponder(addresses[0]!),
        limiter,
        metrics,
        limits: { ...DEFAULT_TCP_LIMITS, ...o.tcpLimits },
      });
    }
    return { sockets, addresses, tcp };
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }
}

function roles(addresses: readonly BoundAddress[], listenAddress: string): SocketRole[] {
  const fam = familyOf(listenAddress);
  const ta = (a: BoundAddress): TransportAddress => ({ family: fam, address: a.address, port: a.port });
  if (addresses.length === 1) {
    const origin = isWildcard(listenAddress) ? null : ta(addresses[0]!);
    return [{ ipIndex: 0, portIndex: 0, origin, other: null }];
  }
  return addresses.map((a, i) => ({
    ipIndex: (i >> 1) as 0 | 1,
    portIndex: (i & 1) as 0 | 1,
    origin: ta(a),
    other: ta(addresses[3 - i]!), // both IP and port changed
  }));
}

export async function startStunServer(options: StunServerOptions): Promise<StunServer> {
  validate(options);
  const log = options.logger ?? silentLogger;
  const registry = options.registry ?? new Registry();
  const metrics = new ServerMetrics(registry);
  const limiter = new SourceRateLimiter({
    rate: options.rateLimit ?? DEFAULT_RATE_LIMIT,
    ...(options.rateLimitTableSize !== undefined ? { maxEntries: options.rateLimitTableSize } : {}),
  });
  // TCP cannot answer from another address, so its responder never honours CHANGE-REQUEST.
  const tcpResponder = (primary: BoundAddress): Responder =>
    new Responder({ sockets: roles([primary], options.listen.address), changeSupported: false });
  let bound: Bound | undefined;

  // With port 0 the alternate and TCP ports are picked after the primary one and can collide with
  // something else on the host; a few fresh tries make that practically impossible.
  const randomLayout = options.listen.port === 0;
  for (let attempt = 1; bound === undefined; attempt++) {
    try {
      bound = await bindAll(options, tcpResponder, metrics, limiter);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (randomLayout && code === 'EADDRINUSE' && attempt < 8) continue;
      throw describeBindError(err, options);
    }
  }

  const { sockets, addresses, tcp } = bound;
  const rfc5780 = sockets.length === 4;
  const responder = new Responder({ sockets: roles(addresses, options.listen.address), changeSupported: rfc5780 });
  serveUdp({
    sockets: sockets,
    responder,
    limiter,
    tally: metrics.udp,
    onError: (err, i) => log.error({ err, socket: addresses[i] }, 'UDP socket error'),
  });
  const tcpAddress = tcp === null ? null : { address: options.listen.address, port: tcp.port };
  log.info(
    {
      udp: addresses.map((a) => formatEndpoint(a.address, a.port)),
      tcp: tcpAddress === null ? null : formatEndpoint(tcpAddress.address, tcpAddress.port),
      rfc5780,
      rateLimit: limiter.enabled ? (options.rateLimit ?? DEFAULT_RATE_LIMIT) : 0,
    },
    'STUN server listening',
  );

  let closing: Promise<void> | null = null;
  return {
    address: addresses[0]!,
    udp: addresses,
    tcp: tcpAddress,
    registry,
    stats: () => ({ udp: metrics.stats('udp'), tcp: metrics.stats('tcp') }),
    close() {
      closing ??= (async () => {
        await Promise.all([
          ...sockets.map((s) => new Promise<void>((done) => s.close(() => done()))),
          tcp?.close(),
        ]);
        log.info('STUN server closed');
      })();
      return closing;
    },
  };
}

function describeBindError(err: unknown, o: StunServerOptions): Error {
  const e = err as NodeJS.ErrnoException;
  const where = formatEndpoint(o.listen.address, o.listen.port);
  if (e.code === 'EADDRINUSE') {
    return new StunServerConfigError(`${where} (or an alternate/TCP port next to it) is already in use: stop the other server or pick another --listen / --alt-port`);
  }
  if (e.code === 'EADDRNOTAVAIL') {
    return new StunServerConfigError(`cannot bind ${where}${o.altAddress ? ` / ${o.altAddress}` : ''}: the address is not on this host (check \`ip addr\`)`);
  }
  if (e.code === 'EACCES') return new StunServerConfigError(`not allowed to bind ${where}: use a port above 1023 or grant CAP_NET_BIND_SERVICE`);
  return err instanceof Error ? err : new Error(String(err));
}

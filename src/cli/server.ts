// `traverse server`: the coordination server, relay and (optionally) embedded STUN server.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { createLogger } from '../log/logger.js';
import { formatEndpoint, type HostPort } from '../net/endpoint.js';
import { hasIPv6 } from '../net/interfaces.js';
import { createMetrics } from '../server/metrics.js';
import { PROTOCOL_PATH } from '../coordination/protocol.js';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, ListenError, startCoordinatorServer } from '../server/server.js';
import { startEmbeddedStun, type RunningStunServer } from '../server/stun-embed.js';
import { describeStore } from '../server/store/open.js';
import { CommandFailed, UsageError } from './errors.js';
import { hostPortFlag, intOption } from './options.js';
import { DATABASE_OPTION, dataDir, openStore, storeLocation } from './data-dir.js';
import { onShutdown } from './shutdown.js';
import { addLogOptions } from './log-options.js';
import { summaryOf } from './command-list.js';
import { addServerTlsOptions, reloadOnSighup, serverTls, tlsBannerLine, tlsHostName, trustProxyFlag, proxyWords, type TlsFlags } from './server-tls.js';
import { trustFlag } from './ca-option.js';
import { addReplicaOptions, replicationFrom, type ReplicaFlags } from './replica-options.js';

/** All interfaces, IPv6 and IPv4 (a dual-stack listener); 0.0.0.0:8080 where IPv6 is off. */
export const DEFAULT_LISTEN = '[::]:8080';
/** The embedded STUN server's default UDP port; on by default so one process is a whole deployment. */
export const DEFAULT_STUN_PORT = 3478;

interface ServerFlags extends TlsFlags, ReplicaFlags {
  listen: string;
  data?: string;
  database?: string;
  stun?: string[];
  stunListen?: string;
  blockDirect?: boolean;
  metrics?: string;
  pingInterval: string;
  matrixReport?: string;
  dashboard: boolean;
  relayRate: number;
  maxConnectionsPerAddress: number;
}

export function registerServer(program: Command): void {
  const cmd = program
    .command('server')
    .description(summaryOf('server'))
    .option('--listen <host:port>', 'HTTP/WebSocket address to listen on', DEFAULT_LISTEN)
    .option('--data <dir>', 'data folder holding traverse.db (env TRAVERSE_DATA; default ./traverse-data)')
    .option(...DATABASE_OPTION)
    .option(
      '--stun <host:port>',
      'STUN server sent to peers (after the embedded one); repeatable; "disable" turns STUN off (default: only the embedded STUN server)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option(
      '--stun-listen <host:port>',
      'run the embedded STUN server on this UDP address and send it to peers first; "disable" turns it off (default: the --listen host, UDP port 3478; skipped with a warning if that port is taken)',
    )
    .option('--block-direct', 'tell peers not to try direct paths: everything goes through the relay')
    .option('--metrics <host:port>', 'serve Prometheus metrics without authentication on this address')
    .option('--ping-interval <seconds>', 'ping every peer this often; silent for two intervals means lost', '15')
    .option('--matrix-report <file>', 'show this connectivity-matrix report (bench/out/matrix.json) in the dashboard (env TRAVERSE_MATRIX_REPORT)')
    .option('--no-dashboard', 'do not serve the operators\' web dashboard at /')
    .option(
      '--relay-rate <MB/s>',
      'relayed bytes per second one peer may send, in MB/s (0: unlimited); bounds what one peer can make the server carry',
      intOption('--relay-rate', 0, 100_000),
      128,
    )
    .option(
      '--max-connections-per-address <n>',
      'open connections one source address may hold (every forward, ssh session and ping is one); 0: no limit',
      intOption('--max-connections-per-address', 0, 1_000_000),
      DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    );
  addServerTlsOptions(cmd);
  addLogOptions(addReplicaOptions(cmd), 'info')
    .action(async (flags: ServerFlags) => runServer(flags));
}

async function runServer(flags: ServerFlags): Promise<void> {
  const listen = toListen(hostPortFlag('--listen', flags.listen === DEFAULT_LISTEN && !hasIPv6() ? '0.0.0.0:8080' : flags.listen, 8080));
  const stunDefaulted = flags.stunListen === undefined;
  const stunDisabled = flags.stunListen === 'disable' || (flags.stun ?? []).includes('disable');
  const stunListen = stunDisabled
    ? undefined
    : stunDefaulted
      ? { host: listen.host, port: DEFAULT_STUN_PORT }
      : toListen(hostPortFlag('--stun-listen', flags.stunListen!, DEFAULT_STUN_PORT));
  const metricsListen = flags.metrics === undefined ? undefined : toListen(hostPortFlag('--metrics', flags.metrics, 9090));
  const stun = stunList(flags.stun ?? [], !stunDefaulted && stunListen !== undefined);
  const pingSeconds = Number(flags.pingInterval);
  if (!Number.isFinite(pingSeconds) || pingSeconds < 0.1 || pingSeconds > 3600) {
    throw new UsageError(`--ping-interval "${flags.pingInterval}" must be a number of seconds from 0.1 to 3600`);
  }
  const location = storeLocation(flags);
  const replicationBase = replicationFrom(flags, location.url);
  // Other replicas' https:// mesh URLs are checked against --ca too (a private CA for the mesh).
  const replication = replicationBase && flags.ca !== undefined ? { ...replicationBase, trust: trustFlag(flags.ca) } : replicationBase;
  const matrixReport = flags.matrixReport ?? process.env.TRAVERSE_MATRIX_REPORT;
  if (matrixReport !== undefined && !existsSync(matrixReport)) {
    throw new UsageError(`--matrix-report ${matrixReport}: no such file (npm run bench:matrix writes bench/out/matrix.json)`);
  }
  const log = createLogger('server');
  const trustProxy = trustProxyFlag(flags);
  // ACME certificates live in a data folder even when the store is PostgreSQL (--data and
  // --database exclude each other, so that is TRAVERSE_DATA or ./traverse-data then).
  const tls = serverTls(flags, location.dir ?? dataDir(undefined), log);
  const store = await openStore(location, false, (err) => log.warn({ err: err.message }, 'a database connection failed; the next query reconnects'));
  const metrics = createMetrics();

  let stunServer: RunningStunServer | undefined;
  if (stunListen) {
    try {
      stunServer = await startEmbeddedStun({
        listen: { address: stunListen.host, port: stunListen.port },
        logger: log.child({ component: 'stun' }),
        registry: metrics.registry,
      });
    } catch (err) {
      if (stunDefaulted) {
        log.warn({ err: message(err) }, `embedded STUN server not started on UDP ${formatEndpoint(stunListen.host, stunListen.port)}; pass --stun-listen HOST:PORT or --stun`);
      } else {
        await store.close();
        throw new CommandFailed(`cannot start the STUN server on ${flags.stunListen}: ${message(err)}`);
      }
    }
  }

  let server;
  try {
    server = await startCoordinatorServer({
      listen,
      store,
      stun,
      // Advertise the port actually bound (it differs when 0 was asked for).
      ...(stunListen && stunServer ? { embeddedStun: { host: stunListen.host, port: stunServer.address.port } } : {}),
      blockDirect: flags.blockDirect ?? false,
      pingIntervalMs: Math.round(pingSeconds * 1000),
      limits: { relayBytesPerSec: flags.relayRate * 1024 * 1024 },
      maxConnectionsPerAddress: flags.maxConnectionsPerAddress,
      logger: log,
      metrics,
      // Servers sharing a PostgreSQL database tell their connection records apart by this.
      replica: location.url !== undefined ? `${hostname()}/${formatEndpoint(listen.host, listen.port)}` : '',
      ...(metricsListen ? { metricsListen } : {}),
      ...(tls ? { tls: tls.kind === 'files' ? tls.holder : tls.acme } : {}),
      trustProxy,
      ...(replication ? { replication } : {}),
      dashboard: flags.dashboard ? { ...(matrixReport ? { matrixReport } : {}) } : false,
    });
  } catch (err) {
    await stunServer?.close();
    await store.close();
    if (err instanceof ListenError) {
      const flag = err.which === 'metrics' ? '--metrics' : '--listen';
      const hint = err.code === 'EADDRINUSE' ? `; the port is taken: pick another with ${flag} HOST:PORT` : '';
      throw new CommandFailed(`${flag} ${err.message}${hint}`);
    }
    throw new CommandFailed(`cannot start the server: ${message(err)}`);
  }

  // ACME: the listener is up, so the CA can check the TLS-ALPN-01 challenge; the first
  // certificate is needed before peers can connect.
  let served = tls?.kind === 'files' ? tls.holder.current : null;
  if (tls?.kind === 'acme') {
    try {
      served = await tls.acme.start();
    } catch (err) {
      await server.close();
      await stunServer?.close();
      await store.close();
      throw new CommandFailed(message(err));
    }
  }
  const identities = await store.listIdentities();
  const shownData = location.url !== undefined ? `--database ${describeStore(location)}` : `--data ${flags.data ?? process.env.TRAVERSE_DATA ?? 'traverse-data'}`;
  // On a wildcard address, show a name peers can use rather than 0.0.0.0.
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  const shownHost = (served ? tlsHostName(served) : undefined) ?? (wildcard ? hostname() : listen.host);
  const base = `${tls ? 'https' : 'http'}://${formatEndpoint(shownHost, server.port)}`;
  const lines = [
    `traverse server listening on ${server.url}${wildcard ? ' (all interfaces)' : ''}`,
    `  coordination  ${base.replace('http', 'ws')}${PROTOCOL_PATH}`,
    ...(flags.dashboard ? [`  dashboard     ${base}/ (sign in with an admin token)`] : []),
    `  API           ${base}/api/v1/peers, ${base}/api/v1/tunnels, ${base}/healthz`,
    `  data          ${describeStore(location)} (${identities.length} identities)`,
    `  STUN to peers ${stun.length === 0 && !stunServer ? 'disabled' : [...(stunListen && stunServer ? [`embedded on udp ${formatEndpoint(stunListen.host, stunServer.address.port)}`] : []), ...stun].join(', ')}`,
    `  direct paths  ${flags.blockDirect ? 'blocked (relay only)' : 'allowed'}`,
  ];
  if (tls && served) lines.push(tlsBannerLine(tls, served));
  if (trustProxy.length > 0) lines.push(`  proxies       ${proxyWords(trustProxy)}: their connections stand for the right-most X-Forwarded-For entry`);
  if (server.replica) {
    const others = server.replica.peers.size;
    lines.push(`  replica       ${server.replica.id}, relay mesh at ${server.replica.meshUrl}; ${others} other replica${others === 1 ? '' : 's'} alive`);
  }
  if (server.metricsUrl) lines.push(`  metrics       ${server.metricsUrl}`);
  if (identities.length === 0) {
    lines.push(
      'No identities yet. Create tokens for a workspace and a developer machine:',
      `  traverse token create ${shownData} --agent my-workspace`,
      `  traverse token create ${shownData} --client my-laptop --allow my-workspace`,
    );
  } else {
    lines.push(`Manage tokens with: traverse token list ${shownData}`);
  }
  process.stdout.write(lines.join('\n') + '\n');

  const stopReload = tls ? reloadOnSighup(tls, log) : () => undefined;
  onShutdown(async () => {
    stopReload();
    if (tls?.kind === 'acme') tls.acme.stop();
    await server.close();
    await stunServer?.close();
    await store.close();
  });
}

function toListen(hp: HostPort): { host: string; port: number } {
  return { host: hp.host, port: hp.port };
}

/** --stun values: "disable" means no STUN at all; nothing given means only the embedded server. */
export function stunList(values: readonly string[], embedded: boolean): string[] {
  if (values.includes('disable')) {
    if (values.length > 1) throw new UsageError('--stun disable cannot be combined with other --stun servers');
    if (embedded) throw new UsageError('--stun disable turns STUN off; drop it to use --stun-listen');
    return [];
  }
  if (values.length === 0) return [];
  return values.map((v) => {
    const hp = hostPortFlag('--stun', v, 3478);
    return formatEndpoint(hp.host, hp.port);
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

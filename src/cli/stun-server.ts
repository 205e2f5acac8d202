// `traverse stun-server`: run a STUN server (RFC 8489 Binding, RFC 5780 behaviour discovery).
import { Command, Option } from 'commander';
import { startStunServer, StunServerConfigError, type BoundAddress } from '../stun/server.js';
import { startStunCluster } from '../stun/server-cluster.js';
import { serveMetrics } from '../stun/server-metrics-http.js';
import { DEFAULT_RATE_LIMIT } from '../stun/server-rate-limit.js';
import { MAX_RESPONSE_GROWTH } from '../stun/server-respond.js';
import { DEFAULT_PORT } from '../stun/constants.js';
import { formatEndpoint, parseEndpoint, parsePort } from '../net/endpoint.js';
import { isIP } from 'node:net';
import { createLogger } from '../log/logger.js';
import { onShutdown } from './shutdown.js';
import { addLogOptions } from './log-options.js';
import { UsageError } from './errors.js';
import { hostPortFlag } from './options.js';
import { summaryOf } from './command-list.js';

interface Flags {
  listen: string;
  altAddress?: string;
  altPort?: string;
  tcp?: boolean;
  metrics?: string;
  rateLimit: string;
  workers: string;
}

function count(text: string, what: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${what} "${text}" must be a whole number of at least ${min}`);
  return Number(text);
}

export function registerStunServer(program: Command): void {
  const cmd = program
    .command('stun-server')
    .summary(summaryOf('stun-server'))
    .description(
      'Answer STUN Binding requests with the address and port they came from (XOR-MAPPED-ADDRESS;\n' +
        'MAPPED-ADDRESS for RFC 3489 clients). With --alt-address it also serves RFC 5780 behaviour\n' +
        'discovery from four sockets, which `traverse netcheck` uses to classify NATs.\n\n' +
        `Responses are at most ${MAX_RESPONSE_GROWTH} bytes larger than their request and go only to the\n` +
        "request's source; RESPONSE-PORT is refused with 420. Logs are JSON (pino) on stderr.",
    )
    .option('--listen <host:port>', 'UDP (and TCP) address to listen on; [::]:3478 for IPv6 and IPv4', `0.0.0.0:${DEFAULT_PORT}`)
    .option(
      '--alt-address <ip>',
      'a second IP address of this host: turns on RFC 5780 mode (needs a concrete --listen address)',
    )
    .option('--alt-port <port>', 'alternate port for RFC 5780 mode (default: listen port + 1)')
    .option('--tcp', 'also serve STUN over TCP on the listen address and port')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .option('--rate-limit <n>', 'requests per second allowed from one source IP; 0 = no limit', String(DEFAULT_RATE_LIMIT))
    .addOption(new Option('--workers <n>', 'worker processes sharing the sockets (more cores, more throughput)').default('1'));
  addLogOptions(cmd, 'info')
    .action(async (flags: Flags) => {
      const listen = parseEndpoint(flags.listen, DEFAULT_PORT);
      if (flags.altAddress !== undefined && isIP(flags.altAddress) === 0) {
        throw new UsageError(`--alt-address "${flags.altAddress}" is not an IP address`);
      }
      const altPort = flags.altPort === undefined ? undefined : parsePort(flags.altPort, '--alt-port');
      const rateLimit = count(flags.rateLimit, '--rate-limit', 0);
      const workers = count(flags.workers, '--workers', 1);
      const metricsAt = flags.metrics === undefined ? undefined : hostPortFlag('--metrics', flags.metrics);
      const server = {
        listen: { address: listen.address, port: listen.port },
        ...(flags.altAddress !== undefined ? { altAddress: flags.altAddress } : {}),
        ...(altPort !== undefined ? { altPort } : {}),
        tcp: flags.tcp === true,
        rateLimit,
      };
      const logger = createLogger('stun-server');
      let udp: readonly BoundAddress[];
      let tcp: BoundAddress | null;
      let metricsPort: number | null = null;
      let close: () => Promise<void>;
      try {
        if (workers === 1) {
          const s = await startStunServer({ ...server, logger });
          const m = metricsAt === undefined ? null : await serveMetrics(metricsAt.host, metricsAt.port, () => s.registry.metrics(), s.registry.contentType);
          udp = s.udp;
          tcp = s.tcp;
          metricsPort = m?.port ?? null;
          close = async () => {
            await Promise.all([s.close(), m?.close()]);
          };
        } else {
          const c = await startStunCluster({ server, workers, logger, ...(metricsAt !== undefined ? { metrics: metricsAt } : {}) });
          udp = c.udp;
          tcp = c.tcp;
          metricsPort = c.metrics?.port ?? null;
          close = () => c.close();
        }
      } catch (err) {
        if (err instanceof StunServerConfigError) throw new UsageError(err.message);
        throw err;
      }
      onShutdown(close);
      const parts = [`UDP ${udp.map((a) => formatEndpoint(a.address, a.port)).join(' ')}`];
      if (udp.length === 4) parts.push('(RFC 5780)');
      if (tcp !== null) parts.push(`TCP ${formatEndpoint(tcp.address, tcp.port)}`);
      if (metricsPort !== null && metricsAt !== undefined) parts.push(`metrics http://${formatEndpoint(metricsAt.host, metricsPort)}/metrics`);
      parts.push(rateLimit === 0 ? 'no rate limit' : `rate limit ${rateLimit}/s per IP`);
      if (workers > 1) parts.push(`${workers} workers`);
      process.stdout.write(`stun-server listening: ${parts.join(', ')}\n`);
      // The sockets keep the process alive until SIGINT/SIGTERM.
    });
}

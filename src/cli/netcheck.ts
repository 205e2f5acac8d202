// `traverse netcheck`: what the NAT in front of this machine does, and what that means.
import { Option, type Command } from 'commander';
import { diagnose, type DiagnosisContext, type NetcheckReport } from '../netcheck/index.js';
import { runLocalNetcheck, stunOverTcp } from '../node/netcheck.js';
import { fetchServerInfo, ServerInfoError } from '../node/server-info.js';
import { CommandFailed, UsageError } from './errors.js';
import { addTokenOptions } from './token-source.js';
import { collect, intOption, portOption, serverFlag } from './options.js';
import { addCaOption, trustFlag } from './ca-option.js';
import { resolveStunServers, stunServerList } from './stun-servers.js';
import { summaryOf } from './command-list.js';
import { portMappingWanted } from './peer-options.js';
import type { ProtocolStatus } from '../portmap/client.js';
import type { PortMappingReport } from '../portmap/report.js';

interface NetcheckFlags {
  stun?: string[];
  server?: string;
  token?: string;
  json?: boolean;
  timeout: number;
  localPort?: number;
  portMapping?: boolean;
  ca?: string;
}

export function registerNetcheckCommand(program: Command): void {
  const cmd = program
    .command('netcheck')
    .description(summaryOf('netcheck'))
    .option(
      '--stun <host:port>',
      'STUN server to probe (repeatable; "disable" turns STUN off; default: $TRAVERSE_STUN, comma-separated, else the servers the coordination server gives its nodes)',
      collect,
    )
    .addOption(new Option('--server <url>', 'the coordination server: its STUN servers are probed (when no --stun) and its relay latency reported').env('TRAVERSE_SERVER'));
  addCaOption(cmd);
  addTokenOptions(cmd, { stdin: true, help: 'a token for --server (any kind; env TRAVERSE_TOKEN)' });
  cmd
    .option('--timeout <ms>', 'total time budget; blocked UDP is reported within it', intOption('--timeout', 100, 60_000), 3000)
    .option('--local-port <n>', 'probe from this local UDP port (the port a node would use)', portOption)
    .option('--no-port-mapping', 'do not ask the router about port mapping (PCP, NAT-PMP, UPnP IGD) (env TRAVERSE_PORT_MAPPING=0)')
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      '\nWith two STUN servers, or one that supports RFC 5780 (traverse stun-server --alt-address),\n' +
        'netcheck also tells how the NAT maps and filters (RFC 4787), and whether it hairpins.\n\n' +
        'Examples:\n  traverse netcheck --stun 203.0.113.10 --stun 198.51.100.20\n  TRAVERSE_STUN=stun.internal:3478 traverse netcheck --json',
    )
    .action(async (flags: NetcheckFlags) => {
      let list = stunServerList(flags.stun);
      // The coordination server, when given, says which STUN servers its nodes use and how far
      // away its relay is.
      let server: URL | null = null;
      if (flags.server) {
        server = serverFlag(flags.server);
        // Typed on the command line, the server needs a token; exported in TRAVERSE_SERVER for
        // the other commands, it is used only when a token is there too.
        if (!flags.token && cmd.getOptionValueSource('server') === 'cli') {
          throw new UsageError('--server needs a token: pass --token-file FILE or set TRAVERSE_TOKEN');
        }
      }
      let relay: { server: string; latencyMs: number } | null = null;
      if (server && flags.token) {
        try {
          const info = await fetchServerInfo(server, flags.token, Math.min(3000, flags.timeout), 3, trustFlag(flags.ca));
          relay = { server: server.host, latencyMs: info.latencyMs };
          if (list === null) list = info.config.stun.length > 0 ? { disabled: false, servers: info.config.stun } : { disabled: true };
        } catch (err) {
          if (!(err instanceof ServerInfoError)) throw err;
          if (list === null) throw new CommandFailed(`${err.message}; pass --stun HOST:PORT to probe without the server`);
          process.stderr.write(`traverse: ${err.message}; the relay's latency is unknown\n`);
        }
      }
      if (list === null) throw new UsageError('no STUN servers: pass --stun HOST:PORT (repeatable), set TRAVERSE_STUN, or give the coordination server (--server / TRAVERSE_SERVER with a token)');
      const servers = list.disabled ? [] : await resolveStunServers(list.servers);
      const portMapping = portMappingWanted(flags);
      const tty = process.stderr.isTTY && !flags.json;
      const report = await runLocalNetcheck(servers, {
        timeoutMs: flags.timeout,
        portMapping,
        ...(flags.localPort !== undefined ? { localPort: flags.localPort } : {}),
        ...(tty ? { onProgress: (m: string) => process.stderr.write(`\r\x1b[K${m}...`) } : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      // No UDP answer: does the server answer over TCP? Then it is up and UDP is what is blocked.
      const overTcp = report.udp ? new Map<string, boolean>() : await stunOverTcp(servers, Math.min(1500, flags.timeout));
      if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, stunOverTcp: Object.fromEntries(overTcp), relay })}\n`);
      else process.stdout.write(humanNetcheck(report, { stunOverTcp: overTcp }, relay));
    });
}

const yesNo = (v: boolean | null): string => (v === null ? 'unknown' : v ? 'yes' : 'no');

export function humanNetcheck(r: NetcheckReport, context: DiagnosisContext = {}, relay: { server: string; latencyMs: number } | null = null): string {
  const d = diagnose(r, context);
  const lines = [
    'Report:',
    `  UDP:                   ${r.udp ? 'yes' : 'no'}`,
    `  IPv4:                  ${r.ipv4 ? `yes, ${r.globalV4}` : 'no'}`,
    `  IPv6:                  ${r.ipv6 ? `yes, ${r.globalV6}` : 'no'}`,
    `  behind a NAT:          ${yesNo(r.behindNat)}`,
    `  mapping varies by IP:  ${yesNo(r.mappingVariesByDestIP)}`,
    `  mapping:               ${r.mapping}`,
    `  filtering:             ${r.filtering}`,
    `  hairpinning:           ${yesNo(r.hairpinning)}`,
    `  preferred server:      ${r.preferredServer ?? 'none'}`,
    '  servers:',
    ...r.servers.map(
      (s) =>
        `    ${s.address.padEnd(24)} ${s.latencyMs === null ? `no answer (${s.error})${tcpNote(context, s.address)}` : `${s.latencyMs.toFixed(1)} ms, saw ${s.mapped}${s.otherAddress ? ', RFC 5780' : ''}`}`,
    ),
    ...portMappingLines(r.portMapping),
    ...(relay ? [`  relay:                 ${relay.server}, ${relay.latencyMs.toFixed(1)} ms (HTTP round trip to the coordination server)`] : []),
    '',
    d.verdict,
    ...d.findings.map((f) => `  - ${f}`),
  ];
  return `${lines.join('\n')}\n`;
}

function statusText(s: ProtocolStatus): string {
  return s.available ? `yes${s.externalAddress ? `, external ${s.externalAddress}` : ''}` : `no (${s.reason})`;
}

function portMappingLines(pm: PortMappingReport | null): string[] {
  if (!pm) return ['  port mapping:          not checked (turned off)'];
  const lines = [
    `  port mapping:          ${pm.gateway ? `gateway ${pm.gateway}` : 'no default gateway'}`,
    `    PCP:                 ${statusText(pm.pcp)}`,
    `    NAT-PMP:             ${statusText(pm.natpmp)}`,
    `    UPnP IGD:            ${statusText(pm.upnp)}`,
  ];
  if (pm.mapping) {
    const trust = pm.trusted === false ? `not trusted: ${pm.untrustedReason}` : pm.trusted ? 'trusted' : 'trust unknown (no STUN answer to compare)';
    lines.push(`    mapped:              ${pm.mapping.external} by ${pm.mapping.protocol} (${trust})`);
  }
  return lines;
}

function tcpNote(context: DiagnosisContext, address: string): string {
  const tcp = context.stunOverTcp?.get(address);
  return tcp === undefined ? '' : tcp ? '; answers over TCP' : '; no answer over TCP either';
}

// `traverse netcheck`: what the NAT in front of this machine does, and what that means.
import type { Command } from 'commander';
import { diagnose, type NetcheckReport } from '../netcheck/index.js';
import { runLocalNetcheck } from '../node/netcheck.js';
import { UsageError } from './errors.js';
import { collect, intOption, portOption } from './options.js';
import { resolveStunServers, stunServerList } from './stun-servers.js';

interface NetcheckFlags {
  stun?: string[];
  json?: boolean;
  timeout: number;
  localPort?: number;
}

export function registerNetcheckCommand(program: Command): void {
  program
    .command('netcheck')
    .description('find out what the NAT and firewall in front of this machine do, and what that means for direct connections')
    .option('--stun <host:port>', 'STUN server to probe (repeatable; "disable" turns STUN off; default: $TRAVERSE_STUN, comma-separated)', collect)
    .option('--timeout <ms>', 'total time budget; blocked UDP is reported within it', intOption('--timeout', 100, 60_000), 3000)
    .option('--local-port <n>', 'probe from this local UDP port (the port a node would use)', portOption)
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      '\nWith two STUN servers, or one that supports RFC 5780 (traverse stun-server --alt-address),\n' +
        'netcheck also tells how the NAT maps and filters (RFC 4787), and whether it hairpins.\n\n' +
        'Examples:\n  traverse netcheck --stun 203.0.113.10 --stun 198.51.100.20\n  TRAVERSE_STUN=stun.internal:3478 traverse netcheck --json',
    )
    .action(async (flags: NetcheckFlags) => {
      const list = stunServerList(flags.stun);
      if (list === null) throw new UsageError('no STUN servers: pass --stun HOST:PORT (repeatable) or set TRAVERSE_STUN');
      const servers = list.disabled ? [] : await resolveStunServers(list.servers);
      const tty = process.stderr.isTTY && !flags.json;
      const report = await runLocalNetcheck(servers, {
        timeoutMs: flags.timeout,
        ...(flags.localPort !== undefined ? { localPort: flags.localPort } : {}),
        ...(tty ? { onProgress: (m: string) => process.stderr.write(`\r\x1b[K${m}...`) } : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(humanNetcheck(report));
    });
}

const yesNo = (v: boolean | null): string => (v === null ? 'unknown' : v ? 'yes' : 'no');

export function humanNetcheck(r: NetcheckReport): string {
  const d = diagnose(r);
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
      (s) => `    ${s.address.padEnd(24)} ${s.latencyMs === null ? `no answer (${s.error})` : `${s.latencyMs.toFixed(1)} ms, saw ${s.mapped}${s.otherAddress ? ', RFC 5780' : ''}`}`,
    ),
    '',
    d.verdict,
    ...d.findings.map((f) => `  - ${f}`),
  ];
  return `${lines.join('\n')}\n`;
}

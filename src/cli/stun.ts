// `traverse stun SERVER[:PORT]`: ask one STUN server for our public address.
import { createSocket, type Socket } from 'node:dgram';
import type { Command } from 'commander';
import { StunClient, StunErrorResponse, StunTimeoutError, type BindingResult } from '../stun/client.js';
import { bindingOverTcp } from '../stun/tcp-client.js';
import { DEFAULT_PORT } from '../stun/constants.js';
import { formatEndpoint, type Endpoint } from '../net/endpoint.js';
import type { TransportAddress } from '../stun/attributes.js';
import { CommandFailed } from './errors.js';
import { intOption, portOption } from './options.js';
import { resolveEndpoint, routeSourceAddress } from './resolve.js';
import { summaryOf } from './command-list.js';

interface StunFlags {
  localPort?: number;
  tcp?: boolean;
  timeout: number;
  json?: boolean;
}

export interface StunReport {
  server: string;
  local: string;
  mapped: string;
  rttMs: number;
  otherAddress: string | null;
  responseOrigin: string | null;
}

export function registerStunCommand(program: Command): void {
  program
    .command('stun')
    .description(summaryOf('stun'))
    .argument('<server>', 'STUN server as HOST[:PORT] (port 3478 if omitted; IPv6 as [ADDR]:PORT)')
    .option('--local-port <n>', 'send from this local UDP (or TCP) port instead of a random one', portOption)
    .option('--tcp', 'use STUN over TCP instead of UDP')
    .option('--timeout <ms>', 'give up after this many milliseconds', intOption('--timeout', 1, 600_000), 5000)
    .option('--json', 'print one JSON object instead of text')
    .addHelpText(
      'after',
      '\nExamples:\n  traverse stun 203.0.113.10\n  traverse stun stun.example.net:3478 --json\n  traverse stun [2001:db8::1]:3478 --tcp\n\nExit status: 0 answered, 1 no answer or an error response, 2 bad arguments.',
    )
    .action(async (server: string, flags: StunFlags) => {
      const target = await resolveEndpoint(server, DEFAULT_PORT);
      const report = flags.tcp ? await viaTcp(target, flags) : await viaUdp(target, flags);
      if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(humanReport(report));
    });
}

function fmt(a: TransportAddress | null): string | null {
  return a ? formatEndpoint(a.address, a.port) : null;
}

function toReport(target: Endpoint, local: string, r: BindingResult): StunReport {
  return {
    server: formatEndpoint(target.address, target.port),
    local,
    mapped: fmt(r.mapped) ?? '',
    rttMs: Math.round(r.rttMs * 1000) / 1000,
    otherAddress: fmt(r.otherAddress),
    responseOrigin: fmt(r.responseOrigin),
  };
}

async function viaUdp(target: Endpoint, flags: StunFlags): Promise<StunReport> {
  const socket: Socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => reject(new CommandFailed(`cannot bind UDP port ${flags.localPort ?? 0}: ${err.message}`)));
      socket.bind(flags.localPort ?? 0, () => resolve());
    });
    socket.on('error', () => undefined); // ICMP errors surface as timeouts, reported below
    const client = new StunClient(socket).attach(socket);
    const localIp = (await routeSourceAddress(target)) ?? socket.address().address;
    const local = formatEndpoint(localIp, socket.address().port);
    try {
      return toReport(target, local, await client.binding(target, { timeoutMs: flags.timeout }));
    } catch (err) {
      throw explain(err, target);
    } finally {
      client.close();
    }
  } finally {
    socket.close();
  }
}

async function viaTcp(target: Endpoint, flags: StunFlags): Promise<StunReport> {
  try {
    const r = await bindingOverTcp(target, {
      timeoutMs: flags.timeout,
      ...(flags.localPort ? { localPort: flags.localPort } : {}),
    });
    return toReport(target, formatEndpoint(r.local.address, r.local.port), r);
  } catch (err) {
    throw explain(err, target);
  }
}

function explain(err: unknown, target: Endpoint): Error {
  const server = formatEndpoint(target.address, target.port);
  if (err instanceof StunTimeoutError) {
    return new CommandFailed(`${err.message}: is a STUN server running there, and is UDP allowed out of this network?`);
  }
  if (err instanceof StunErrorResponse) return new CommandFailed(`${server} ${err.message}`);
  return new CommandFailed(err instanceof Error ? err.message : String(err));
}

export function humanReport(r: StunReport): string {
  const lines = [
    `mapped address  ${r.mapped}`,
    `server          ${r.server}  (round trip ${r.rttMs.toFixed(2)} ms)`,
    `local address   ${r.local}`,
  ];
  if (r.responseOrigin) lines.push(`response origin ${r.responseOrigin}`);
  if (r.otherAddress) lines.push(`other address   ${r.otherAddress}  (the server supports RFC 5780 NAT behaviour discovery)`);
  return `${lines.join('\n')}\n`;
}

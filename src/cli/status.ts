// `traverse status`: what a running server says about the peers and tunnels this token may
// see (an admin token sees everything, and the identities offline with when they were last
// seen). Reads the HTTP API; TRAVERSE_SERVER/TRAVERSE_TOKEN.
import type { Command } from 'commander';
import { identitiesResponse, peersResponse, tunnelsResponse, type IdentityView, type PeerView } from '../coordination/views.js';
import type { Path } from '../coordination/protocol.js';
import { CommandFailed, UsageError } from './errors.js';
import { serverFlag } from './options.js';
import { addCaOption, trustFlag } from './ca-option.js';
import { getJson, HttpGetError, type GetResult } from '../net/http-get.js';
import type { Trust } from '../net/tls-trust.js';
import { addTokenOptions } from './token-source.js';
import { summaryOf } from './command-list.js';

interface StatusFlags {
  server?: string;
  token?: string;
  json?: boolean;
  ca?: string;
}

export function registerStatus(program: Command): void {
  const cmd = program
    .command('status')
    .description(summaryOf('status'))
    .option('--server <url>', 'the server, e.g. https://coord.example:8080 (env TRAVERSE_SERVER)');
  addCaOption(cmd);
  addTokenOptions(cmd, { stdin: true, help: 'a bearer token (env TRAVERSE_TOKEN); an admin token sees all' })
    .option('--json', 'print JSON')
    .action(async (flags: StatusFlags) => status(flags));
}

async function status(flags: StatusFlags): Promise<void> {
  const server = flags.server ?? process.env.TRAVERSE_SERVER;
  const token = flags.token ?? process.env.TRAVERSE_TOKEN;
  if (!server) throw new UsageError('no server: pass --server URL or set TRAVERSE_SERVER');
  if (!token) throw new UsageError('no token: pass --token or set TRAVERSE_TOKEN');
  const base = serverFlag(server);
  const trust = trustFlag(flags.ca);
  const get = (path: string, absent?: readonly number[]): Promise<unknown> => getView(base, path, token, trust, absent);
  const peers = parse(peersResponse, await get('/api/v1/peers'), '/api/v1/peers');
  const tunnels = parse(tunnelsResponse, await get('/api/v1/tunnels'), '/api/v1/tunnels');
  // Only an admin token may read every identity; for any other the server answers 403 (and a
  // server older than the view, 404): then the output is what it always was.
  const everyone = await get('/api/v1/identities', [403, 404]);
  const identities = everyone === undefined ? undefined : parse(identitiesResponse, everyone, '/api/v1/identities').identities;
  if (flags.json) {
    process.stdout.write(JSON.stringify({ ...peers, ...tunnels, ...(identities ? { identities } : {}) }, null, 2) + '\n');
    return;
  }
  // One identity (a person, a workspace) may have several nodes: one line per identity, then its nodes.
  const byIdentity = new Map<string, PeerView[]>();
  for (const p of peers.peers) {
    const id = `${p.kind} ${p.name}`;
    byIdentity.set(id, [...(byIdentity.get(id) ?? []), p]);
  }
  const lines = [`${byIdentity.size} identit${byIdentity.size === 1 ? 'y' : 'ies'} connected, ${peers.peers.length} node(s):`];
  for (const [id, nodes] of byIdentity) {
    lines.push(`  ${id}  (${nodes.length} node${nodes.length === 1 ? '' : 's'})`);
    for (const p of nodes) {
      lines.push(`    node ${short(p.key)}  since ${new Date(p.connectedAt).toISOString()}  endpoints ${p.node?.endpoints.join(' ') || '-'}`);
    }
  }
  if (identities) lines.push(...offline(identities));
  lines.push(`${tunnels.tunnels.length} tunnel(s):`);
  for (const t of tunnels.tunnels) {
    lines.push(
      `  ${t.client} [${short(t.clientKey)}] -> ${t.agent}${t.agentOnline ? '' : ' (agent offline)'}  client path ${path(t.paths.client)}, agent path ${path(t.paths.agent)}${rtt(t.rttMs.client ?? t.rttMs.agent)}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/** Agents and clients with no node connected, most recently seen first (admins never connect). */
function offline(identities: readonly IdentityView[]): string[] {
  const seen = (i: IdentityView): number => Math.max(i.lastConnectedAt ?? -1, i.lastDisconnectedAt ?? -1);
  const gone = identities.filter((i) => i.kind !== 'admin' && i.onlineNodes === 0).sort((a, b) => seen(b) - seen(a));
  return [
    `${gone.length} identit${gone.length === 1 ? 'y' : 'ies'} offline:`,
    ...gone.map((i) => `  ${i.kind} ${i.name}  ${seen(i) < 0 ? 'no connection on record' : `last seen ${new Date(seen(i)).toISOString()}`}`),
  ];
}

function rtt(ms: number | null): string {
  return ms === null ? '' : `, round trip ${ms.toFixed(2)} ms`;
}

function short(key: string | null): string {
  return key ? key.slice(0, 8) : 'unpublished';
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new CommandFailed(`the server answered ${what} with something this version does not understand; is it a traverse server of the same version?`);
  return r.data;
}

function path(p: Path | null): string {
  if (!p) return 'unreported';
  return p.kind === 'direct' ? `direct${p.transport === 'tcp' ? ' (tcp)' : ''} ${p.endpoint}` : 'relay';
}

/** The JSON body of a GET; undefined when the status is one of `absent` (a view this token may not read). */
async function getView(base: URL, path: string, token: string, trust: Trust, absent: readonly number[] = []): Promise<unknown> {
  let res: GetResult;
  try {
    res = await getJson(new URL(path, base), token, { timeoutMs: 10_000, trust });
  } catch (err) {
    if (!(err instanceof HttpGetError)) throw err;
    throw new CommandFailed(`cannot reach ${base.origin} (${err.reason})${err.tls ? '' : '; is the server running? check --server'}`);
  }
  if (res.status === 401) throw new CommandFailed('the server refused the token; check --token or TRAVERSE_TOKEN');
  if (absent.includes(res.status)) return undefined;
  if (res.status < 200 || res.status > 299) throw new CommandFailed(`${base.origin}${path} answered HTTP ${res.status}`);
  return res.body;
}

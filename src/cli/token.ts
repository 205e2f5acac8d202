// `traverse token create|list|revoke`: administration of identities, tokens and access rules,
// straight on the server's database (a running server applies revocations within a second).
import type { Command } from 'commander';
import { parseDuration, DurationError } from './duration.js';
import { identityName } from '../coordination/protocol.js';
import type { IdentityKind, IdentityListing } from '../server/store/store.js';
import { generateToken, hashToken } from '../server/tokens.js';
import { CommandFailed, UsageError } from './errors.js';
import { dataDir, openStore } from './data-dir.js';

interface WhoFlags {
  data?: string;
  agent?: string;
  client?: string;
  admin?: string;
}

interface CreateFlags extends WhoFlags {
  allow?: string;
  expires?: string;
  json?: boolean;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('create, list and revoke identities and their tokens');
  const data = ['--data <dir>', 'data folder of the server (env TRAVERSE_DATA; default ./traverse-data)'] as const;

  token
    .command('create')
    .description('create an identity if needed and a new token for it; the token is the last line of output')
    .option(...data)
    .option('--agent <name>', 'a workspace that clients connect to')
    .option('--client <name>', 'a developer machine that opens tunnels to agents')
    .option('--admin <name>', 'an operator identity for the HTTP API (sees every peer, reads /metrics)')
    .option('--allow <agents>', 'with --client: comma-separated agent names it may reach (added to its rules)')
    .option('--expires <duration>', 'lifetime such as 12h, 30d or 2w (default: never expires)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (flags: CreateFlags) => create(flags));

  token
    .command('list')
    .description('list identities, their access rules and tokens (never the secrets)')
    .option(...data)
    .option('--json', 'print JSON')
    .action(async (flags: { data?: string; json?: boolean }) => list(flags));

  token
    .command('revoke')
    .description("revoke every token of an identity; a running server closes its connections at once")
    .option(...data)
    .option('--agent <name>', 'the agent to revoke')
    .option('--client <name>', 'the client to revoke')
    .option('--admin <name>', 'the admin to revoke')
    .action(async (flags: WhoFlags) => revoke(flags));
}

function who(flags: WhoFlags): { kind: IdentityKind; name: string } {
  const given = (['agent', 'client', 'admin'] as const).filter((k) => flags[k] !== undefined);
  if (given.length !== 1) throw new UsageError('name exactly one identity: --agent NAME, --client NAME or --admin NAME');
  const kind = given[0]!;
  const name = flags[kind]!;
  const ok = identityName.safeParse(name);
  if (!ok.success) throw new UsageError(`--${kind} "${name}": use ${ok.error.issues[0]?.message ?? 'a simple name'}, at most 64 characters`);
  return { kind, name };
}

async function create(flags: CreateFlags): Promise<void> {
  const { kind, name } = who(flags);
  const allow = parseAllow(flags.allow);
  if (allow.length > 0 && kind !== 'client') throw new UsageError('--allow applies to --client only');
  let expiresIn: number | null = null;
  try {
    if (flags.expires !== undefined) expiresIn = parseDuration(flags.expires);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(err.message);
    throw err;
  }
  const store = await openStore(dataDir(flags.data), false);
  try {
    const now = Date.now();
    const identity = await store.ensureIdentity(kind, name, now);
    if (allow.length > 0) await store.allow(name, allow, now);
    const secret = generateToken();
    const info = await store.createToken(identity.id, hashToken(secret), now, expiresIn === null ? null : now + expiresIn);
    const rules = kind === 'client' ? await store.allowedAgents(name) : [];
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({ kind, name, tokenId: info.hint, expiresAt: iso(info.expiresAt), allow: rules, token: secret }) + '\n',
      );
      return;
    }
    const lines = [
      `Created token ${info.hint} for ${kind} "${name}", ${info.expiresAt === null ? 'never expires' : `expires ${iso(info.expiresAt)}`}.`,
    ];
    if (kind === 'client') {
      lines.push(rules.length > 0 ? `It may reach: ${rules.join(', ')}.` : 'It may reach no agent yet: add --allow AGENT.');
    }
    lines.push('This is the only time the token is shown; give it to the peer as TRAVERSE_TOKEN:', secret);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await store.close();
  }
}

async function list(flags: { data?: string; json?: boolean }): Promise<void> {
  const store = await openStore(dataDir(flags.data), true);
  try {
    const identities = await store.listIdentities();
    if (flags.json) {
      process.stdout.write(JSON.stringify({ identities: identities.map(toJson) }, null, 2) + '\n');
      return;
    }
    if (identities.length === 0) {
      process.stdout.write('No identities. Create one with: traverse token create --agent NAME\n');
      return;
    }
    const now = Date.now();
    const rows = [['KIND', 'NAME', 'ALLOW', 'NODE KEY', 'LAST CONNECTED', 'TOKENS']];
    for (const i of identities) {
      rows.push([
        i.kind,
        i.name,
        i.kind === 'client' ? i.allow.join(',') || '(none)' : '-',
        i.nodeKey ? `${i.nodeKey.slice(0, 12)}...` : '-',
        i.lastConnectedAt === null ? 'never' : iso(i.lastConnectedAt)!,
        i.tokens.map((t) => `${t.hint}:${tokenState(t, now)}`).join(' ') || '(none)',
      ]);
    }
    process.stdout.write(table(rows));
  } finally {
    await store.close();
  }
}

async function revoke(flags: WhoFlags): Promise<void> {
  const { kind, name } = who(flags);
  const store = await openStore(dataDir(flags.data), true);
  try {
    if (!(await store.findIdentity(kind, name))) {
      throw new CommandFailed(`no ${kind} named "${name}"; see traverse token list`);
    }
    const n = await store.revokeIdentity(kind, name, Date.now());
    process.stdout.write(
      `Revoked ${n} token${n === 1 ? '' : 's'} of ${kind} "${name}"; a running server closes its connections within a second.\n`,
    );
  } finally {
    await store.close();
  }
}

function parseAllow(text: string | undefined): string[] {
  if (text === undefined) return [];
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!identityName.safeParse(n).success) throw new UsageError(`--allow: "${n}" is not a valid agent name`);
  }
  if (names.length === 0) throw new UsageError('--allow needs at least one agent name, e.g. --allow my-workspace');
  return [...new Set(names)];
}

function tokenState(t: { revokedAt: number | null; expiresAt: number | null }, now: number): string {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt !== null && t.expiresAt <= now) return 'expired';
  return t.expiresAt === null ? 'active' : `active-until-${iso(t.expiresAt)}`;
}

function toJson(i: IdentityListing): unknown {
  const now = Date.now();
  return {
    kind: i.kind,
    name: i.name,
    allow: i.kind === 'client' ? i.allow : undefined,
    nodeKey: i.nodeKey,
    createdAt: iso(i.createdAt),
    lastConnectedAt: iso(i.lastConnectedAt),
    lastDisconnectedAt: iso(i.lastDisconnectedAt),
    tokens: i.tokens.map((t) => ({
      id: t.hint,
      state: tokenState(t, now).split('-')[0],
      createdAt: iso(t.createdAt),
      expiresAt: iso(t.expiresAt),
      revokedAt: iso(t.revokedAt),
    })),
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

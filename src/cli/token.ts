// `traverse token create|list|revoke|rotate`: administration of identities, tokens and access
// rules, straight on the server's database (a running server applies revocations within a second).
import type { Command } from 'commander';
import { parseDuration, DurationError } from './duration.js';
import { identityName } from '../coordination/protocol.js';
import type { IdentityKind, IdentityListing } from '../server/store/store.js';
import { generateToken, hashToken } from '../server/tokens.js';
import { CommandFailed, UsageError } from './errors.js';
import { DATABASE_OPTION, openStore, storeLocation, type StoreFlags } from './data-dir.js';
import { storeExists } from '../server/store/open.js';
import { summaryOf } from './command-list.js';

export interface WhoFlags {
  data?: string;
  database?: string;
  agent?: string;
  client?: string;
  admin?: string;
}

interface CreateFlags extends WhoFlags {
  allow?: string;
  expires?: string;
  json?: boolean;
}

interface RevokeFlags extends WhoFlags {
  id?: string;
}

/** The --data option of every command that works on the server's database. */
export const DATA_OPTION = ['--data <dir>', 'data folder of the server (env TRAVERSE_DATA; default ./traverse-data)'] as const;

export function registerToken(program: Command): void {
  const token = program.command('token').description(summaryOf('token'));
  const data = DATA_OPTION;

  token
    .command('create')
    .description('create an identity if needed and a new token for it; the token is the last line of output')
    .option(...data)
    .option(...DATABASE_OPTION)
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
    .option(...DATABASE_OPTION)
    .option('--json', 'print JSON')
    .action(async (flags: StoreFlags & { json?: boolean }) => list(flags));

  token
    .command('revoke')
    .description('revoke one token (--id) or every token of an identity; a running server closes their connections at once')
    .option(...data)
    .option(...DATABASE_OPTION)
    .option('--id <token-id>', 'the token id that token list shows (8 hex characters)')
    .option('--agent <name>', 'the agent to revoke')
    .option('--client <name>', 'the client to revoke')
    .option('--admin <name>', 'the admin to revoke')
    .action(async (flags: RevokeFlags) => revoke(flags));

  token
    .command('rotate')
    .description("create a new token for an identity and revoke its old ones at once; the token is the last line of output")
    .option(...data)
    .option(...DATABASE_OPTION)
    .option('--agent <name>', 'the agent whose token to rotate')
    .option('--client <name>', 'the client whose token to rotate')
    .option('--admin <name>', 'the admin whose token to rotate')
    .option('--expires <duration>', 'lifetime of the new token such as 12h, 30d or 2w (default: never expires)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (flags: CreateFlags) => rotate(flags));
}

/** The one identity named by --agent, --client or --admin (exit 2 for none, several or a bad name). */
export function who(flags: WhoFlags): { kind: IdentityKind; name: string } {
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
  const expiresIn = parseExpires(flags.expires);
  const location = storeLocation(flags);
  const fresh = !storeExists(location);
  const store = await openStore(location, false);
  // Run from another folder, `token create` would quietly start a second, empty database that
  // no server reads: say so, and where.
  if (fresh) {
    process.stderr.write(
      `traverse: note: no database was in ${location.dir}, so a new one was created there; the server must run with the same --data (or TRAVERSE_DATA)\n`,
    );
  }
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
    lines.push(SHOWN_ONCE, secret);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await store.close();
  }
}

const SHOWN_ONCE = 'This is the only time the token is shown; give it to the peer as TRAVERSE_TOKEN:';

function parseExpires(text: string | undefined): number | null {
  if (text === undefined) return null;
  try {
    return parseDuration(text);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(err.message);
    throw err;
  }
}

async function list(flags: StoreFlags & { json?: boolean }): Promise<void> {
  const store = await openStore(storeLocation(flags), true);
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

async function revoke(flags: RevokeFlags): Promise<void> {
  if (flags.id !== undefined) {
    if (flags.agent !== undefined || flags.client !== undefined || flags.admin !== undefined) {
      throw new UsageError('give either --id TOKEN_ID or --agent/--client/--admin NAME, not both');
    }
    return revokeById(flags.id, flags);
  }
  if (flags.agent === undefined && flags.client === undefined && flags.admin === undefined) {
    throw new UsageError('name what to revoke: --id TOKEN_ID (one token), or --agent NAME, --client NAME or --admin NAME (all of its tokens)');
  }
  const { kind, name } = who(flags);
  const store = await openStore(storeLocation(flags), true);
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

/** Token ids are the first characters of the hex hash: 8 in listings; 4 to 64 are accepted. */
const TOKEN_ID = /^[0-9a-f]{4,64}$/i;

async function revokeById(id: string, flags: StoreFlags): Promise<void> {
  if (!TOKEN_ID.test(id)) throw new UsageError(`--id "${id}": a token id is the 8 hex characters token list shows, e.g. 7b0b63a0`);
  const store = await openStore(storeLocation(flags), true);
  try {
    const found = await store.tokensById(id);
    if (found.length === 0) throw new CommandFailed(`no token with id ${id}; see traverse token list`);
    if (found.length > 1) {
      const which = found.map((f) => `${f.token.hint} of ${f.identity.kind} "${f.identity.name}"`).join(', ');
      throw new CommandFailed(`token id ${id} is ambiguous, it matches ${found.length} tokens (${which}); revoke by --agent/--client/--admin NAME instead`);
    }
    const { token, identity } = found[0]!;
    const whose = `token ${token.hint} of ${identity.kind} "${identity.name}"`;
    if (!(await store.revokeToken(token.id, Date.now()))) {
      process.stdout.write(`The ${whose} was already revoked (${iso(token.revokedAt)}); nothing changed.\n`);
      return;
    }
    process.stdout.write(`Revoked ${whose}; a running server closes its connections within a second.\n`);
  } finally {
    await store.close();
  }
}

async function rotate(flags: CreateFlags): Promise<void> {
  const { kind, name } = who(flags);
  const expiresIn = parseExpires(flags.expires);
  const store = await openStore(storeLocation(flags), true);
  try {
    const identity = await store.findIdentity(kind, name);
    if (!identity) throw new CommandFailed(`no ${kind} named "${name}"; create it with traverse token create --${kind} ${name}`);
    const now = Date.now();
    const secret = generateToken();
    const { token: info, revoked } = await store.rotateToken(identity.id, hashToken(secret), now, expiresIn === null ? null : now + expiresIn);
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({ kind, name, tokenId: info.hint, expiresAt: iso(info.expiresAt), revoked: revoked.map((t) => t.hint), token: secret }) + '\n',
      );
      return;
    }
    const old = revoked.length === 0 ? 'it had no other token to revoke' : `revoked ${revoked.map((t) => t.hint).join(', ')}`;
    process.stdout.write(
      [
        `Created token ${info.hint} for ${kind} "${name}", ${info.expiresAt === null ? 'never expires' : `expires ${iso(info.expiresAt)}`}; ${old}.`,
        ...(revoked.length > 0 ? ['A running server closes the connections of the old tokens within a second.'] : []),
        SHOWN_ONCE,
        secret,
      ].join('\n') + '\n',
    );
  } finally {
    await store.close();
  }
}

/** A comma-separated list of agent names (for --allow, and --agent of `traverse allow`). */
export function parseAgents(text: string, flag: string): string[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!identityName.safeParse(n).success) throw new UsageError(`${flag}: "${n}" is not a valid agent name`);
  }
  if (names.length === 0) throw new UsageError(`${flag} needs at least one agent name, e.g. ${flag} my-workspace`);
  return [...new Set(names)];
}

function parseAllow(text: string | undefined): string[] {
  return text === undefined ? [] : parseAgents(text, '--allow');
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

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

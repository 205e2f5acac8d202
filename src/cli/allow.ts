// `traverse allow add|remove|list`: which agents a client may open tunnels to, straight on the
// server's database. A running server applies a change within a second: tunnels no longer
// allowed end, newly allowed agents can be reached without reconnecting.
import type { Command } from 'commander';
import { identityName } from '../coordination/protocol.js';
import { CommandFailed, UsageError } from './errors.js';
import { DATABASE_OPTION, openStore, storeLocation } from './data-dir.js';
import { DATA_OPTION, parseAgents, table } from './token.js';
import type { Store } from '../server/store/store.js';
import { summaryOf } from './command-list.js';

interface RuleFlags {
  data?: string;
  database?: string;
  client?: string;
  agent?: string;
}

interface ListFlags {
  data?: string;
  database?: string;
  client?: string;
  json?: boolean;
}

export function registerAllow(program: Command): void {
  const allow = program.command('allow').description(summaryOf('allow'));
  allow
    .command('add')
    .description("add agents to a client's allow list (as token create --client NAME --allow does)")
    .option(...DATA_OPTION)
    .option(...DATABASE_OPTION)
    .option('--client <name>', 'the client')
    .option('--agent <agents>', 'comma-separated agent names it may reach')
    .action(async (flags: RuleFlags) => add(flags));
  allow
    .command('remove')
    .description("remove agents from a client's allow list; a running server ends tunnels to them at once")
    .option(...DATA_OPTION)
    .option(...DATABASE_OPTION)
    .option('--client <name>', 'the client')
    .option('--agent <agents>', 'comma-separated agent names it may no longer reach')
    .action(async (flags: RuleFlags) => remove(flags));
  allow
    .command('list')
    .description('list every client and the agents it may reach')
    .option(...DATA_OPTION)
    .option(...DATABASE_OPTION)
    .option('--client <name>', 'only this client')
    .option('--json', 'print JSON')
    .action(async (flags: ListFlags) => list(flags));
}

function clientName(name: string | undefined): string {
  if (name === undefined) throw new UsageError('name the client: --client NAME');
  const ok = identityName.safeParse(name);
  if (!ok.success) throw new UsageError(`--client "${name}": use ${ok.error.issues[0]?.message ?? 'a simple name'}, at most 64 characters`);
  return name;
}

function rule(flags: RuleFlags): { client: string; agents: string[] } {
  const client = clientName(flags.client);
  if (flags.agent === undefined) throw new UsageError('name the agents: --agent AGENT[,AGENT...]');
  return { client, agents: parseAgents(flags.agent, '--agent') };
}

async function existingClient(store: Store, name: string): Promise<void> {
  if (!(await store.findIdentity('client', name))) {
    throw new CommandFailed(`no client named "${name}"; create it with traverse token create --client ${name} --allow AGENT`);
  }
}

async function add(flags: RuleFlags): Promise<void> {
  const { client, agents } = rule(flags);
  const store = await openStore(storeLocation(flags), true);
  try {
    await existingClient(store, client);
    await store.allow(client, agents, Date.now());
    const now = await store.allowedAgents(client);
    process.stdout.write(`Client "${client}" may reach: ${now.join(', ')}.\n`);
  } finally {
    await store.close();
  }
}

async function remove(flags: RuleFlags): Promise<void> {
  const { client, agents } = rule(flags);
  const store = await openStore(storeLocation(flags), true);
  try {
    await existingClient(store, client);
    const removed = await store.disallow(client, agents);
    const absent = agents.filter((a) => !removed.includes(a));
    if (removed.length === 0) {
      throw new CommandFailed(`client "${client}" was not allowed to reach ${absent.join(', ')}; see traverse allow list --client ${client}`);
    }
    const left = await store.allowedAgents(client);
    process.stdout.write(
      [
        `Removed ${removed.join(', ')} from the allow list of client "${client}"; a running server ends its tunnels to ${removed.length === 1 ? 'it' : 'them'} within a second.`,
        ...(absent.length > 0 ? [`Not in the list before: ${absent.join(', ')}.`] : []),
        left.length > 0 ? `It may still reach: ${left.join(', ')}.` : 'It may reach no agent now.',
      ].join('\n') + '\n',
    );
  } finally {
    await store.close();
  }
}

async function list(flags: ListFlags): Promise<void> {
  const only = flags.client === undefined ? undefined : clientName(flags.client);
  const store = await openStore(storeLocation(flags), true);
  try {
    if (only !== undefined) await existingClient(store, only);
    // Every client identity, with or without rules.
    const clients = new Map<string, string[]>();
    for (const i of await store.listIdentities()) if (i.kind === 'client') clients.set(i.name, []);
    for (const r of await store.allowRules()) clients.get(r.client)?.push(r.agent);
    const shown = [...clients].filter(([name]) => only === undefined || name === only).sort(([a], [b]) => a.localeCompare(b));
    if (flags.json) {
      process.stdout.write(JSON.stringify({ clients: shown.map(([name, allow]) => ({ name, allow })) }, null, 2) + '\n');
      return;
    }
    if (shown.length === 0) {
      process.stdout.write('No clients. Create one with: traverse token create --client NAME --allow AGENT\n');
      return;
    }
    process.stdout.write(table([['CLIENT', 'MAY REACH'], ...shown.map(([name, allow]) => [name, allow.join(', ') || '(none)'])]));
  } finally {
    await store.close();
  }
}

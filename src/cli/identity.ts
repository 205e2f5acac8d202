// `traverse identity delete`: removes an identity for good, straight on the server's database.
// Its tokens, history and the allow rules naming it go with it (see Store.deleteIdentity);
// a running server closes its connections and ends tunnels to it within a second.
import type { Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { CommandFailed, UsageError } from './errors.js';
import { DATABASE_OPTION, openStore, storeLocation } from './data-dir.js';
import { DATA_OPTION, who, type WhoFlags } from './token.js';
import { summaryOf } from './command-list.js';

interface DeleteFlags extends WhoFlags {
  yes?: boolean;
}

export function registerIdentity(program: Command): void {
  const identity = program.command('identity').description(summaryOf('identity'));
  identity
    .command('delete')
    .description('delete an identity with its tokens, history and allow rules; a running server closes its connections at once')
    .option(...DATA_OPTION)
    .option(...DATABASE_OPTION)
    .option('--agent <name>', 'the agent to delete (it is also removed from every client\'s allow list)')
    .option('--client <name>', 'the client to delete')
    .option('--admin <name>', 'the admin to delete')
    .option('--yes', 'do not ask for confirmation (needed when standard input is not a terminal)')
    .action(async (flags: DeleteFlags) => remove(flags));
}

async function remove(flags: DeleteFlags): Promise<void> {
  const { kind, name } = who(flags);
  const interactive = process.stdin.isTTY === true;
  if (!flags.yes && !interactive) {
    throw new UsageError(`not deleting ${kind} "${name}" without confirmation: standard input is not a terminal, pass --yes`);
  }
  const store = await openStore(storeLocation(flags), true);
  try {
    const found = await store.findIdentity(kind, name);
    if (!found) throw new CommandFailed(`no ${kind} named "${name}"; see traverse token list`);
    if (!flags.yes) {
      const what = kind === 'agent' ? ', its history, and its place in every client\'s allow list' : kind === 'client' ? ', its history and its allow rules' : ' and its history';
      if (!(await confirm(`Delete ${kind} "${name}" with its tokens${what}? [y/N] `))) {
        throw new CommandFailed(`not confirmed; ${kind} "${name}" is unchanged`);
      }
    }
    const d = await store.deleteIdentity(kind, name, Date.now());
    if (!d) throw new CommandFailed(`no ${kind} named "${name}"; see traverse token list`);
    const rules = kind === 'admin' ? '' : `, ${d.allowRules} allow rule${d.allowRules === 1 ? '' : 's'}`;
    process.stdout.write(
      `Deleted ${kind} "${name}": ${d.tokens} token${d.tokens === 1 ? '' : 's'} (${d.liveTokens} still active)${rules}, ` +
        `${d.historyRows} history row${d.historyRows === 1 ? '' : 's'}; a running server closes its connections within a second.\n`,
    );
  } finally {
    await store.close();
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

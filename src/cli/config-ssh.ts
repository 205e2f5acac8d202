// `traverse config-ssh`: a "Host traverse.AGENT" section per agent in ~/.ssh/config, inside a
// marked block that this command owns and rewrites, so plain `ssh traverse.dev-box` (and scp,
// rsync, editors' remote plugins) go through `traverse proxy`. Everything outside the block is
// left as it was. The server URL and the token are never written: the ProxyCommand reads them
// from TRAVERSE_SERVER and TRAVERSE_TOKEN / TRAVERSE_TOKEN_FILE when ssh runs it.
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Option, type Command } from 'commander';
import { peersResponse } from '../coordination/views.js';
import { CommandFailed, UsageError } from './errors.js';
import { collect, hostPortFlag, serverFlag } from './options.js';
import { addCaOption, trustFlag } from './ca-option.js';
import { getJson, HttpGetError, type GetResult } from '../net/http-get.js';
import { proxyCommandLine } from './self.js';
import { checkAgentName, DEFAULT_SSH_TARGET, proxyArgv, sshHostAlias } from './ssh.js';
import { addTokenOptions } from './token-source.js';
import { unifiedDiff } from './unified-diff.js';
import { summaryOf } from './command-list.js';

export const BLOCK_START = '# ------------START-TRAVERSE-----------';
export const BLOCK_END = '# ------------END-TRAVERSE-------------';

export interface SshHost {
  readonly agent: string;
  /** The ProxyCommand line, as ssh_config takes it. */
  readonly proxyCommand: string;
}

/** The whole marked block, markers included, ending with a newline. */
export function renderBlock(hosts: readonly SshHost[], note: readonly string[] = []): string {
  const lines = [
    BLOCK_START,
    '# Written by `traverse config-ssh`, which replaces everything from START to END when it runs.',
    ...note.map((l) => `# ${l}`),
  ];
  for (const h of hosts) {
    const alias = sshHostAlias(h.agent);
    lines.push(`Host ${alias}`, `  HostKeyAlias ${alias}`, `  ProxyCommand ${h.proxyCommand}`);
  }
  lines.push(BLOCK_END);
  return lines.join('\n') + '\n';
}

export class BlockError extends Error {
  override readonly name = 'BlockError';
}

/** Where the block is: from the start of its START line to just after its END line; null if absent. */
export function findBlock(text: string): { start: number; end: number } | null {
  const starts: number[] = [];
  const ends: { line: number; after: number }[] = [];
  let offset = 0;
  for (const line of text.split('\n')) {
    const next = offset + line.length + 1;
    const t = line.trim();
    if (t === BLOCK_START) starts.push(offset);
    else if (t === BLOCK_END) ends.push({ line: offset, after: Math.min(next, text.length) });
    offset = next;
  }
  if (starts.length === 0 && ends.length === 0) return null;
  if (starts.length !== 1 || ends.length !== 1) {
    throw new BlockError(
      `expected one "${BLOCK_START}" line and one "${BLOCK_END}" line, found ${starts.length} and ${ends.length}; fix the file by hand (or delete both) and run again`,
    );
  }
  if (ends[0]!.line < starts[0]!) throw new BlockError('the END-TRAVERSE line comes before the START-TRAVERSE line; fix the file by hand and run again');
  return { start: starts[0]!, end: ends[0]!.after };
}

/**
 * The config with `block` in place of the old block (null: without a block). The old block is
 * replaced where it stands; a new one goes at the end, after a blank line. Removing a block also
 * removes the blank line that insertion put before it. Text outside the block stays as it was.
 */
export function rewriteConfig(text: string, block: string | null): string {
  const found = findBlock(text);
  if (found) {
    const before = text.slice(0, found.start);
    const after = text.slice(found.end);
    if (block !== null) return before + block + after;
    return after === '' && before.endsWith('\n\n') ? before.slice(0, -1) : before + after;
  }
  if (block === null || text === '') return block ?? text;
  const t = text.endsWith('\n') ? text : text + '\n';
  return t + (t.endsWith('\n\n') ? '' : '\n') + block;
}

interface ConfigSshFlags {
  sshConfig?: string;
  agent?: string[];
  target: string;
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  remove?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}

export function defaultSshConfig(): string {
  return join(homedir(), '.ssh', 'config');
}

export function registerConfigSshCommand(program: Command): void {
  const cmd = program
    .command('config-ssh')
    .description(summaryOf('config-ssh'))
    .option('--ssh-config <file>', 'the ssh config file to rewrite (default: ~/.ssh/config)')
    .option('--agent <name>', 'an agent to add (repeatable); default: the agents the server lists for this token', collect)
    .option('--target <host:port>', 'sshd as seen from each agent', DEFAULT_SSH_TARGET)
    .addOption(new Option('--server <url>', 'the server to ask for the agents (only without --agent); never written to the file').env('TRAVERSE_SERVER'));
  addCaOption(cmd);
  addTokenOptions(cmd, {
    stdin: true,
    help: 'a token to ask the server with (env TRAVERSE_TOKEN); never written to the file',
  })
    .option('--remove', 'remove the block instead')
    .option('--dry-run', 'show the diff and write nothing')
    .option('-y, --yes', 'write without asking')
    .addHelpText(
      'after',
      '\nThe block sits between\n' +
        `  ${BLOCK_START}\n  ${BLOCK_END}\n` +
        'and is the only part of the file this command changes. Each ProxyCommand reads the server and token\n' +
        'from TRAVERSE_SERVER and TRAVERSE_TOKEN (or TRAVERSE_TOKEN_FILE) when ssh runs it; with --token-file FILE\n' +
        'on the command line, that path (never the token) goes into the ProxyCommand.\n' +
        'It prints a unified diff first. On a terminal it asks before writing; otherwise it writes only with\n' +
        '--yes (exit 2 without it). --dry-run never writes. Nothing to change: exit 0, nothing written.\n' +
        '\nExamples:\n' +
        '  traverse config-ssh --agent dev-box --agent build-box\n' +
        '  TRAVERSE_SERVER=http://coord.example:8080 TRAVERSE_TOKEN_FILE=~/.traverse/token traverse config-ssh --yes\n' +
        '  ssh traverse.dev-box',
    )
    .action(async (flags: ConfigSshFlags, command: Command) => configSsh(flags, command.getOptionValueSource('tokenFile') === 'cli'));
}

async function configSsh(flags: ConfigSshFlags, tokenFileOnCli: boolean): Promise<void> {
  const file = resolve(flags.sshConfig ?? defaultSshConfig());
  hostPortFlag('--target', flags.target);
  let block: string | null = null;
  let summary = 'removed the traverse block';
  if (!flags.remove) {
    const agents = flags.agent?.length ? [...new Set(flags.agent.map((a) => checkAgentName(a, '--agent')))] : await agentsFromServer(flags);
    const extra = tokenFileOnCli && flags.tokenFile ? ['--token-file', resolve(flags.tokenFile)] : [];
    const hosts = agents.map((agent) => ({ agent, proxyCommand: proxyCommandLine(proxyArgv(agent, flags.target, extra)) }));
    const note = extra.length
      ? ['The ProxyCommand reads the server from TRAVERSE_SERVER and the token from the --token-file it names.']
      : ['The ProxyCommand reads TRAVERSE_SERVER and TRAVERSE_TOKEN (or TRAVERSE_TOKEN_FILE) from the environment.'];
    block = renderBlock(hosts, note);
    summary = `${hosts.length} host${hosts.length === 1 ? '' : 's'}: ${hosts.map((h) => sshHostAlias(h.agent)).join(', ')}`;
  }

  const exists = existsSync(file);
  let before = '';
  if (exists) {
    try {
      before = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CommandFailed(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  let after: string;
  try {
    after = rewriteConfig(before, block);
  } catch (err) {
    if (err instanceof BlockError) throw new CommandFailed(`${file}: ${err.message}`);
    throw err;
  }
  if (after === before) {
    process.stdout.write(`${file} is up to date (${summary}); nothing written\n`);
    return;
  }
  process.stdout.write(unifiedDiff(before, after, exists ? file : '/dev/null', file));
  if (flags.dryRun) {
    process.stdout.write(`dry run: ${file} not written\n`);
    return;
  }
  if (!flags.yes) {
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      throw new UsageError(`${file} not written: not a terminal, so there is no one to ask; pass --yes to write it (or --dry-run)`);
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Write these changes to ${file}? [y/N] `).finally(() => rl.close());
    if (!/^y(es)?$/i.test(answer.trim())) throw new CommandFailed(`${file} not written`);
  }
  writeConfig(file, exists, after);
  process.stdout.write(`wrote ${file} (${summary})\n`);
}

async function agentsFromServer(flags: ConfigSshFlags): Promise<string[]> {
  if (!flags.server || !flags.token) {
    throw new UsageError('no agents: pass --agent NAME (repeatable), or set TRAVERSE_SERVER and TRAVERSE_TOKEN to list the agents the server knows');
  }
  const base = serverFlag(flags.server);
  let res: GetResult;
  try {
    res = await getJson(new URL('/api/v1/peers', base), flags.token, { timeoutMs: 10_000, trust: trustFlag(flags.ca) });
  } catch (err) {
    if (!(err instanceof HttpGetError)) throw err;
    throw new CommandFailed(`cannot reach ${base.origin} (${err.reason})${err.tls ? '' : '; is the server running? check --server'}`);
  }
  if (res.status === 401) throw new CommandFailed('the server refused the token; check TRAVERSE_TOKEN or --token-file');
  if (res.status < 200 || res.status > 299) throw new CommandFailed(`${base.origin}/api/v1/peers answered HTTP ${res.status}`);
  const parsed = peersResponse.safeParse(res.body);
  if (!parsed.success) throw new CommandFailed(`${base.origin}/api/v1/peers answered with something this version does not understand`);
  const agents = [...new Set(parsed.data.peers.filter((p) => p.kind === 'agent').map((p) => p.name))].sort();
  if (agents.length === 0) {
    throw new CommandFailed(`${base.origin} lists no agent for this token (it lists connected agents only); start the agent, or name it with --agent NAME`);
  }
  return agents;
}

/** Writes through a temporary file and a rename, into the file a symlink points to, keeping its mode. */
function writeConfig(file: string, exists: boolean, text: string): void {
  try {
    const real = exists ? realpathSync(file) : file;
    const dir = dirname(real);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = exists ? statSync(real).mode & 0o7777 : 0o600;
    const tmp = join(dir, `.${process.pid}.traverse-config-ssh.tmp`);
    try {
      writeFileSync(tmp, text, { mode });
      chmodSync(tmp, mode);
      renameSync(tmp, real);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  } catch (err) {
    throw new CommandFailed(`cannot write ${file}: ${(err as Error).message}`);
  }
}

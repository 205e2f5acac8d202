// `traverse ssh [USER@]AGENT [ssh args...]`: the system ssh, with `traverse proxy` as its
// ProxyCommand, so one command reaches sshd inside the workspace. The server and token go to
// the proxy through the environment (never on ssh's command line, where `ps` shows them).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { identityName } from '../coordination/protocol.js';
import { CommandFailed, UsageError } from './errors.js';
import { hostPortFlag, serverFlag } from './options.js';
import { addPeerOptions, type PeerFlags } from './peer-options.js';
import { trustFlag } from './ca-option.js';
import { proxyCommandLine, selfCommand } from './self.js';
import { summaryOf } from './command-list.js';

export const DEFAULT_SSH_TARGET = '127.0.0.1:22';

interface SshFlags extends PeerFlags {
  target: string;
}

/** The ssh host name (and HostKeyAlias) an agent goes by: traverse.AGENT. */
export function sshHostAlias(agent: string): string {
  return `traverse.${agent}`;
}

/** Throws a UsageError unless `name` can be an agent's name (which also makes it safe in ssh_config). */
export function checkAgentName(name: string, what = 'AGENT'): string {
  if (name.startsWith('-')) throw new UsageError(`${what} "${name}" looks like an option; ssh options go after AGENT: traverse ssh AGENT -v -- COMMAND`);
  if (!identityName.safeParse(name).success) {
    throw new UsageError(`${what} "${name}" is not an agent name (letters, digits, ".", "_" and "-", starting with a letter or digit)`);
  }
  return name;
}

/** The argv of `traverse proxy AGENT TARGET ...` for ssh's ProxyCommand, with only non-secret flags. */
export function proxyArgv(agent: string, target: string, extra: readonly string[] = []): string[] {
  return [...selfCommand(), 'proxy', agent, target, ...extra];
}

export function registerSshCommand(program: Command): void {
  const cmd = program
    .command('ssh')
    .description(summaryOf('ssh'))
    .argument('<agent>', "[USER@]AGENT: the agent's name; USER is the login in the workspace (default: ssh's choice, usually your local user name)")
    .argument('[ssh-args...]', 'handed to ssh after the host name: ssh options (-i KEY, -L ..., -t), then -- and a command to run')
    .option('--target <host:port>', 'sshd as seen from the agent', DEFAULT_SSH_TARGET)
    .allowUnknownOption();
  addPeerOptions(cmd, { disableDirect: true, stdinToken: false })
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  traverse ssh dev-box                       # a shell on dev-box as your local user name\n' +
        '  traverse ssh root@dev-box -- uname -a      # run one command; exits with its status\n' +
        '  traverse ssh dev-box -i ~/.ssh/id_work -L 8080:localhost:80\n' +
        '\nThe host is traverse.AGENT (also its HostKeyAlias, so known_hosts keeps one entry per agent);\n' +
        'a "Host traverse.AGENT" section in ~/.ssh/config (see `traverse config-ssh`) still applies.\n' +
        'Exit status: ssh\'s (the remote command\'s, or 255 when ssh fails), 130 when interrupted,\n' +
        '1 when ssh is not installed, 2 for bad arguments.',
    )
    .action(async (agentArg: string, sshArgs: string[], flags: SshFlags) => {
      process.exitCode = await runSsh(agentArg, sshArgs, flags);
    });
}

async function runSsh(agentArg: string, sshArgs: string[], flags: SshFlags): Promise<number> {
  const at = agentArg.lastIndexOf('@');
  const user = at >= 0 ? agentArg.slice(0, at) : undefined;
  const agent = checkAgentName(at >= 0 ? agentArg.slice(at + 1) : agentArg);
  if (user !== undefined && !/^[^\s@'"]+$/.test(user)) throw new UsageError(`"${user}" is not a user name; expected USER@AGENT`);
  hostPortFlag('--target', flags.target);
  if (!flags.server) throw new UsageError('no server: pass --server URL or set TRAVERSE_SERVER');
  if (!flags.token) throw new UsageError('no token: set TRAVERSE_TOKEN, or pass --token-file FILE');
  serverFlag(flags.server);

  const extra: string[] = [];
  for (const s of flags.stun ?? []) extra.push('--stun', s);
  if (flags.port !== undefined) extra.push('--port', String(flags.port));
  if (flags.keyFile) extra.push('--key-file', resolve(flags.keyFile));
  if (flags.ca) extra.push('--ca', resolve(trustFlag(flags.ca).caFile ?? flags.ca));
  if (flags.disableDirect) extra.push('--disable-direct');
  if (flags.tcpLane === false) extra.push('--no-tcp-lane');
  if (flags.relayLane === false) extra.push('--no-relay-lane');
  if (flags.portMapping === false) extra.push('--no-port-mapping');

  const alias = sshHostAlias(agent);
  const args = [
    '-o', `ProxyCommand=${proxyCommandLine(proxyArgv(agent, flags.target, extra))}`,
    '-o', `HostKeyAlias=${alias}`,
    user !== undefined ? `${user}@${alias}` : alias,
    // OpenSSH reads options after the host too, up to the first word that is not one (or "--").
    ...sshArgs,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, TRAVERSE_SERVER: flags.server, TRAVERSE_TOKEN: flags.token };
  delete env.TRAVERSE_TOKEN_FILE; // the token above, already read from it, is the one to use
  return spawnSsh(args, env);
}

function spawnSsh(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('ssh', args, { stdio: 'inherit', env });
    let interrupted: NodeJS.Signals | undefined;
    // A terminal's ^C reaches ssh itself (same process group); a signal sent to traverse alone is passed on.
    const forward = (sig: NodeJS.Signals): void => {
      interrupted ??= sig;
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    const done = (): void => {
      for (const s of signals) process.off(s, forward);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(
        new CommandFailed(
          err.code === 'ENOENT' ? 'ssh is not installed (no `ssh` on PATH); install the OpenSSH client, e.g. `apt install openssh-client`' : `cannot run ssh: ${err.message}`,
        ),
      );
    });
    child.once('exit', (code, signal) => {
      done();
      if (signal) return resolvePromise(128 + (constants.signals[signal] ?? 0));
      // ssh exits 255 when a signal ends it: report the interruption as a shell would.
      if (interrupted && code !== 0) return resolvePromise(128 + (constants.signals[interrupted] ?? 0));
      resolvePromise(code ?? 1);
    });
  });
}

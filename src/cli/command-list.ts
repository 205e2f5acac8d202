// Every command, with what `traverse --help` says of it, and how to load it. Only the command
// being run is loaded (with everything it needs); `traverse --help` loads none of them, so it
// starts about as fast as Node itself.
import { Option, type Command } from 'commander';
import { commandName } from './command-name.js';

export interface CommandEntry {
  readonly name: string;
  /** Arguments as in the listing ("<agent> <spec...>"). */
  readonly args: string;
  /** Whether the command has options (the listing says "[options]"). */
  readonly options: boolean;
  /** The one line the listing and the command's own --help show. */
  readonly summary: string;
  load(): Promise<(program: Command) => void>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'stun', args: '<server>', options: true, summary: 'ask a STUN server for the public address and port this machine appears as', load: async () => (await import('./stun.js')).registerStunCommand },
  { name: 'netcheck', args: '', options: true, summary: 'find out what the NAT and firewall in front of this machine do, and what that means for direct connections', load: async () => (await import('./netcheck.js')).registerNetcheckCommand },
  { name: 'agent', args: '', options: true, summary: 'run the workspace agent: reachable by the clients the server allows, directly or through the relay', load: async () => (await import('./agent.js')).registerAgentCommand },
  { name: 'ping', args: '<agent>', options: true, summary: 'connect to an agent as a client and ping it through the peer path (direct or relay)', load: async () => (await import('./ping.js')).registerPingCommand },
  { name: 'forward', args: '<agent> <spec...>', options: true, summary: 'forward local TCP ports to targets inside the workspace, over the encrypted peer path', load: async () => (await import('./forward.js')).registerForwardCommand },
  { name: 'proxy', args: '<agent> <target>', options: true, summary: 'connect stdin/stdout to HOST:PORT inside the workspace (for ssh -o ProxyCommand)', load: async () => (await import('./proxy.js')).registerProxyCommand },
  { name: 'ssh', args: '<agent> [ssh-args...]', options: true, summary: "ssh into an agent's workspace: runs the system ssh with `traverse proxy` as its ProxyCommand", load: async () => (await import('./ssh.js')).registerSshCommand },
  { name: 'config-ssh', args: '', options: true, summary: 'add a "Host traverse.AGENT" section per agent to ~/.ssh/config, so plain ssh/scp reach the workspaces through traverse proxy', load: async () => (await import('./config-ssh.js')).registerConfigSshCommand },
  { name: 'speedtest', args: '<agent>', options: true, summary: 'measure throughput to an agent over the current path (direct or relay)', load: async () => (await import('./speedtest.js')).registerSpeedtestCommand },
  { name: 'server', args: '', options: true, summary: 'run the coordination server: peer coordination, the relay, and an embedded STUN server', load: async () => (await import('./server.js')).registerServer },
  { name: 'token', args: '', options: false, summary: "create, list, revoke and rotate identities' tokens", load: async () => (await import('./token.js')).registerToken },
  { name: 'identity', args: '', options: false, summary: 'delete identities (create them with traverse token create)', load: async () => (await import('./identity.js')).registerIdentity },
  { name: 'allow', args: '', options: false, summary: 'add, remove and list the agents a client may reach', load: async () => (await import('./allow.js')).registerAllow },
  { name: 'status', args: '', options: true, summary: 'show the peers and tunnels a running server reports for this token', load: async () => (await import('./status.js')).registerStatus },
  { name: 'stun-server', args: '', options: true, summary: 'run a STUN server (Binding, RFC 5780 NAT behaviour discovery)', load: async () => (await import('./stun-server.js')).registerStunServer },
];

/** The one line of a command, for its own --help (the listing shows the same). */
export function summaryOf(name: string): string {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) throw new Error(`no command ${name}`);
  return c.summary;
}

/** The command an argument list runs ("traverse help agent" runs agent's help), if any. */
export function commandIn(argv: readonly string[]): CommandEntry | undefined {
  const name = commandName(argv);
  return COMMANDS.find((c) => c.name === name);
}

/** Lists every command in `traverse --help` without loading any. */
export function listCommands(program: Command): void {
  for (const c of COMMANDS) {
    const cmd = program.command(c.args ? `${c.name} ${c.args}` : c.name).summary(c.summary);
    if (c.options) cmd.addOption(new Option('--listed').hideHelp());
  }
}

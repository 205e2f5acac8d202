// The one place that lists the commands; each lives in its own file.
import type { Command } from 'commander';
import { registerStunCommand } from './stun.js';
import { registerNetcheckCommand } from './netcheck.js';
import { registerAgentCommand } from './agent.js';
import { registerPingCommand } from './ping.js';
import { registerForwardCommand } from './forward.js';
import { registerProxyCommand } from './proxy.js';
import { registerSshCommand } from './ssh.js';
import { registerConfigSshCommand } from './config-ssh.js';
import { registerSpeedtestCommand } from './speedtest.js';
import { registerServer } from './server.js';
import { registerToken } from './token.js';
import { registerIdentity } from './identity.js';
import { registerAllow } from './allow.js';
import { registerStatus } from './status.js';
import { registerStunServer } from './stun-server.js';

export function registerCommands(program: Command): void {
  registerStunCommand(program);
  registerNetcheckCommand(program);
  registerAgentCommand(program);
  registerPingCommand(program);
  registerForwardCommand(program);
  registerProxyCommand(program);
  registerSshCommand(program);
  registerConfigSshCommand(program);
  registerSpeedtestCommand(program);
  registerServer(program);
  registerToken(program);
  registerIdentity(program);
  registerAllow(program);
  registerStatus(program);
  registerStunServer(program);
}

// The one place that lists the commands; each lives in its own file.
import type { Command } from 'commander';
import { registerStunCommand } from './stun.js';
import { registerServer } from './server.js';
import { registerToken } from './token.js';

export function registerCommands(program: Command): void {
  registerStunCommand(program);
  registerServer(program);
  registerToken(program);
}

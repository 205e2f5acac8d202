// The one place that lists the commands; each lives in its own file.
import type { Command } from 'commander';
import { registerServer } from './server.js';
import { registerToken } from './token.js';

export function registerCommands(program: Command): void {
  registerServer(program);
  registerToken(program);
}

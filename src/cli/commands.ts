// The one place that lists the commands; each lives in its own file.
import type { Command } from 'commander';

export function registerCommands(program: Command): void {
  void program;
}

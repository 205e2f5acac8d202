import { Command, CommanderError } from 'commander';
import { CommandFailed, EXIT_FAILED, EXIT_USAGE, UsageError } from './errors.js';
import { EndpointError } from '../net/endpoint.js';
import { commandIn, listCommands } from './command-list.js';
import { packageVersion } from './self.js';
import { trace } from '../log/trace.js';

/** The program with the command `argv` runs loaded, or, for the listing, every command named. */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('traverse')
    .description(
      'Direct, encrypted connections between a developer machine and a remote workspace, across NATs and firewalls: ' +
        'STUN discovery, a coordination server, hole punching, and a relay when no direct path exists.',
    )
    .version(packageVersion())
    // Commander's own errors (unknown option, missing argument, invalid value) in the one
    // style of every message: one line, "traverse: ", and where to look next.
    .configureOutput({
      outputError: (text, write) => write(`traverse: ${text.trim().replace(/^error: /, '')} (run with --help for usage)\n`),
    })
    .exitOverride();
  const wanted = commandIn(argv);
  if (wanted) (await wanted.load())(program);
  else listCommands(program);
  trace('modules loaded');
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return EXIT_USAGE; // commander already printed the message
  }
  if (err instanceof UsageError || err instanceof EndpointError) {
    process.stderr.write(`traverse: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof CommandFailed) {
    process.stderr.write(`traverse: ${err.message}\n`);
    return EXIT_FAILED;
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`traverse: ${msg}\n`);
  return EXIT_FAILED;
}

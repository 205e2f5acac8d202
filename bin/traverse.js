#!/usr/bin/env node
// The sources are TypeScript compiled to dist/ by `npm ci` (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('traverse: dist/ is missing; run `npm ci` (or `npm run build`) in the repository first\n');
  process.exit(2);
}
// `traverse --help | head`: a reader that goes away is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  // A command that writes a stream to stdout (proxy) handles its own end; this is for the rest.
  if (process.stdout.listenerCount('error') > 1) return;
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`traverse: cannot write to standard output: ${err.message}\n`);
  process.exit(1);
});
// The last line of defence: whatever escaped the command's own error handling ends in one line,
// not a stack trace (unless the user asked for debug logs).
const fatal = (err) => {
  // --log-level is copied into TRAVERSE_LOG_LEVEL before a command runs (cli/log-options.ts).
  const debug = process.env.TRAVERSE_LOG_LEVEL === 'debug' || process.env.TRAVERSE_LOG_LEVEL === 'trace';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(debug && err instanceof Error && err.stack ? `${err.stack}\n` : `traverse: unexpected error: ${message} (run with --log-level debug for details)\n`);
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
const { main } = await import(entry.href);
await main(process.argv.slice(2));

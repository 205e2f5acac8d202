#!/usr/bin/env node
// The sources are TypeScript compiled to dist/ by `npm ci` (the `prepare` script).
// CommonJS (bin/package.json says so): Node starts a CommonJS entry ~5 ms of CPU sooner than an
// ES module one, and every ssh connection through `traverse proxy` starts one of these.
'use strict';
const { existsSync, statSync } = require('node:fs');
const { join } = require('node:path');

const path = (p) => join(__dirname, p);
const compiled = path('../dist/src/cli/main.js');
// The bundle (scripts/bundle-cli.mjs: a script per command, run with a V8 code cache) starts
// faster; it is used only when built after the last compile (list.cjs is its last file), so a
// plain `tsc` is never shadowed by a stale bundle.
const bundled = path('../dist/bundle/list.cjs');
const mtime = (p) => statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? -1;
const useBundle = mtime(bundled) > 0 && mtime(bundled) >= mtime(path('../dist/.tsbuildinfo'));
if (!useBundle && !existsSync(compiled)) {
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
const argv = process.argv.slice(2);
if (useBundle) {
  // The loader (dist/bundle/code-cache.cjs, from src/cli/code-cache.ts).
  const { chooseScript, runWithCodeCache } = require('../dist/bundle/code-cache.cjs');
  const name = chooseScript(argv, path('../dist/bundle'));
  void runWithCodeCache(path(`../dist/bundle/${name}.cjs`), path('../dist/code-cache'), name).main(argv);
} else {
  void import('../dist/src/cli/main.js').then(({ main }) => main(argv));
}

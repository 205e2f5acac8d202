#!/usr/bin/env node
// The sources are TypeScript compiled to dist/ by `npm ci` (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('traverse: dist/ is missing; run `npm ci` (or `npm run build`) in the repository first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));

// Bundles the compiled CLI (dist/src/cli/main.js) and the JavaScript it imports into a few files
// under dist/bundle/, one chunk per command (the commands are imported lazily, and esbuild keeps
// those imports as split points). Why: a command that starts a peer (ssh's ProxyCommand runs one
// per connection) otherwise spends more CPU finding, reading and lexing a few hundred module
// files than on connecting; measured on loopback, `traverse proxy` took 370-490 ms of CPU against
// 230-270 ms bundled. Native addons stay outside (they are loaded with require at run time).
// The sources import zod as a namespace (`import * as z from 'zod'`): esbuild then keeps only
// what is used; `import { z }` pulled in all of zod's locales (757 KB of the proxy's load, 170 KB now).
//
// bin/traverse.js uses the bundle only when it is newer than the last compile (dist/.tsbuildinfo),
// so a `tsc` without this step runs the compiled files instead of a stale bundle.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  // The STUN server's cluster workers run server-worker.js from beside the module that forks them.
  // Both at the top of dist/bundle/, beside the chunks: a chunk that forks finds the worker there.
  entryPoints: [
    { in: new URL('../dist/src/cli/main.js', import.meta.url).pathname, out: 'main' },
    { in: new URL('../dist/src/stun/server-worker.js', import.meta.url).pathname, out: 'server-worker' },
    // The same for a replica's heartbeat thread (server/replica/heartbeat-worker.ts).
    { in: new URL('../dist/src/server/replica/heartbeat-worker.js', import.meta.url).pathname, out: 'heartbeat-worker' },
  ],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native addons and what loads them: required from node_modules at run time (bundled, they
  // would look for their .node files beside the bundle, and ws would quietly do without bufferutil).
  external: ['udx-native', 'sodium-native', 'better-sqlite3', 'bufferutil', 'utf-8-validate', 'require-addon', 'node-gyp-build'],
  // CommonJS packages inside an ES module bundle still call require() for Node's own modules.
  banner: { js: "import { createRequire as __traverseRequire } from 'node:module'; const require = __traverseRequire(import.meta.url);" },
  logLevel: 'warning',
});

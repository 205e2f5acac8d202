// Bundles the compiled CLI (dist/src/cli/main.js) and the JavaScript it imports into CommonJS
// scripts, one per command (dist/bundle/<command>.cjs, and list.cjs for the listing), which
// bin/traverse.js runs with a V8 code cache (src/cli/code-cache.ts). Why: a command that starts a
// peer (ssh's ProxyCommand runs one per connection) otherwise spends more CPU finding, reading,
// parsing and compiling modules than on connecting. Measured on loopback, `traverse proxy` took
// 370-490 ms of CPU unbundled, 230-270 ms as split ES modules; as its own script with its cache it
// reaches "modules loaded" ~35 ms sooner than the split ES modules did. Scripts, not ES module
// chunks: V8 takes a code cache only for a script (vm.Script), not for an ES module, in Node 20.
// The sources import zod as a namespace (`import * as z from 'zod'`): esbuild then keeps only
// what is used; `import { z }` pulled in all of zod's locales.
//
// Native addons: the .node files stay where npm put them, but the JavaScript of the packages
// around them (sodium-native, udx-native, bufferutil) is bundled, and each package's binding is
// loaded straight from the .node file found here at build time; finding it at run time
// (require-addon, node-gyp-build: package.json reads, directory scans, a dozen small modules)
// cost 20-40 ms of every start. If that file is gone or does not load, the package's own
// loader runs instead. better-sqlite3 (the server's) stays outside whole.
//
// Then each command runs once with --help, which leaves a seed code cache in dist/code-cache/.
//
// bin/traverse.js uses the bundle only when it is newer than the last compile (dist/.tsbuildinfo),
// so a `tsc` without this step runs the compiled files instead of a stale bundle.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { relative } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';

const here = (p) => new URL(p, import.meta.url).pathname;
const outdir = here('../dist/bundle/');
const cacheDir = here('../dist/code-cache/');
rmSync(outdir, { recursive: true, force: true });
rmSync(cacheDir, { recursive: true, force: true });

/** The .node file each addon package loads on this machine (as Node's own loaders find it). */
function addonFiles() {
  const require = createRequire(import.meta.url);
  const files = {};
  for (const pkg of ['sodium-native', 'udx-native', 'bufferutil']) {
    try {
      require(pkg);
    } catch {
      continue; // not installed (bufferutil is optional): its importer copes, as it does unbundled
    }
    const file = Object.keys(require.cache).find((f) => f.endsWith('.node') && f.includes(`/node_modules/${pkg}/`));
    if (file) files[pkg] = file;
  }
  return files;
}

const ADDON_FILES = addonFiles();

// What stays outside the bundle and is required at run time. The addon packages are here too,
// for their fallback when the .node file found at build time does not load.
const EXTERNAL = ['better-sqlite3', 'utf-8-validate', 'require-addon', 'node-gyp-build', 'sodium-native/binding.js', 'udx-native/binding.js', 'bufferutil'];

/** The bindings of the addon packages: the .node file directly, the package's own loader as the fallback. */
const nativeAddons = {
  name: 'native-addons',
  setup(b) {
    const bindingOf = (importer) => Object.keys(ADDON_FILES).find((pkg) => pkg !== 'bufferutil' && importer.includes(`/node_modules/${pkg}/`));
    b.onResolve({ filter: /^(\.\.?\/binding(\.js)?|bufferutil)$/ }, (a) => {
      if (a.path === 'bufferutil') return ADDON_FILES.bufferutil ? { path: 'bufferutil', namespace: 'addon' } : undefined;
      const pkg = bindingOf(a.importer);
      return pkg ? { path: pkg, namespace: 'addon' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'addon' }, (a) => {
      const file = JSON.stringify(relative(outdir, ADDON_FILES[a.path]));
      const fallback = JSON.stringify(a.path === 'bufferutil' ? 'bufferutil' : `${a.path}/binding.js`);
      return {
        loader: 'js',
        contents: `let binding;\ntry { binding = require(require('node:path').join(__dirname, ${file})); } catch { binding = require(${fallback}); }\nmodule.exports = binding;\n`,
      };
    });
  },
};

// Threads and processes the server starts run a module from beside the one that starts them:
// the STUN server's cluster workers server-worker.js, a replica's heartbeat thread
// heartbeat-worker.js (server/replica/heartbeat-worker.ts). Each is its own entry point (an ES
// module, as compiled), at the top of dist/bundle/ beside the scripts below.
await build({
  entryPoints: [
    { in: here('../dist/src/stun/server-worker.js'), out: 'server-worker' },
    { in: here('../dist/src/server/replica/heartbeat-worker.js'), out: 'heartbeat-worker' },
  ],
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The addon packages whole: these are not run through the loader above.
  external: [...EXTERNAL, 'sodium-native', 'udx-native'],
  banner: { js: "import { createRequire as __traverseRequire } from 'node:module'; const require = __traverseRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The loader itself (src/cli/code-cache.ts), as CommonJS: bin/traverse.js requires it.
await build({
  entryPoints: [here('../dist/src/cli/code-cache.js')],
  outfile: `${outdir}code-cache.cjs`,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});

/** A script with one command in it (null: none, the listing's): every other command's module is left out. */
function onlyCommand(name) {
  return {
    name: 'only-command',
    setup(b) {
      b.onResolve({ filter: /^\.\/[a-z-]+\.js$/ }, (a) =>
        a.kind === 'dynamic-import' && a.importer.endsWith('/cli/command-list.js') && a.path !== `./${name}.js` ? { path: a.path, namespace: 'left-out' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'left-out' }, (a) => ({
        loader: 'js',
        contents: `throw new Error(${JSON.stringify(`${a.path} is not in this script (bin/traverse.js runs each command's own)`)});`,
      }));
    },
  };
}

// One script per command, with only what that command loads (`traverse proxy` reads and
// deserializes 0.8 MB instead of the 2.7 MB of every command: ~5 ms less CPU per start), and
// list.cjs with none, for `traverse`, `traverse --help`, `--version` and words that are no
// command (a fortieth of the size: it starts within a few ms of Node itself). Written last, its
// mtime is what bin/traverse.js compares with the last compile.
const { COMMANDS } = await import(here('../dist/src/cli/command-list.js'));
for (const name of [...COMMANDS.map((c) => c.name), null]) {
  const out = `${outdir}${name ?? 'list'}.cjs`;
  await build({
    entryPoints: [here('../dist/src/cli/main.js')],
    outfile: out,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    plugins: [nativeAddons, onlyCommand(name)],
    external: EXTERNAL,
    // Without comments and indentation: a third smaller to read, and all ASCII (esbuild escapes
    // what is not, outside comments), so the loader reads it as a one-byte string, several ms
    // faster than decoding UTF-8 into a two-byte one. Names stay, for stack traces.
    minifyWhitespace: true,
    charset: 'ascii',
    // The sources find files beside themselves (package.json, the web assets, the STUN worker)
    // from import.meta.url: in this script, its own file URL.
    define: { 'import.meta.url': '__traverseBundleUrl' },
    banner: { js: "var __traverseBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
  if (readFileSync(out).some((byte) => byte > 0x7f)) throw new Error(`${out} is not ASCII: the loader reads it as Latin-1`);
}

// Seed caches: each script's modules once through V8, so even the first real run has one.
for (const args of [['--help'], ...COMMANDS.map((c) => [c.name, '--help'])]) {
  const r = spawnSync(process.execPath, [here('../bin/traverse.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TRAVERSE_TRACE: '' } });
  if (r.status !== 0) throw new Error(`traverse ${args.join(' ')} failed after bundling: ${r.stderr}`);
}

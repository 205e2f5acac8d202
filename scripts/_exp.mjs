import { build } from 'esbuild';
const root = new URL('../', import.meta.url).pathname;
const want = process.env.CMD;
const only = { name: 'only', setup(b) {
  b.onResolve({ filter: /^\.\/[a-z-]+\.js$/ }, (a) => {
    if (a.kind !== 'dynamic-import' || !a.importer.endsWith('/cli/command-list.js')) return;
    if (a.path === `./${want}.js`) return;
    return { path: a.path, namespace: 'stub' };
  });
  b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'throw new Error("not in this bundle")', loader: 'js' }));
} };
await build({
  entryPoints: [root + 'dist/src/cli/main.js'], bundle: true, format: 'cjs', platform: 'node', target: 'node20', outfile: root + `dist/exp/${want}.cjs`,
  minify: process.env.MIN === '1', plugins: [only],
  external: ['udx-native', 'sodium-native', 'better-sqlite3', 'bufferutil', 'utf-8-validate', 'require-addon', 'node-gyp-build'],
  nodePaths: [root + 'node_modules'], logLevel: 'warning',
  define: { 'import.meta.url': '__importMetaUrl' }, banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
});

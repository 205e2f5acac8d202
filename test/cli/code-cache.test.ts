// The code cache the bundled CLI starts with (cli/code-cache.ts): a cache that is corrupt, cut
// short, made for another build or another Node, or rejected by V8 is never used and never fails
// the command; it is replaced. Each case runs a real script in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/temp-dir.js';
import { CACHE_FULL_AFTER_MS, chooseScript, decodeCache, encodeCache, runtimeId } from '../../src/cli/code-cache.js';

const LOADER = fileURLToPath(new URL('../../src/cli/code-cache.js', import.meta.url));

test('a cache file round-trips, and any change to it or to what it belongs to is refused', () => {
  const id = { scriptSize: 1234, scriptCrc: 0xdeadbeef, runtime: runtimeId() };
  const payload = Buffer.from('v8 data '.repeat(100));
  const file = encodeCache('full', id, payload);
  const ok = decodeCache(file, id);
  assert.ok('payload' in ok && ok.kind === 'full' && ok.payload.equals(payload));
  const flipped = Buffer.from(file);
  flipped[flipped.length - 10]! ^= 0x40;
  assert.deepEqual(decodeCache(flipped, id), { problem: 'corrupt' });
  assert.deepEqual(decodeCache(file.subarray(0, file.length - 1), id), { problem: 'truncated' });
  assert.deepEqual(decodeCache(Buffer.concat([file, Buffer.from([0])]), id), { problem: 'truncated' });
  assert.deepEqual(decodeCache(file, { ...id, scriptSize: 1235 }), { problem: 'made for another build' });
  assert.deepEqual(decodeCache(file, { ...id, scriptCrc: 0xdeadbeee }), { problem: 'made for another build' });
  assert.deepEqual(decodeCache(file, { ...id, runtime: 'v99.0.0 linux x64' }), { problem: 'made by another Node' });
  assert.deepEqual(decodeCache(Buffer.alloc(0), id), { problem: 'not a code cache' });
  assert.deepEqual(decodeCache(Buffer.from('garbage that is long enough to hold a header'), id), { problem: 'not a code cache' });
});

test('the script a command line runs: its command\'s, else the listing\'s', (t) => {
  const dir = tempDir(t, 'traverse-cc-');
  writeFileSync(join(dir, 'proxy.cjs'), '');
  writeFileSync(join(dir, 'list.cjs'), '');
  assert.equal(chooseScript([], dir), 'list');
  assert.equal(chooseScript(['--help'], dir), 'list');
  assert.equal(chooseScript(['help'], dir), 'list');
  assert.equal(chooseScript(['proxy', 'dev-box', 'localhost:22'], dir), 'proxy');
  assert.equal(chooseScript(['--log-level=debug', 'proxy', 'dev-box', 'localhost:22'], dir), 'proxy');
  assert.equal(chooseScript(['help', 'proxy'], dir), 'proxy');
  assert.equal(chooseScript(['agent'], dir), 'list', 'no script of that name');
  assert.equal(chooseScript(['../../etc/passwd'], dir), 'list');
});

/** Runs `script` through the loader in a child; what it printed and the trace line about the cache. */
function run(script: string, cacheDir: string, extraFlags: string[] = [], linger = 0, signal: NodeJS.Signals | null = null, name = 't'): { out: string; cache: string } {
  const r = spawnSync(
    process.execPath,
    [...extraFlags, '--input-type=module', '-e', `import { runWithCodeCache } from ${JSON.stringify(LOADER)}; const m = runWithCodeCache(${JSON.stringify(script)}, ${JSON.stringify(cacheDir)}, ${JSON.stringify(name)}); process.stdout.write(String(m.answer())); setTimeout(() => {}, ${linger});`],
    { encoding: 'utf8', env: { ...process.env, TRAVERSE_TRACE: '1' } },
  );
  if (signal) assert.equal(r.signal, signal, r.stderr);
  else assert.equal(r.status, 0, r.stderr);
  return { out: r.stdout, cache: new RegExp(`code cache ${name}: (.*)`).exec(r.stderr)?.[1] ?? `(no trace line in ${r.stderr})` };
}

test('a run makes a seed cache, the next uses it; a corrupt, stale or rejected cache is replaced and never fails the run', (t) => {
  const dir = tempDir(t, 'traverse-cc-');
  const script = join(dir, 'script.cjs');
  const body = (n: number): string => `exports.answer = function () { let s = 0; for (let i = 0; i < ${n}; i++) s += i; return s; };\n`;
  writeFileSync(script, body(10));
  const cacheFile = join(dir, 'cache', 't.bin');
  assert.deepEqual(run(script, join(dir, 'cache')), { out: '45', cache: 'no (none yet)' });
  assert.equal(run(script, join(dir, 'cache')).cache, 'seed');
  // A flipped byte in V8's data: refused by the checksum, not handed to V8.
  const good = readFileSync(cacheFile);
  const bad = Buffer.from(good);
  bad[bad.length - 5]! ^= 0xff;
  writeFileSync(cacheFile, bad);
  assert.deepEqual(run(script, join(dir, 'cache')), { out: '45', cache: 'no (corrupt)' });
  assert.equal(run(script, join(dir, 'cache')).cache, 'seed', 'replaced by a good one');
  // A rebuilt script of the same size: the old cache is not used for it.
  writeFileSync(script, body(10).replace('s += i', 's -= i'));
  assert.deepEqual(run(script, join(dir, 'cache')), { out: '-45', cache: 'no (made for another build)' });
  assert.equal(run(script, join(dir, 'cache')).cache, 'seed');
  // V8 refuses data made under other flags: the script still runs, and the cache is remade.
  const flagged = run(script, join(dir, 'cache'), ['--no-lazy']);
  assert.equal(flagged.out, '-45');
  assert.equal(flagged.cache, 'seed, rejected by V8');
  // ... made for --no-lazy now, so the next plain run is refused too, and remakes it.
  assert.deepEqual(run(script, join(dir, 'cache')), { out: '-45', cache: 'seed, rejected by V8' });
  // A run that lasts (a proxy, an agent) replaces the seed with a full cache, once.
  assert.equal(run(script, join(dir, 'cache'), [], CACHE_FULL_AFTER_MS + 300).cache, 'seed');
  assert.equal(run(script, join(dir, 'cache')).cache, 'full');
  const before = statSync(cacheFile).mtimeMs;
  assert.equal(run(script, join(dir, 'cache'), [], CACHE_FULL_AFTER_MS + 300).cache, 'full');
  assert.equal(statSync(cacheFile).mtimeMs, before, 'a full cache is not rewritten');
});

test("a command that got going and is ended by ssh's SIGHUP leaves a full cache, and still ends by SIGHUP", (t) => {
  const dir = tempDir(t, 'traverse-cc-');
  const script = join(dir, 'script.cjs');
  writeFileSync(
    script,
    "exports.answer = function () { globalThis[Symbol.for('traverse.started-up')]?.(); setTimeout(() => process.kill(process.pid, 'SIGHUP'), 50); return 1; };\n",
  );
  assert.equal(run(script, join(dir, 'cache'), [], 5_000, 'SIGHUP').cache, 'no (none yet)');
  assert.equal(run(script, join(dir, 'cache'), [], 5_000, 'SIGHUP').cache, 'full');
});

test('a stream command tunes the collector before its script compiles, so its full cache is used by the next run', (t) => {
  const dir = tempDir(t, 'traverse-cc-');
  const script = join(dir, 'proxy.cjs');
  // As startPeer does once the command runs (cli/collector.ts).
  writeFileSync(script, "exports.answer = function () { require('node:v8').setFlagsFromString('--heap-growing-percent=400'); return 7; };\n");
  const cache = join(dir, 'cache');
  assert.equal(run(script, cache, [], 0, null, 'proxy').cache, 'no (none yet)');
  assert.equal(run(script, cache, [], CACHE_FULL_AFTER_MS + 300, null, 'proxy').cache, 'seed');
  assert.deepEqual(run(script, cache, [], 0, null, 'proxy'), { out: '7', cache: 'full' });
});

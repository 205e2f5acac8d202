// Runs the bundled CLI (dist/bundle/<command>.cjs, a CommonJS script per command:
// scripts/bundle-cli.mjs) with a V8 code cache, so a start does not parse and compile the megabyte of JavaScript a command
// loads. Node 20 has no module.enableCompileCache; vm.Script takes `cachedData` and produces it.
// Measured on loopback: `traverse proxy` reached "modules loaded" at ~140 ms from the split ESM
// bundle, ~105 ms from this script with its cache (~185 ms without one: the whole script is parsed).
//
// One cache file per script (dist/code-cache/<command>.bin). A cache is made twice at most per build: a "seed" when none is valid (at build time,
// from `traverse <command> --help`: the modules' top level), then once a "full" one, from the
// first real run that got going (see writeLater), covering the functions that run while a
// command starts up (connecting, the first stream). Later runs only read it.
//
// A cache is never trusted blindly: its header names the script it belongs to (size and CRC-32),
// the Node version, platform and architecture, and a CRC-32 of its payload; a cache that does not
// match, is truncated or corrupt, or that V8 rejects (another V8, other flags) is ignored and
// replaced. No failure to read or write a cache fails the command: it then runs without one.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';
import { crc32 } from 'node:zlib';
import { STREAM_COMMANDS, tuneCollectorForStreams } from './collector.js';
import { commandName } from './command-name.js';
// Set by startedUp() through STARTED_UP: the command is past its start-up.
import { STARTED_UP, trace } from '../log/trace.js';

const CACHE_MAGIC = 'TRVCODE1';
/** How long a run waits before it writes a full cache (the start-up is over by then). */
export const CACHE_FULL_AFTER_MS = 1_500;

export type CacheKind = 'seed' | 'full';

/** What a cache belongs to: the exact script (by content) and the runtime that compiled it. */
export interface CacheIdentity {
  readonly scriptSize: number;
  /** CRC-32 of the script's bytes (0.2 ms for the proxy's 0.8 MB): a rebuilt or edited script never meets an old cache. */
  readonly scriptCrc: number;
  /** process.version, platform and arch, e.g. "v20.20.2 linux x64". */
  readonly runtime: string;
}

const HEADER_FIXED = 8 + 1 + 4 + 4 + 8 + 4 + 2; // magic, kind, payload crc, payload length, script size, script crc, runtime length

export function runtimeId(): string {
  return `${process.version} ${process.platform} ${process.arch}`;
}

function identityOf(script: Buffer): CacheIdentity {
  return { scriptSize: script.length, scriptCrc: crc32(script), runtime: runtimeId() };
}

/** A cache file: the header (see decodeCache) and V8's data. */
export function encodeCache(kind: CacheKind, id: CacheIdentity, payload: Buffer): Buffer {
  const runtime = Buffer.from(id.runtime, 'utf8');
  const header = Buffer.alloc(HEADER_FIXED + runtime.length);
  let o = header.write(CACHE_MAGIC, 0, 'latin1');
  o = header.writeUInt8(kind === 'full' ? 2 : 1, o);
  o = header.writeUInt32BE(crc32(payload), o);
  o = header.writeUInt32BE(payload.length, o);
  o = header.writeDoubleBE(id.scriptSize, o);
  o = header.writeUInt32BE(id.scriptCrc, o);
  o = header.writeUInt16BE(runtime.length, o);
  runtime.copy(header, o);
  return Buffer.concat([header, payload]);
}

/** V8's data from a cache file, if the file is whole and belongs to `expected`; else why not. */
export function decodeCache(file: Buffer, expected: CacheIdentity): { kind: CacheKind; payload: Buffer } | { problem: string } {
  if (file.length < HEADER_FIXED || file.toString('latin1', 0, 8) !== CACHE_MAGIC) return { problem: 'not a code cache' };
  const kindByte = file.readUInt8(8);
  const crc = file.readUInt32BE(9);
  const length = file.readUInt32BE(13);
  const size = file.readDoubleBE(17);
  const scriptCrc = file.readUInt32BE(25);
  const runtimeLength = file.readUInt16BE(29);
  const start = HEADER_FIXED + runtimeLength;
  if (kindByte !== 1 && kindByte !== 2) return { problem: 'unknown kind' };
  if (file.length !== start + length) return { problem: 'truncated' };
  if (file.toString('utf8', HEADER_FIXED, start) !== expected.runtime) return { problem: 'made by another Node' };
  if (size !== expected.scriptSize || scriptCrc !== expected.scriptCrc) return { problem: 'made for another build' };
  const payload = file.subarray(start);
  if (crc32(payload) !== crc) return { problem: 'corrupt' };
  return { kind: kindByte === 2 ? 'full' : 'seed', payload };
}

/** Writes a file whole or not at all: concurrent runs (ssh starts several proxies) never see half of one. */
function writeAtomically(file: string, data: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // 'wx': a name someone else made (a planted symlink) fails the write instead of being followed.
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
  }
}

/** Which script a command line runs (dist/bundle/<name>.cjs), with the cache of that name. */
export function chooseScript(argv: readonly string[], bundleDir: string): string {
  const command = commandName(argv);
  // The listing's script for no command, and for words that are none (it says so, as the full CLI would).
  return command !== undefined && /^[a-z][a-z-]{0,30}$/.test(command) && command !== 'list' && existsSync(join(bundleDir, `${command}.cjs`)) ? command : 'list';
}

let running = false;

/**
 * When to write the cache: with none valid, a seed at the exit of a command that never got going
 * (--help); a full one once a command is running: CACHE_FULL_AFTER_MS in (an agent, a forward), or
 * when it ends, by its exit or by the SIGHUP that ssh ends its ProxyCommand with (a proxy's whole
 * life is often shorter than that). Never while it starts up: writing takes a few ms of CPU.
 */
function writeLater(want: CacheKind, write: () => void): void {
  let done = false;
  const once = (): void => {
    if (done || (want === 'full' && !running)) return;
    done = true;
    try {
      write();
    } catch {
      // A read-only installation: every run compiles, as without a cache.
    }
  };
  (globalThis as Record<symbol, unknown>)[STARTED_UP] = () => {
    running = true;
  };
  process.once('exit', once);
  const onHangUp = (): void => {
    once();
    // Listening took SIGHUP's default away: with nobody else listening (the server reloads its
    // certificate on it), end as it would have ended.
    if (process.listenerCount('SIGHUP') === 0) process.kill(process.pid, 'SIGHUP');
  };
  process.once('SIGHUP', onHangUp);
  setTimeout(() => {
    running = true;
    once();
  }, CACHE_FULL_AFTER_MS).unref();
}

/**
 * Compiles and runs a CommonJS script with the code cache in `cacheDir/<name>.bin`, and returns
 * its exports. The cache is used if valid, and (re)made as described at the top of this file.
 */
export function runWithCodeCache(scriptFile: string, cacheDir: string, name: string): unknown {
  const bytes = readFileSync(scriptFile);
  const id = identityOf(bytes);
  // All ASCII (scripts/bundle-cli.mjs checks): Latin-1 is the same text, without UTF-8 decoding.
  const source = bytes.toString('latin1');
  const cacheFile = join(cacheDir, `${name}.bin`);
  let cached: { kind: CacheKind; payload: Buffer } | null = null;
  let problem = 'none';
  try {
    const decoded = decodeCache(readFileSync(cacheFile), id);
    if ('problem' in decoded) problem = decoded.problem;
    else cached = decoded;
  } catch {
    problem = 'none yet';
  }
  // Before compiling: the flags a cache is made under are the flags it is used under.
  if (STREAM_COMMANDS.has(name)) tuneCollectorForStreams();
  // The wrapper Node itself puts around a CommonJS module: the script is one.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: scriptFile,
    ...(cached ? { cachedData: cached.payload } : {}),
    // A dynamic import() in the script resolves as in any module of the application.
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const rejected = cached !== null && script.cachedDataRejected === true;
  trace(`code cache ${name}: ${cached ? (rejected ? `${cached.kind}, rejected by V8` : cached.kind) : `no (${problem})`}`);
  const want: CacheKind | null = !cached || rejected ? 'seed' : cached.kind === 'seed' ? 'full' : null;
  if (want) writeLater(want, () => writeAtomically(cacheFile, encodeCache(running ? 'full' : 'seed', id, script.createCachedData())));
  const module = { exports: {} as unknown };
  const fn = script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: { exports: unknown }, f: string, d: string) => void;
  fn.call(module.exports, module.exports, createRequire(scriptFile), module, scriptFile, dirname(scriptFile));
  return module.exports;
}

// Traverse's own processes in a lab: the coordination server on the internet host, agents and
// `traverse ping` behind NATs. Tokens are made with the real `traverse token` command.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';
import { COORD_HOST } from './topologies.js';
import { BIN, runCli } from '../test/helpers/cli.js';

export interface LabCoordinator {
  readonly url: string;
  /** Its URL over IPv6, when the lab's internet has IPv6 (the server then listens on [::]). */
  readonly url6: string | null;
  readonly dataDir: string;
  readonly process: LabProcess;
}

export const COORD_PORT = 8080;

/**
 * What a child printed on stdout that no waitForLine has consumed yet. Kept from the first call on,
 * so a line that arrives in the same chunk as the one a previous call matched (a slow reader gets
 * both at once) is still there for the next call.
 */
interface Unread {
  text: string;
  /** How many characters were taken off the front of `text` so far (consumed or over the bound). */
  base: number;
}
const UNREAD_BOUND = 1 << 20;
const unreadByChild = new WeakMap<LabProcess, Unread>();

function unreadOf(child: LabProcess): Unread {
  let u = unreadByChild.get(child);
  if (!u) {
    const fresh: Unread = { text: '', base: 0 };
    child.stdout?.on('data', (d: Buffer) => {
      fresh.text += d.toString();
      // Over the bound, the oldest whole lines go (never half a line, which could match alone).
      if (fresh.text.length > UNREAD_BOUND) {
        const cut = fresh.text.indexOf('\n', fresh.text.length - UNREAD_BOUND) + 1;
        fresh.text = fresh.text.slice(cut);
        fresh.base += cut;
      }
    });
    unreadByChild.set(child, fresh);
    u = fresh;
  }
  return u;
}

/**
 * Waits until the child prints a whole line matching `re` on stdout (one printed since the last
 * line a call matched); rejects if it exits first.
 */
export function waitForLine(child: LabProcess, re: RegExp, timeoutMs = 10_000, what = 'process'): Promise<string> {
  const unread = unreadOf(child);
  return new Promise((resolve, reject) => {
    let err = '';
    /** Where this call's look at the output stopped (counted from its start): each chunk is looked at once. */
    let scanned = unread.base;
    /** Consumes the unread text up to and including the first whole line that matches. */
    const check = (): void => {
      let from = Math.max(0, scanned - unread.base);
      for (let end = unread.text.indexOf('\n', from); end !== -1; end = unread.text.indexOf('\n', from)) {
        const line = unread.text.slice(from, end);
        from = end + 1;
        if (re.test(line)) {
          unread.text = unread.text.slice(from);
          unread.base += from;
          return finish(null, line);
        }
      }
      scanned = unread.base + from;
    };
    // Registered after the recorder's own listener, so it sees each chunk already appended.
    const onData = (): void => check();
    const onErr = (d: Buffer): void => {
      if (err.length < 10_000) err += d.toString();
    };
    const onExit = (code: number | null): void => finish(new Error(`${what} exited (${code}) before printing ${re}:\n${unread.text}\n${err}`));
    const timer = setTimeout(() => finish(new Error(`${what} did not print ${re} within ${timeoutMs} ms:\n${unread.text}\n${err}`)), timeoutMs);
    let settled = false;
    function finish(e: Error | null, line?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve(line!);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
    check();
  });
}

/** Creates a token with `traverse token create` and returns it (the last line of stdout). */
export async function createToken(dataDir: string, args: string[]): Promise<string> {
  const r = await runCli(['token', 'create', '--data', dataDir, ...args]);
  if (r.code !== 0) throw new Error(`token create ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

export async function startCoordinator(lab: Lab, extraArgs: string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'traverse-lab-coord-'))): Promise<LabCoordinator> {
  const address = lab.node(COORD_HOST).address;
  const address6 = lab.node(COORD_HOST).addresses6[0];
  // With IPv6 in the lab, one dual-stack listener serves both families.
  const listen = address6 ? `[::]:${COORD_PORT}` : `${address}:${COORD_PORT}`;
  const child = lab.spawn(COORD_HOST, process.execPath, [
    BIN, 'server', '--listen', listen, '--data', dataDir, '--stun-listen', 'disable', '--ping-interval', '2', ...extraArgs,
  ]);
  await waitForLine(child, /traverse server listening/, 10_000, 'traverse server');
  return { url: `http://${address}:${COORD_PORT}`, url6: address6 ? `http://[${address6}]:${COORD_PORT}` : null, dataDir, process: child };
}

/** The coordinator URL a lab host can reach: over IPv6 from an IPv6-only host, else over IPv4. */
export function coordinatorUrlFor(lab: Lab, host: string, coord: LabCoordinator): string {
  return lab.node(host).addresses.length === 0 && coord.url6 ? coord.url6 : coord.url;
}

export function peerEnv(stateDir: string): NodeJS.ProcessEnv {
  // Port mapping on: inside the lab the default gateway is a lab router (the test runner turns it
  // off for everything else, so that no test asks the machine's real router).
  return { ...process.env, TRAVERSE_STATE_DIR: stateDir, TRAVERSE_LOG_LEVEL: process.env.TRAVERSE_LAB_LOG_LEVEL ?? 'warn', TRAVERSE_PORT_MAPPING: '1' };
}

export async function startAgent(lab: Lab, host: string, url: string, token: string, extraArgs: string[] = []): Promise<LabProcess> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-lab-agent-'));
  const child = lab.spawn(host, process.execPath, [BIN, 'agent', '--server', url, '--token', token, ...extraArgs], { env: peerEnv(state) });
  await waitForLine(child, /^agent ".*" connected/, 15_000, `agent in ${host}`);
  return child;
}

/** Starts `traverse ping AGENT --json ...` as a long-running process (killed on teardown). */
export function spawnPing(lab: Lab, host: string, url: string, token: string, agent: string, extraArgs: string[] = []): LabProcess {
  const state = mkdtempSync(join(tmpdir(), 'traverse-lab-client-'));
  return lab.spawn(host, process.execPath, [BIN, 'ping', agent, '--server', url, '--token', token, '--json', ...extraArgs], { env: peerEnv(state) });
}

export interface PingOutcome {
  readonly pongs: { seq: number; path: 'direct' | 'relay'; endpoint: string | null; latencyMs: number }[];
  readonly summary: { path: 'direct' | 'relay'; endpoint: string | null; transport: 'udp' | 'tcp' | null; timeToDirectMs: number | null; publishedMs: number; reason: string | null };
  readonly code: number | null;
  readonly stderr: string;
}

export async function runPing(lab: Lab, host: string, url: string, token: string, agent: string, extraArgs: string[] = []): Promise<PingOutcome> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-lab-client-'));
  const r = await lab.exec(host, process.execPath, [BIN, 'ping', agent, '--server', url, '--token', token, '--json', ...extraArgs], {
    timeoutMs: 60_000,
    env: peerEnv(state),
  });
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const summary = lines.find((l) => l.summary === true) as PingOutcome['summary'] | undefined;
  if (!summary) throw new Error(`ping in ${host} printed no summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return { pongs: lines.filter((l) => l.summary !== true) as unknown as PingOutcome['pongs'], summary, code: r.code, stderr: r.stderr };
}

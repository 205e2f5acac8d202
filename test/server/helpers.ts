// Shared by the coordinator tests: a server on 127.0.0.1 with an ephemeral port and a temp
// data folder, tokens made straight in its store, and a raw WebSocket peer that records
// everything the server sends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NodeKey } from '../../src/identity/node-key.js';
import { keyProof, type KeyChallenge } from '../../src/coordination/key-proof.js';
import WebSocket from 'ws';
import { decodeRelayFrame, type RelayFrame } from '../../src/coordination/relay-frame.js';
import { startCoordinatorServer, type CoordinatorServer, type CoordinatorServerOptions } from '../../src/server/server.js';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import type { IdentityKind } from '../../src/server/store/store.js';
import { generateToken, hashToken } from '../../src/server/tokens.js';
import { PROTOCOL_PATH, ROLE_HEADER, type Node, type ServerMessage } from '../../src/coordination/protocol.js';

/** The kind of each token made by startTestServer's token(), so a RawPeer joins in its role. */
const roleOfToken = new Map<string, 'agent' | 'client'>();

export interface TestServer {
  readonly dir: string;
  store: SqliteStore;
  server: CoordinatorServer;
  readonly wsUrl: string;
  token(kind: IdentityKind, name: string, opts?: { allow?: string[]; expiresAt?: number }): Promise<string>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export type ServerOverrides = Partial<Omit<CoordinatorServerOptions, 'store'>>;

export async function startTestServer(overrides: ServerOverrides = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-coord-'));
  const options = (store: SqliteStore, port: number): CoordinatorServerOptions => ({
    listen: { host: '127.0.0.1', port },
    store,
    stun: ['127.0.0.1:3478'],
    pingIntervalMs: 5000,
    policyPollMs: 100,
    ...overrides,
  });
  let store = SqliteStore.open(dir);
  let server = await startCoordinatorServer(options(store, 0));
  const t: TestServer = {
    dir,
    store,
    server,
    wsUrl: `ws://127.0.0.1:${server.port}${PROTOCOL_PATH}`,
    async token(kind, name, opts = {}) {
      const now = Date.now();
      const identity = await t.store.ensureIdentity(kind, name, now);
      if (opts.allow) await t.store.allow(name, opts.allow, now);
      const secret = generateToken();
      await t.store.createToken(identity.id, hashToken(secret), now, opts.expiresAt ?? null);
      if (kind !== 'admin') roleOfToken.set(secret, kind);
      return secret;
    },
    async restart() {
      const port = server.port;
      await server.close();
      await store.close();
      store = SqliteStore.open(dir);
      server = await startCoordinatorServer(options(store, port));
      t.store = store;
      t.server = server;
    },
    async close() {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Node keys made by randomKey(), so peers in tests can prove they hold them. */
const nodeKeys = new Map<string, NodeKey>();

/** A fresh node key (its public half, hex); the private half stays here for key proofs. */
export function randomKey(): string {
  const key = NodeKey.generate();
  nodeKeys.set(key.publicHex, key);
  return key.publicHex;
}

/** Answers a server's key challenge for a key made by randomKey() (a stranger's key: a wrong proof). */
export function proverFor(keyHex: string): (c: KeyChallenge) => string {
  return (c) => {
    const key = nodeKeys.get(keyHex);
    return key ? keyProof(key.sharedSecret(Buffer.from(c.key, 'hex')), c.nonce, keyHex) : randomBytes(32).toString('hex');
  };
}

export function sampleNode(key: string, endpoints = ['192.0.2.10:41641']): Node {
  return { key, endpoints, preferredRelay: 'default', updatedAt: Date.now() };
}

function isNodeMessage(m: unknown): m is { type: 'node'; node: { key: string }; proof?: string } {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'node' && typeof (m as { node?: { key?: unknown } }).node?.key === 'string';
}

/** A raw protocol peer: every message kept in order, with waits on them. */
export class RawPeer {
  readonly messages: ServerMessage[] = [];
  readonly binary: Buffer[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binary.push(data);
      else this.messages.push(JSON.parse(data.toString()) as ServerMessage);
      this.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  /** Joins as `role`: by default the kind of a token made by startTestServer's token(), else client. */
  static async connect(url: string, token: string, role?: 'agent' | 'client', headers: Record<string, string> = {}, options: { ca?: string[] } = {}): Promise<RawPeer> {
    const peer = await RawPeer.open(url, token, role, headers, options);
    await peer.waitFor((m) => m.type === 'config');
    return peer;
  }

  /** Opens the WebSocket without waiting for the config (for connections the server refuses). */
  static async open(url: string, token: string, role?: 'agent' | 'client', extraHeaders: Record<string, string> = {}, options: { ca?: string[] } = {}): Promise<RawPeer> {
    const headers = { ...extraHeaders, authorization: `Bearer ${token}`, [ROLE_HEADER]: role ?? roleOfToken.get(token) ?? 'client' };
    const ws = new WebSocket(url, { ...options, headers });
    const peer = new RawPeer(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return peer;
  }

  /** Sends a message; a `node` message without a proof gets one for the key, as a real node's would. */
  send(msg: unknown): void {
    if (typeof msg === 'string') return this.ws.send(msg);
    const config = this.messages.find((m) => m.type === 'config');
    if (isNodeMessage(msg) && msg.proof === undefined && config?.type === 'config') {
      return this.ws.send(JSON.stringify({ ...msg, proof: proverFor(msg.node.key)(config.challenge) }));
    }
    this.ws.send(JSON.stringify(msg));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  async waitFor<T extends ServerMessage>(pred: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T>;
  async waitFor(pred: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  async waitFor(pred: (m: ServerMessage) => boolean, timeoutMs = 3000): Promise<ServerMessage> {
    return until(() => this.messages.find(pred), timeoutMs, (f) => this.waiters.push(f), 'a matching message');
  }

  async waitClosed(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    return until(() => this.closed ?? undefined, timeoutMs, (f) => this.waiters.push(f), 'the connection to close');
  }

  async waitBinary(count: number, timeoutMs = 3000): Promise<Buffer[]> {
    return until(() => (this.binary.length >= count ? this.binary : undefined), timeoutMs, (f) => this.waiters.push(f), `${count} datagrams`);
  }
}

async function until<T>(get: () => T | undefined, timeoutMs: number, subscribe: (f: () => void) => void, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(left, 50));
      subscribe(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Polls a condition (sync or async) every 20 ms until it is truthy. */
export async function eventually<T>(
  get: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 3000,
  what = 'a condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function httpGet(url: string, token?: string): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics)
  }
  return { status: res.status, body, text };
}

/** Tries an upgrade and returns the HTTP status (101 on success). */
export async function upgradeStatus(url: string, token?: string, role?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const asRole = role ?? (token ? roleOfToken.get(token) : undefined) ?? 'client';
    headers[ROLE_HEADER] = asRole;
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** Decodes a relay frame that must be well formed. */
export function relayFrame(frame: Buffer): RelayFrame {
  const decoded = decodeRelayFrame(frame);
  if (typeof decoded === 'string') throw new Error(`not a relay frame: ${decoded}`);
  return decoded;
}

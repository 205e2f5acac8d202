// The dashboard under load, measured in a real browser (Debian's chromium via playwright-core):
// 1,000 nodes (500 agents, 500 clients) and 500 tunnels, changing at 100 updates/s.
//
//   time to first full render   navigation start -> the Nodes view drawn with the counts of all
//                               1,000 and its first page of 200 identities (lists grow on demand:
//                               web/src/views/more.ts), through assets, session, the SSE snapshot,
//                               parsing and rendering, in the page's own clock; the named baseline
//                               is the same page over an empty network (the cost of the page itself)
//   input latency               keystrokes into the Nodes view's filter (each re-filters the
//                               1,000 identities): from the event's timestamp to the frame after
//                               its handler, p50/p95/max; baseline: the same with no updates
//   long tasks, frames          the page's main thread while the updates stream (Long Tasks API,
//                               requestAnimationFrame count)
//
// The server side is the real dashboard (sessions, feed, SSE, assets) over a synthetic source, so
// the figures are the page's and the feed's, not those of a thousand real nodes' handshakes.
// The feed runs at its production interval (500 ms) and at 50 ms (BENCH_FEED_MS to change).
//
//   npm run bench:dashboard
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { SqliteStore } from '../src/server/store/sqlite.js';
import { Hub } from '../src/server/hub.js';
import { generateToken, hashToken } from '../src/server/tokens.js';
import { silentLogger } from '../src/log/logger.js';
import { createDashboard, type Dashboard } from '../src/server/dashboard/dashboard.js';
import type { DashboardSource, TunnelSourceRow } from '../src/server/dashboard/feed.js';
import type { IdentityRow, NodeRow } from '../src/server/dashboard/wire.js';
import { browserUnavailable, launchBrowser } from '../test/helpers/browser.js';

/** The first page of a long list (web/src/views/more.ts). */
const PAGE = 200;

const AGENTS = 500;
const CLIENTS = 500;
const UPDATES_PER_SEC = Number(process.env.BENCH_UPDATES ?? 100);
const FEED_INTERVALS = (process.env.BENCH_FEED_MS ?? '500,50').split(',').map(Number);
const RENDER_RUNS = 5;
const KEYSTROKES = 40;

/** A network of agents and clients, one tunnel per client, whose rows change on demand. */
class World {
  nodes: NodeRow[] = [];
  tunnels: TunnelSourceRow[] = [];
  identities: IdentityRow[] = [];
  updates = 0;
  private seed = 1;

  constructor(empty: boolean) {
    if (empty) return;
    const t0 = Date.now() - 3600_000;
    for (let i = 0; i < AGENTS + CLIENTS; i++) {
      const agent = i < AGENTS;
      const name = agent ? `ws-${String(i).padStart(4, '0')}` : `dev-${String(i - AGENTS).padStart(4, '0')}`;
      const pub = `198.51.${(i >> 8) & 255}.${i & 255}`;
      this.nodes.push({
        id: (i + 1).toString(16).padStart(64, '0'),
        kind: agent ? 'agent' : 'client',
        name,
        key: (i + 1).toString(16).padStart(64, '0'),
        connectedAt: t0 + i * 1000,
        remote: `${pub}:${40000 + i}`,
        endpoints: [`10.${i >> 8}.${i & 255}.2:41641`, `${pub}:41641`],
        netcheck: { udp: true, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hairpinning: i % 7 !== 0, globalV4: `${pub}:41641`, stunUnanswered: [] },
        replica: null,
      });
      this.identities.push({
        id: `${agent ? 'agent' : 'client'}:${name}`,
        kind: agent ? 'agent' : 'client',
        name,
        onlineNodes: 1,
        createdAt: t0,
        lastConnectedAt: t0 + i * 1000,
        lastDisconnectedAt: null,
        allow: agent ? [] : [`ws-${String(i - AGENTS).padStart(4, '0')}`],
        tokens: [{ id: i + 1, hint: (i + 1).toString(16).padStart(8, '0'), createdAt: t0, expiresAt: null, revokedAt: null }],
      });
    }
    for (let c = 0; c < CLIENTS; c++) {
      const client = this.nodes[AGENTS + c]!;
      const agent = this.nodes[c]!;
      this.tunnels.push({
        id: `${client.key}>${agent.name}`,
        client: client.name,
        clientKey: client.key,
        agent: agent.name,
        agentOnline: true,
        path: c % 5 === 0 ? 'relay' : 'direct',
        endpoint: c % 5 === 0 ? null : agent.endpoints[1]!,
        transport: c % 5 === 0 ? null : 'udp',
        rttMs: 10 + (c % 40),
        since: t0 + c * 1000,
        streams: c % 5 === 0 ? { tcp: 0, udx: 1 } : { tcp: c % 3, udx: 1 },
        reason: c % 5 === 0 ? `both NATs are hard (endpoint-dependent mapping): neither side can predict the port the other will use` : null,
      });
    }
  }

  private random(n: number): number {
    this.seed = (this.seed * 1103515245 + 12345) & 0x7fffffff;
    return this.seed % n;
  }

  /** One change: a tunnel's round trip or path, or a node's endpoints; rows are replaced, not edited. */
  update(): void {
    if (this.nodes.length === 0) return;
    this.updates++;
    const r = this.random(10);
    if (r < 5) {
      const i = this.random(this.tunnels.length);
      const t = this.tunnels[i]!;
      this.tunnels[i] = { ...t, rttMs: 5 + this.random(80) + this.random(100) / 100 };
    } else if (r < 7) {
      const i = this.random(this.tunnels.length);
      const t = this.tunnels[i]!;
      const direct = t.path !== 'direct';
      this.tunnels[i] = { ...t, path: direct ? 'direct' : 'relay', endpoint: direct ? `203.0.113.${this.random(250)}:41641` : null, reason: direct ? null : 'no direct path answered: a firewall between the peers may drop UDP' };
    } else {
      const i = this.random(this.nodes.length);
      const n = this.nodes[i]!;
      this.nodes[i] = { ...n, endpoints: [n.endpoints[0]!, `198.51.100.${this.random(250)}:${1024 + this.random(60000)}`] };
    }
  }

  source(): DashboardSource {
    return { identities: async () => this.identities, nodes: () => this.nodes, tunnels: () => this.tunnels };
  }
}

interface Running {
  readonly url: string;
  readonly world: World;
  readonly close: () => Promise<void>;
}

async function serve(world: World, store: SqliteStore, feedIntervalMs: number): Promise<Running> {
  const dashboard: Dashboard = createDashboard({
    hub: new Hub(),
    store,
    logger: silentLogger,
    source: world.source(),
    feedIntervalMs,
    authenticateToken: async (_req, token) => (await store.authenticate(hashToken(token), Date.now())) ?? { refused: 'unauthorized', message: 'unknown token' },
  });
  const server: Server = createServer((req, res) => void dashboard.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    world,
    close: async () => {
      dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function signedInPage(browser: Browser, url: string, token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.fill('#token', token);
  await page.click('form button[type=submit]');
  await page.waitForSelector('.app[data-connected=yes]');
  return { context, page };
}

/** Navigation start -> `count` elements matching `selector` drawn, in the page's clock (ms). */
async function timeToRender(page: Page, url: string, selector: string, count: number): Promise<number> {
  await page.goto('about:blank'); // a new document each time (a changed #fragment alone is no load)
  await page.goto(url);
  return page.evaluate(`(async () => {
    const ready = () => document.querySelector('.app[data-connected=yes] main .summary') && document.querySelectorAll(${JSON.stringify(selector)}).length >= ${count};
    while (!ready()) await new Promise((r) => requestAnimationFrame(r));
    return performance.now();
  })()`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

interface Responsiveness {
  readonly latency: number[];
  readonly longTasks: number;
  readonly longTaskMs: number;
  readonly maxLongTaskMs: number;
  readonly fps: number;
  readonly updatesPerSec: number;
}

/** Keystrokes into the Nodes filter while the world changes at `rate` updates/s. */
async function responsiveness(page: Page, world: World, rate: number): Promise<Responsiveness> {
  await page.evaluate(`(() => {
    window.__m = { latency: [], long: [], frames: 0, on: true };
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__m.long.push(e.duration); }).observe({ type: 'longtask' });
    const input = document.querySelector('input.filter');
    input.addEventListener('input', (e) => {
      const t = e.timeStamp;
      requestAnimationFrame(() => setTimeout(() => window.__m.latency.push(performance.now() - t), 0));
    });
    const frame = () => { if (!window.__m.on) return; window.__m.frames++; requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
  })()`);
  const updatesBefore = world.updates;
  const t0 = performance.now();
  // `rate` updates/s, applied every 10 ms as many as are due by the clock (timers on a loaded
  // machine fire late: the next tick catches up).
  let applied = 0;
  const timer = setInterval(() => {
    const due = Math.floor((rate * (performance.now() - t0)) / 1000);
    for (; applied < due; applied++) world.update();
  }, 10);
  await page.click('input.filter');
  for (let i = 0; i < KEYSTROKES; i++) {
    await page.keyboard.press(i % 2 === 0 ? '1' : 'Backspace');
    await new Promise((r) => setTimeout(r, 120));
  }
  clearInterval(timer);
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300));
  const m = (await page.evaluate(`(() => { window.__m.on = false; return window.__m; })()`)) as { latency: number[]; long: number[]; frames: number };
  return {
    latency: m.latency,
    longTasks: m.long.length,
    longTaskMs: m.long.reduce((a, b) => a + b, 0),
    maxLongTaskMs: m.long.length ? Math.max(...m.long) : 0,
    fps: m.frames / seconds,
    updatesPerSec: (world.updates - updatesBefore) / seconds,
  };
}

async function main(): Promise<void> {
  const missing = browserUnavailable();
  if (missing) {
    console.log(`dashboard benchmark skipped: ${missing}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'traverse-bench-dash-'));
  const store = SqliteStore.open(dir);
  const admin = generateToken();
  const ops = await store.ensureIdentity('admin', 'ops', Date.now());
  await store.createToken(ops.id, hashToken(admin), Date.now(), null);
  const browser = await launchBrowser();
  try {
    for (const feedMs of FEED_INTERVALS) {
      const empty = await serve(new World(true), store, feedMs);
      const full = await serve(new World(false), store, feedMs);
      const e = await signedInPage(browser, empty.url, admin);
      const f = await signedInPage(browser, full.url, admin);
      const emptyRender: number[] = [];
      const fullRender: number[] = [];
      const tunnelsRender: number[] = [];
      for (let i = 0; i < RENDER_RUNS; i++) {
        emptyRender.push(await timeToRender(e.page, `${empty.url}/#nodes`, 'tbody.identity', 0));
        fullRender.push(await timeToRender(f.page, `${full.url}/#nodes`, 'tbody.identity', PAGE));
        tunnelsRender.push(await timeToRender(f.page, `${full.url}/#tunnels`, 'tr[data-tunnel]', PAGE));
      }
      await timeToRender(f.page, `${full.url}/#nodes`, 'tbody.identity', PAGE);
      await responsiveness(f.page, full.world, 0); // warm-up: the first keystrokes compile the code paths
      await timeToRender(f.page, `${full.url}/#nodes`, 'tbody.identity', PAGE);
      const quiet = await responsiveness(f.page, full.world, 0);
      await timeToRender(f.page, `${full.url}/#nodes`, 'tbody.identity', PAGE);
      const busy = await responsiveness(f.page, full.world, UPDATES_PER_SEC);
      const eMed = median(emptyRender);
      const fMed = median(fullRender);
      const tMed = median(tunnelsRender);
      const q95 = pct(quiet.latency, 0.95);
      const b95 = pct(busy.latency, 0.95);
      console.log(`\nfeed interval ${feedMs} ms; ${AGENTS + CLIENTS} nodes, ${CLIENTS} tunnels; median of ${RENDER_RUNS} loads`);
      console.log(`  first full render, Nodes view    ${fMed.toFixed(0)} ms (empty network, the baseline: ${eMed.toFixed(0)} ms; ratio ${(fMed / eMed).toFixed(2)}x)  ${fMed < 1000 ? 'under 1 s' : 'OVER 1 s'}`);
      console.log(`  first full render, Tunnels view  ${tMed.toFixed(0)} ms (ratio to the empty page ${(tMed / eMed).toFixed(2)}x)`);
      console.log(`  input latency, no updates        p50 ${pct(quiet.latency, 0.5).toFixed(1)} ms, p95 ${q95.toFixed(1)} ms, max ${Math.max(...quiet.latency).toFixed(1)} ms (${quiet.latency.length} keystrokes)`);
      console.log(
        `  input latency, ${busy.updatesPerSec.toFixed(0)} updates/s     p50 ${pct(busy.latency, 0.5).toFixed(1)} ms, p95 ${b95.toFixed(1)} ms, max ${Math.max(...busy.latency).toFixed(1)} ms; p95 ratio to no updates ${(b95 / q95).toFixed(2)}x  ${b95 < 100 ? 'responsive (p95 < 100 ms)' : 'SLOW (p95 >= 100 ms)'}`,
      );
      console.log(
        `  long tasks                       no updates: ${quiet.longTasks} (${quiet.longTaskMs.toFixed(0)} ms, max ${quiet.maxLongTaskMs.toFixed(0)} ms); ${busy.updatesPerSec.toFixed(0)} updates/s: ${busy.longTasks} (${busy.longTaskMs.toFixed(0)} ms, max ${busy.maxLongTaskMs.toFixed(0)} ms)`,
      );
      console.log(`  frames                           no updates ${quiet.fps.toFixed(0)}/s; ${busy.updatesPerSec.toFixed(0)} updates/s ${busy.fps.toFixed(0)}/s`);
      await e.context.close();
      await f.context.close();
      await empty.close();
      await full.close();
    }
  } finally {
    await browser.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

// The connectivity matrix as a benchmark: every cell of lab/matrix.ts, BENCH_RUNS runs each
// (a fresh lab per run, the same runCell as the lab test), and a table of what happened: how often
// the path went direct, how fast, and the pong latency on the path it ended on. In cells that went
// direct, a 1-second `traverse speedtest` then says what carried a stream: a TCP lane or UDX.
// Needs root.
// Writes bench/out/matrix.html with the same table.
//
//   npm run bench:matrix        (BENCH_RUNS, default 3; BENCH_CONCURRENCY, default 3)
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { labAvailability } from '../lab/availability.js';
import { createLab } from '../lab/topology.js';
import { MATRIX, runCell, type CellOutcome, type MatrixCell } from '../lab/matrix.js';
import { peerEnv } from '../lab/peers.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/helpers/cli.js';
import type { Lab } from '../lab/lab.js';
import type { SpeedtestResult } from '../src/node/speedtest.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 3);
const OUT_DIR = fileURLToPath(new URL('../../bench/out/', import.meta.url));

interface RunResult {
  readonly outcome: CellOutcome | null;
  readonly error: string | null;
  /** What carried a speedtest stream after the ping (direct cells only). */
  readonly carrier: string | null;
}

/** One short download speedtest from the client: its `carrier` (tcp or udx), or why it failed. */
async function probeCarrier(lab: Lab, cell: MatrixCell, coordUrl: string, clientToken: string): Promise<string> {
  const state = mkdtempSync(join(tmpdir(), 'traverse-bench-lane-'));
  const extra = cell.pingArgs?.includes('--disable-direct') ? ['--disable-direct'] : [];
  const r = await lab.exec(
    'client',
    process.execPath,
    [BIN, 'speedtest', 'dev-box', '--json', '--seconds', '1', '--direction', 'download', '--server', coordUrl, '--token', clientToken, ...extra],
    { timeoutMs: 30_000, env: peerEnv(state) },
  );
  if (r.code !== 0) return `error (${r.stderr.trim().split('\n')[0]})`;
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as SpeedtestResult;
  return res.path === 'direct' ? res.carrier : 'relay';
}

interface Row {
  readonly cell: MatrixCell;
  readonly runs: RunResult[];
}

const median = (xs: readonly number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function runOnce(cell: MatrixCell): Promise<RunResult> {
  const lab = await createLab(cell.topology());
  let carrier: string | null = null;
  try {
    const outcome = await runCell(cell, lab, undefined, async ({ coordUrl, clientToken }) => {
      if (cell.expect === 'direct') carrier = await probeCarrier(lab, cell, coordUrl, clientToken);
    });
    return { outcome, error: null, carrier };
  } catch (err) {
    return { outcome: null, error: (err as Error).message.split('\n')[0]!, carrier };
  } finally {
    await lab.teardown();
  }
}

/** Runs jobs with at most `n` at a time, keeping their order in the result. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

function summarizeRow(r: Row): { got: string; direct: number; ttd: number | null; latency: number | null; ok: boolean; errors: string[] } {
  const outcomes = r.runs.map((x) => x.outcome).filter((o): o is CellOutcome => o !== null);
  const direct = outcomes.filter((o) => o.summary.path === 'direct').length;
  const ttd = median(outcomes.map((o) => o.summary.timeToDirectMs).filter((x): x is number => x !== null));
  // Pong latency on the path each run ended on.
  const latency = median(outcomes.flatMap((o) => o.pongs.filter((p) => p.path === o.summary.path).map((p) => p.latencyMs)));
  const expectedCount = r.cell.expect === 'direct' ? RUNS : 0;
  const winnerOk = r.cell.winner === undefined || outcomes.every((o) => o.summary.path !== 'direct' || o.winner === r.cell.winner);
  return {
    got: `${direct}/${RUNS} direct`,
    direct,
    ttd,
    latency,
    ok: outcomes.length === RUNS && direct === expectedCount && winnerOk,
    errors: r.runs.map((x) => x.error).filter((e): e is string => e !== null),
  };
}

const HEAD = ['agent side', 'client side', 'expected', 'got (direct / runs)', 'winning candidate (runs)', 'direct over', 'median time to direct', 'median pong latency', 'stream carrier (runs)'];

/** "mapped 3/3", "reflexive 2/3, local 1/3", or "-" when no run went direct. */
function winners(r: Row): string {
  const seen = r.runs.map((x) => x.outcome?.winner).filter((w): w is NonNullable<typeof w> => w !== null && w !== undefined);
  if (seen.length === 0) return '-';
  const counts = new Map<string, number>();
  for (const w of seen) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts].map(([w, n]) => `${w} ${n}/${RUNS}`).join(', ') + (r.cell.winner ? ` (want ${r.cell.winner})` : '');
}

/** The IP family of the direct paths a cell's runs ended on: "IPv4 3/3", "IPv6 3/3", or "-". */
function families(r: Row): string {
  const fams = r.runs.flatMap((x) => (x.outcome?.summary.path === 'direct' && x.outcome.summary.endpoint ? [x.outcome.summary.endpoint.startsWith('[') ? 'IPv6' : 'IPv4'] : []));
  if (fams.length === 0) return '-';
  return ['IPv4', 'IPv6'].filter((f) => fams.includes(f)).map((f) => `${f} ${fams.filter((x) => x === f).length}/${RUNS}`).join(', ');
}

/** "tcp 3/3", "udx 2/3, tcp 1/3", or "-" for relay cells. */
function carriers(r: Row): string {
  const seen = r.runs.map((x) => x.carrier).filter((c): c is string => c !== null);
  if (seen.length === 0) return '-';
  const counts = new Map<string, number>();
  for (const c of seen) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].map(([c, n]) => `${c} ${n}/${RUNS}`).join(', ');
}

function cells(r: Row): string[] {
  const s = summarizeRow(r);
  return [
    r.cell.agentSide,
    r.cell.clientSide || '(same LAN)',
    r.cell.expect,
    `${s.got}${s.ok ? '' : '  !'}`,
    winners(r),
    families(r),
    s.ttd === null ? '-' : `${Math.round(s.ttd)} ms`,
    s.latency === null ? '-' : `${s.latency.toFixed(2)} ms`,
    carriers(r),
  ];
}

function textTable(rows: Row[]): string {
  const data = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...data.map((d) => d[i]!.length)));
  const line = (d: string[]): string => d.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(HEAD), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map((r) => line(cells(r)))].join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function html(rows: Row[], footer: string): string {
  const tr = (d: string[], tag: string): string => `<tr>${d.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Traverse connectivity matrix</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}tr.bad td{background:#fee}</style>
</head><body>
<h1>Traverse connectivity matrix</h1>
<p>${esc(`${RUNS} run(s) per cell, ${new Date().toISOString()}`)}</p>
<table>
${tr(HEAD, 'th')}
${rows.map((r) => tr(cells(r), 'td').replace('<tr>', summarizeRow(r).ok ? '<tr>' : '<tr class="bad">')).join('\n')}
</table>
<p>${esc(footer)}</p>
</body></html>
`;
}

async function main(): Promise<void> {
  const a = await labAvailability();
  if (!a.available) {
    console.log(`matrix benchmark skipped: ${a.reason}`);
    return;
  }
  const t0 = performance.now();
  // Run r of every cell before run r+1 of any: a cell's runs never share a loaded moment.
  const jobs = Array.from({ length: RUNS }, () => MATRIX.map((cell) => () => runOnce(cell))).flat();
  const results = await pool(jobs, CONCURRENCY);
  const rows: Row[] = MATRIX.map((cell, i) => ({ cell, runs: Array.from({ length: RUNS }, (_, r) => results[r * MATRIX.length + i]!) }));
  const directCells = rows.filter((r) => summarizeRow(r).direct === RUNS).length;
  const asExpected = rows.filter((r) => summarizeRow(r).ok).length;
  // Cells that went direct in every run, by the kind of candidate that won most often there.
  const byKind = new Map<string, number>();
  for (const r of rows.filter((x) => summarizeRow(x).direct === RUNS)) {
    const kinds = r.runs.map((x) => x.outcome?.winner ?? 'unknown');
    const top = [...new Set(kinds)].sort((a, b) => kinds.filter((k) => k === b).length - kinds.filter((k) => k === a).length)[0]!;
    byKind.set(top, (byKind.get(top) ?? 0) + 1);
  }
  const directOver6 = rows.filter((r) => summarizeRow(r).direct === RUNS && families(r).startsWith('IPv6')).length;
  const footer =
    `${directCells}/${rows.length} cells went direct in every run (${Math.round((100 * directCells) / rows.length)}%), ` +
    `by winning candidate: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}; ` +
    `${asExpected}/${rows.length} cells as expected; ` +
    `direct in every run over IPv4: ${directCells - directOver6}, over IPv6: ${directOver6}; ${Math.round((performance.now() - t0) / 1000)} s in all`;
  console.log(textTable(rows));
  console.log(footer);
  for (const r of rows) for (const e of summarizeRow(r).errors) console.log(`  ${r.cell.name}: error: ${e}`);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(`${OUT_DIR}matrix.html`, html(rows, footer));
  console.log(`wrote ${OUT_DIR}matrix.html`);
}

await main();

// The connectivity matrix as a picture: NAT of the agent (rows) x NAT of the client (columns),
// each cell coloured by the path its runs ended on, with the time to direct and, for relayed
// cells, the reason in plain words. Pure: a report in, SVG text out. Generic over cells: rows and
// columns are whatever labels the cells carry, in the order they first appear; two cells with the
// same pair of labels share the square side by side.
//
// Written by `npm run bench:matrix` (bench/out/matrix.html and matrix.json) and shown by the
// dashboard when the server is given `--matrix-report FILE`. Presentation attributes only (no
// <style>, no script): the SVG passes the dashboard's Content-Security-Policy and is inert.
import * as z from 'zod';

export const matrixCellResult = z.object({
  /** The cell's own name ("easy / hard (port prediction)"). */
  name: z.string().max(200),
  /** Row and column labels: what the agent and the client sit behind. */
  agent: z.string().max(200),
  client: z.string().max(200),
  expect: z.enum(['direct', 'relay']).nullable(),
  runs: z.number().int().nonnegative(),
  /** Runs that ended on a direct path, and runs that failed outright. */
  direct: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** Median over the runs that went direct; null when none did. */
  timeToDirectMs: z.number().nonnegative().nullable(),
  /** Why a relayed run stayed on the relay, as `traverse ping` said it. */
  reason: z.string().max(1000).nullable(),
});
export type MatrixCellResult = z.infer<typeof matrixCellResult>;

export const matrixReport = z.object({
  title: z.string().max(200),
  generatedAt: z.string().max(64),
  cells: z.array(matrixCellResult).max(1000),
  footer: z.string().max(1000).optional(),
});
export type MatrixReport = z.infer<typeof matrixReport>;

export type CellOutcome = 'direct' | 'relay' | 'mixed' | 'failed' | 'unexpected';

/** What a cell's runs came to: all direct, all relay, some of each, failures, or not what it expects. */
export function cellOutcome(c: MatrixCellResult): CellOutcome {
  if (c.runs === 0 || c.failed === c.runs) return 'failed';
  const ok = c.runs - c.failed;
  const outcome: CellOutcome = c.direct === ok ? 'direct' : c.direct === 0 ? 'relay' : 'mixed';
  if (c.failed > 0) return 'mixed';
  if (c.expect !== null && (outcome === 'direct' || outcome === 'relay') && outcome !== c.expect) return 'unexpected';
  return outcome;
}

export const OUTCOME_COLOURS: Record<CellOutcome, { fill: string; stroke: string; label: string }> = {
  direct: { fill: '#c8e6c9', stroke: '#2e7d32', label: 'direct' },
  relay: { fill: '#ffe0b2', stroke: '#e65100', label: 'relay' },
  mixed: { fill: '#fff59d', stroke: '#f9a825', label: 'mixed' },
  failed: { fill: '#ffcdd2', stroke: '#c62828', label: 'failed' },
  unexpected: { fill: '#e1bee7', stroke: '#6a1b9a', label: 'not as expected' },
};

const CELL_W = 200;
const CELL_H = 104;
const ROW_HEAD_W = 230;
const COL_HEAD_H = 78;
const LEGEND_H = 34;
const LINE = 13;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Greedy word wrap into at most `maxLines` lines of about `width` characters (ellipsis when cut). */
export function wrap(text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const w = word.length > width ? word.slice(0, width - 1) + '…' : word;
    if (line === '') line = w;
    else if (line.length + 1 + w.length <= width) line += ' ' + w;
    else {
      lines.push(line);
      line = w;
    }
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  kept[maxLines - 1] = kept[maxLines - 1]!.slice(0, Math.max(0, width - 1)) + '…';
  return kept;
}

function text(x: number, y: number, lines: readonly string[], attrs: string): string {
  return lines.map((l, i) => `<text x="${x}" y="${y + i * LINE}" ${attrs}>${escapeXml(l)}</text>`).join('');
}

function cellLines(c: MatrixCellResult, width: number): string[] {
  const chars = Math.max(8, Math.floor(width / 6.2));
  const o = cellOutcome(c);
  const head = `${OUTCOME_COLOURS[o].label}  ${c.direct}/${c.runs} direct${c.failed ? `, ${c.failed} failed` : ''}`;
  const lines = [head.length > chars ? `${c.direct}/${c.runs} direct` : head];
  if (c.timeToDirectMs !== null) lines.push(`time to direct ${Math.round(c.timeToDirectMs)} ms`);
  if (c.reason && c.direct < c.runs) lines.push(...wrap(c.reason, chars, 7 - lines.length - 1));
  return lines;
}

/** The SVG grid for a report. */
export function matrixSvg(report: MatrixReport): string {
  const rows = [...new Set(report.cells.map((c) => c.agent))];
  const cols = [...new Set(report.cells.map((c) => c.client))];
  const width = ROW_HEAD_W + cols.length * CELL_W + 1;
  const height = COL_HEAD_H + rows.length * CELL_H + LEGEND_H + 1;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<title>${escapeXml(report.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    text(8, 18, ['agent ↓  client →'], 'font-weight="bold" fill="#333"'),
  );
  cols.forEach((label, i) => {
    const x = ROW_HEAD_W + i * CELL_W;
    parts.push(text(x + 6, 18, wrap(label, 30, 4), 'font-weight="bold" fill="#333"'));
  });
  rows.forEach((label, j) => {
    const y = COL_HEAD_H + j * CELL_H;
    parts.push(`<rect x="0" y="${y}" width="${ROW_HEAD_W}" height="${CELL_H}" fill="#fafafa" stroke="#ddd"/>`);
    parts.push(text(8, y + 18, wrap(label, 34, 6), 'font-weight="bold" fill="#333"'));
    cols.forEach((col, i) => {
      const x = ROW_HEAD_W + i * CELL_W;
      const here = report.cells.filter((c) => c.agent === label && c.client === col);
      if (here.length === 0) {
        parts.push(`<rect x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="#f5f5f5" stroke="#ddd"/>`);
        parts.push(text(x + 8, y + 20, ['not measured'], 'fill="#999"'));
        return;
      }
      const w = CELL_W / here.length;
      here.forEach((c, k) => {
        const cx = x + k * w;
        const colour = OUTCOME_COLOURS[cellOutcome(c)];
        const tip = [c.name, `${c.direct}/${c.runs} direct`, c.timeToDirectMs === null ? '' : `time to direct ${Math.round(c.timeToDirectMs)} ms`, c.reason ?? '']
          .filter(Boolean)
          .join('\n');
        parts.push(
          `<g data-cell="${escapeXml(c.name)}" data-outcome="${cellOutcome(c)}"><title>${escapeXml(tip)}</title>`,
          `<rect x="${cx + 1}" y="${y + 1}" width="${w - 2}" height="${CELL_H - 2}" rx="3" fill="${colour.fill}" stroke="${colour.stroke}"/>`,
          text(cx + 7, y + 17, cellLines(c, w - 12), 'fill="#222"'),
          '</g>',
        );
      });
    });
  });
  const ly = COL_HEAD_H + rows.length * CELL_H + 12;
  let lx = 8;
  for (const o of Object.values(OUTCOME_COLOURS)) {
    parts.push(`<rect x="${lx}" y="${ly}" width="14" height="14" rx="2" fill="${o.fill}" stroke="${o.stroke}"/>`);
    parts.push(text(lx + 19, ly + 11, [o.label], 'fill="#333"'));
    lx += 30 + o.label.length * 7;
  }
  parts.push('</svg>');
  return parts.join('');
}

// A line-based unified diff (as `diff -u` prints it) of two small texts, such as an ssh config
// before and after `traverse config-ssh`. The lines both share at the start and at the end are set
// aside first; the rest is matched by longest common subsequence.

type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

const CONTEXT = 3;
const MAX_CELLS = 4_000_000; // beyond this the changed middle is shown as removed, then added

function splitLines(text: string): { lines: string[]; finalNewline: boolean } {
  if (text === '') return { lines: [], finalNewline: true };
  const finalNewline = text.endsWith('\n');
  const lines = (finalNewline ? text.slice(0, -1) : text).split('\n');
  return { lines, finalNewline };
}

function editScript(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const ops: Op[] = [];
  for (let i = 0; i < pre; i++) ops.push({ kind: ' ', line: a[i]!, a: i, b: i });
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  const n = am.length;
  const m = bm.length;
  if (n * m > MAX_CELLS) {
    am.forEach((line, i) => ops.push({ kind: '-', line, a: pre + i, b: pre }));
    bm.forEach((line, j) => ops.push({ kind: '+', line, a: pre + n, b: pre + j }));
  } else {
    // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
    const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i]![j] = am[i] === bm[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        ops.push({ kind: ' ', line: am[i]!, a: pre + i, b: pre + j });
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
        ops.push({ kind: '+', line: bm[j]!, a: pre + i, b: pre + j });
        j++;
      } else {
        ops.push({ kind: '-', line: am[i]!, a: pre + i, b: pre + j });
        i++;
      }
    }
  }
  for (let k = 0; k < suf; k++) ops.push({ kind: ' ', line: a[a.length - suf + k]!, a: a.length - suf + k, b: b.length - suf + k });
  // Deletions before insertions within each run of changes, as diff -u prints them.
  const sorted: Op[] = [];
  for (let k = 0; k < ops.length; ) {
    if (ops[k]!.kind === ' ') {
      sorted.push(ops[k++]!);
      continue;
    }
    const run: Op[] = [];
    while (k < ops.length && ops[k]!.kind !== ' ') run.push(ops[k++]!);
    sorted.push(...run.filter((o) => o.kind === '-'), ...run.filter((o) => o.kind === '+'));
  }
  return sorted;
}

function range(start: number, count: number): string {
  // An empty range names the line before it, as diff -u does.
  const first = count === 0 ? start : start + 1;
  return count === 1 ? `${first}` : `${first},${count}`;
}

/** The unified diff from `before` to `after`, or '' when they are equal. */
export function unifiedDiff(before: string, after: string, beforeName: string, afterName: string): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = editScript(a.lines, b.lines);
  const out: string[] = [`--- ${beforeName}`, `+++ ${afterName}`];
  const changed = ops.map((o, k) => (o.kind !== ' ' ? k : -1)).filter((k) => k >= 0);
  // Lines whose final newline differs are changed too, though equal as text.
  if (a.finalNewline !== b.finalNewline && a.lines.length > 0 && b.lines.length > 0) {
    const last = ops.length - 1;
    if (ops[last]!.kind === ' ') {
      const o = ops[last]!;
      ops.splice(last, 1, { kind: '-', line: o.line, a: o.a, b: o.b }, { kind: '+', line: o.line, a: o.a + 1, b: o.b });
      changed.push(last, last + 1);
    }
  }
  let k = 0;
  while (k < changed.length) {
    const from = Math.max(0, changed[k]! - CONTEXT);
    let to = Math.min(ops.length, changed[k]! + CONTEXT + 1);
    k++;
    while (k < changed.length && changed[k]! - CONTEXT <= to) {
      to = Math.min(ops.length, changed[k]! + CONTEXT + 1);
      k++;
    }
    const hunk = ops.slice(from, to);
    const aStart = hunk.find((o) => o.kind !== '+')?.a ?? hunk[0]!.a;
    const bStart = hunk.find((o) => o.kind !== '-')?.b ?? hunk[0]!.b;
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@`);
    for (const o of hunk) {
      out.push(`${o.kind}${o.line}`);
      const isLastA = o.kind !== '+' && o.a === a.lines.length - 1;
      const isLastB = o.kind !== '-' && o.b === b.lines.length - 1;
      if ((o.kind === '-' && isLastA && !a.finalNewline) || (o.kind === '+' && isLastB && !b.finalNewline) || (o.kind === ' ' && isLastA && !a.finalNewline)) {
        out.push('\\ No newline at end of file');
      }
    }
  }
  return out.join('\n') + '\n';
}

// History: one identity's timeline of connects, disconnects and path changes, newest first. It is
// fetched again whenever the live state changes while the view is open (at most once a second).
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { VNode } from 'preact';
import type { HistoryEntry } from '../../../src/server/dashboard/wire.js';
import type { LiveState } from '../live.js';
import { get } from '../api.js';
import { ago, stamp } from '../format.js';

export function HistoryView({ state, now }: { state: LiveState; now: number }): VNode {
  const ids = [...state.identities.values()].filter((i) => i.kind !== 'admin').map((i) => i.id).sort();
  const [chosen, setChosen] = useState<string>('');
  const [entries, setEntries] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const lastFetch = useRef(0);
  const current = chosen || ids[0] || '';
  useEffect(() => {
    if (!current) return;
    const wait = Math.max(0, 1000 - (Date.now() - lastFetch.current));
    const timer = setTimeout(() => {
      lastFetch.current = Date.now();
      const [kind, name] = current.split(':') as [string, string];
      get<{ entries: HistoryEntry[] }>(`/dashboard/api/history?kind=${encodeURIComponent(kind)}&name=${encodeURIComponent(name)}`)
        .then((r) => {
          setEntries(r.entries);
          setError(null);
        })
        .catch((err: Error) => setError(err.message));
    }, wait);
    return () => clearTimeout(timer);
  }, [current, state.version]);
  return html`<section>
    <label>Identity <select value=${current} onChange=${(e: Event) => setChosen((e.target as HTMLSelectElement).value)}>
      ${ids.map((id) => html`<option key=${id} value=${id}>${id}</option>`)}
    </select></label>
    ${error ? html`<p class="error">${error}</p>` : null}
    <ol class="timeline" data-history=${current}>
      ${(entries ?? []).map(
        (e, i) => html`<li key=${`${e.at}-${i}`} class=${e.kind}><span class="when" title=${stamp(e.at)}>${ago(e.at, now)}</span> <span class=${`badge ${e.kind}`}>${e.kind}</span> ${e.text}</li>`,
      )}
    </ol>
    ${entries && entries.length === 0 ? html`<p class="muted">No history yet.</p>` : null}
  </section>`;
}

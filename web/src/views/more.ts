// Long lists draw their first PAGE rows and grow on demand: a thousand identities would cost the
// browser seconds of layout on every change, and nobody reads them all at once (the filter finds
// one). The counts above each list always cover everything.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { VNode } from 'preact';

export const PAGE = 200;

export function useMore<T>(list: readonly T[]): { shown: readonly T[]; more: VNode | null } {
  const [limit, setLimit] = useState(PAGE);
  if (list.length <= limit) return { shown: list, more: null };
  return {
    shown: list.slice(0, limit),
    more: html`<p class="more">
      ${limit} of ${list.length} shown.
      <button onClick=${() => setLimit(limit + PAGE)}>Show ${Math.min(PAGE, list.length - limit)} more</button>
      <button onClick=${() => setLimit(list.length)}>Show all</button>
    </p>`,
  };
}

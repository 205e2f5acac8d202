// Matrix: the connectivity-matrix report the server was given (--matrix-report), as the SVG
// bench:matrix draws.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import type { LiveState } from '../live.js';

export function MatrixView({ state }: { state: LiveState }): VNode {
  if (!state.matrix) {
    return html`<section><p class="summary">No matrix report: run <code>npm run bench:matrix</code> (it writes bench/out/matrix.json) and start the server with <code>--matrix-report bench/out/matrix.json</code>.</p></section>`;
  }
  return html`<section class="matrix"><img src="/dashboard/matrix.svg" alt="connectivity matrix: NAT of the agent by NAT of the client, coloured by the path each cell ended on" /></section>`;
}

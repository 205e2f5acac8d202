// Health: what an operator should act on, with what to do.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import type { LiveState } from '../live.js';

export function HealthView({ state }: { state: LiveState }): VNode {
  if (state.health.length === 0) return html`<section><p class="summary ok" data-health="clear">Nothing to act on: no blocked UDP, no non-hairpinning NAT with peers behind it, every STUN server answers, no token about to expire.</p></section>`;
  return html`<section>
    <p class="summary">${state.health.length} warning${state.health.length === 1 ? '' : 's'}</p>
    <ul class="warnings">
      ${state.health.map((w) => html`<li key=${w.id} class=${w.level} data-warning=${w.id}><strong>${w.title}</strong><br /><span>${w.advice}</span></li>`)}
    </ul>
  </section>`;
}

// Tunnels: each client node -> agent, the path it is on now, round trip, since when, and for a
// relayed tunnel the reason in plain words.
import { html, Component } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { VNode } from 'preact';
import type { TunnelRow } from '../../../src/server/dashboard/wire.js';
import type { LiveState } from '../live.js';
import { shortKey, since } from '../format.js';
import { useMore } from './more.js';

const PATH_LABEL: Record<TunnelRow['path'], string> = { direct: 'direct', relay: 'relay', unknown: 'not reported yet' };

/** On a direct path, what carries the streams: UDP (UDX), or TCP lanes for some of them. */
function carrier(t: TunnelRow): string {
  if (t.path !== 'direct') return '';
  // UDP is blocked somewhere: every stream rides the TCP lanes to the peer's vouched address.
  if (t.transport === 'tcp') return 'TCP (no UDP path)';
  const s = t.streams;
  if (!s || s.tcp === 0) return 'UDP';
  const all = s.tcp + s.udx;
  return s.udx === 0 ? `TCP lane${s.tcp === 1 ? '' : 's'} (${s.tcp} stream${s.tcp === 1 ? '' : 's'})` : `TCP lane for ${s.tcp} of ${all} streams, UDP for the rest`;
}

class TunnelLine extends Component<{ t: TunnelRow; now: number }> {
  override shouldComponentUpdate(next: { t: TunnelRow; now: number }): boolean {
    return next.t !== this.props.t || Math.floor(next.now / 5000) !== Math.floor(this.props.now / 5000);
  }
  override render(): VNode {
    const { t, now } = this.props;
    return html`<tr data-tunnel=${`${t.client}>${t.agent}`} data-path=${t.path}>
      <td>${t.client} <span class="mono muted">${shortKey(t.clientKey)}</span></td>
      <td>${t.agent}${t.agentOnline ? '' : html` <span class="badge offline">offline</span>`}</td>
      <td data-carrier=${carrier(t)}><span class=${`badge ${t.path}`}>${PATH_LABEL[t.path]}</span> ${carrier(t)} <span class="mono small">${t.endpoint ?? ''}</span></td>
      <td>${t.rttMs === null ? '-' : `${t.rttMs.toFixed(1)} ms`}</td>
      <td>${since(t.pathSince, now)}</td>
      <td>${since(t.since, now)}</td>
      <td class="small">${t.reason ?? (t.path === 'relay' ? 'not said by either side' : '')}</td>
    </tr>`;
  }
}

export function TunnelsView({ state, now }: { state: LiveState; now: number }): VNode {
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const list = [...state.tunnels.values()].filter((t) => !needle || t.client.includes(needle) || t.agent.includes(needle) || t.path === needle).sort((a, b) => a.agent.localeCompare(b.agent) || a.client.localeCompare(b.client) || a.id.localeCompare(b.id));
  const direct = list.filter((t) => t.path === 'direct').length;
  const { shown, more } = useMore(list);
  return html`<section>
    <p class="summary">
      <input class="filter" type="search" placeholder="filter by name or path" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
      ${list.length} tunnels, ${direct} direct, ${list.filter((t) => t.path === 'relay').length} relayed</p>
    <table class="tunnels">
      <thead><tr><th>client node</th><th>agent</th><th>path</th><th>round trip</th><th>on this path for</th><th>tunnel up for</th><th>why relayed</th></tr></thead>
      <tbody>${shown.map((t) => html`<${TunnelLine} key=${t.id} t=${t} now=${now} />`)}</tbody>
    </table>
    ${more}
  </section>`;
}

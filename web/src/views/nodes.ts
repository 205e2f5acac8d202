// Nodes: every agent and client identity, online or offline (last seen), and under it each of
// its nodes with endpoints and the NAT its own netcheck found.
import { html, Component } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { VNode } from 'preact';
import type { IdentityRow, NodeRow } from '../../../src/server/dashboard/wire.js';
import type { NetcheckSummary } from '../../../src/coordination/protocol.js';
import type { LiveState } from '../live.js';
import { ago, shortKey, since } from '../format.js';
import { useMore } from './more.js';

const PORT_MAPPING_NAMES = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP' } as const;

function nat(n: NetcheckSummary | null): string {
  if (!n) return 'netcheck not reported yet';
  if (n.udp === false) return 'UDP blocked';
  const parts = [
    `mapping ${n.mapping ?? 'unknown'}`,
    `filtering ${n.filtering ?? 'unknown'}`,
    n.hairpinning === true ? 'hairpins' : n.hairpinning === false ? 'no hairpinning' : 'hairpinning unknown',
  ];
  if (n.globalV4) parts.push(`public ${n.globalV4}`);
  if (n.portMapping) parts.push(`port mapped by ${PORT_MAPPING_NAMES[n.portMapping.protocol]} at ${n.portMapping.external}${n.portMapping.trusted === false ? ' (not usable: another NAT in front)' : ''}`);
  else if (n.portMapping === null) parts.push('no port mapping');
  return parts.join(' · ');
}

/** A node's row redraws only when its row object changed (the feed replaces changed rows only). */
class NodeLine extends Component<{ node: NodeRow; now: number }> {
  override shouldComponentUpdate(next: { node: NodeRow; now: number }): boolean {
    return next.node !== this.props.node || Math.floor(next.now / 10_000) !== Math.floor(this.props.now / 10_000);
  }
  override render(): VNode {
    const { node: n, now } = this.props;
    return html`<tr class="node" data-node=${n.id}>
      <td class="mono">${shortKey(n.key)}</td>
      <td>${since(n.connectedAt, now)}</td>
      <td class="mono">
        ${n.remote ?? '-'}
        ${n.replica ? html`<div class="small muted replica" data-replica=${n.replica.url}>via ${n.replica.url}${n.replica.here ? ' (this server)' : ''}</div>` : ''}
      </td>
      <td class="mono small">${n.endpoints.join(', ') || 'none (relay only)'}</td>
      <td class="small">${nat(n.netcheck)}</td>
    </tr>`;
  }
}

interface Group {
  readonly id: string;
  readonly kind: 'agent' | 'client';
  readonly name: string;
  readonly identity: IdentityRow | undefined;
  readonly nodes: NodeRow[];
}

export function groups(state: LiveState): Group[] {
  const byId = new Map<string, Group>();
  for (const i of state.identities.values()) {
    if (i.kind === 'admin') continue;
    byId.set(i.id, { id: i.id, kind: i.kind, name: i.name, identity: i, nodes: [] });
  }
  for (const n of state.nodes.values()) {
    const id = `${n.kind}:${n.name}`;
    let g = byId.get(id);
    if (!g) byId.set(id, (g = { id, kind: n.kind, name: n.name, identity: undefined, nodes: [] }));
    g.nodes.push(n);
  }
  return [...byId.values()].sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'agent' ? -1 : 1));
}

/** When an offline identity was last connected: the later of what this page saw and the store's record. */
function lastSeen(g: Group, state: LiveState, now: number): string {
  const seen = Math.max(state.goneAt.get(g.id) ?? 0, g.identity?.lastDisconnectedAt ?? 0);
  if (seen > 0) return `last seen ${ago(seen, now)}`;
  return g.identity?.lastConnectedAt ? `last seen ${ago(g.identity.lastConnectedAt, now)}` : 'never connected';
}

export function NodesView({ state, now }: { state: LiveState; now: number }): VNode {
  const [filter, setFilter] = useState('');
  const all = groups(state);
  const online = all.filter((g) => g.nodes.length > 0).length;
  const needle = filter.trim().toLowerCase();
  const filtered = needle ? all.filter((g) => g.id.includes(needle) || g.nodes.some((n) => n.remote?.includes(needle) || n.replica?.url.includes(needle) || n.endpoints.some((e) => e.includes(needle)))) : all;
  const { shown: list, more } = useMore(filtered);
  return html`<section>
    <p class="summary">
      <input class="filter" type="search" placeholder="filter by name or address" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
      ${all.length} identities, ${online} online, ${state.nodes.size} node${state.nodes.size === 1 ? '' : 's'} connected${needle ? `; ${filtered.length} match` : ''}
    </p>
    <table class="nodes">
      <thead><tr><th>node key</th><th>connected for</th><th>from</th><th>endpoints</th><th>NAT (its own netcheck)</th></tr></thead>
      ${list.map(
        (g) => html`<tbody key=${g.id} class="identity" data-identity=${g.id} data-status=${g.nodes.length > 0 ? 'online' : 'offline'}>
          <tr class="identity-head">
            <th colspan="5">
              <span class=${`kind ${g.kind}`}>${g.kind}</span> ${g.name}
              ${g.nodes.length > 0
                ? html`<span class="badge online">online${g.nodes.length > 1 ? ` · ${g.nodes.length} nodes` : ''}</span>`
                : html`<span class="badge offline">offline</span>
                    <span class="muted">${lastSeen(g, state, now)}</span>`}
            </th>
          </tr>
          ${g.nodes.map((n) => html`<${NodeLine} key=${n.id} node=${n} now=${now} />`)}
        </tbody>`,
      )}
    </table>
    ${more}
  </section>`;
}

// The dashboard's view of one server: the hub's connected nodes and tunnels, the store's
// identities and tokens, turned into the rows of wire.ts.
import type { Hub } from '../hub.js';
import { identityView } from '../http-api.js';
import type { IdentityListing } from '../store/store.js';
import type { PeerView, TunnelView } from '../../coordination/views.js';
import type { DashboardSource, TunnelSourceRow } from './feed.js';
import type { IdentityRow, NodeRow, PathKind } from './wire.js';

/** How the dashboard names the replicas: this one's URL (null: a lone server) and another's by its id. */
export interface ReplicaNames {
  here(): string | null;
  other(id: string): string;
}

const LONE: ReplicaNames = { here: () => null, other: (id) => id };

export function hubSource(hub: Hub, identities: () => Promise<IdentityListing[]>, replicas: ReplicaNames = LONE): DashboardSource {
  return {
    identities: async () => (await identities()).map((i) => identityRow(hub, i)),
    // Every node the hub holds: this server's own, and with replicas the others' nodes mirrored
    // into it (replica/mirror.ts), each marked with the server it is connected to.
    nodes: () => {
      const here = replicas.here();
      return [...hub.all()].map((p) => {
        const replica = p.replica !== null ? { url: replicas.other(p.replica), here: false } : here !== null ? { url: here, here: true } : null;
        return nodeRow({ name: p.name, kind: p.kind, key: p.node?.key ?? null, connectedAt: p.connectedAt, remote: p.remote, node: p.node }, replica);
      });
    },
    tunnels: () => hub.tunnelsView({ kind: 'admin' }).map(tunnelRow),
  };
}

function identityRow(hub: Hub, i: IdentityListing): IdentityRow {
  return {
    id: `${i.kind}:${i.name}`,
    ...identityView(hub, i),
    allow: i.allow,
    tokens: i.tokens.map((t) => ({ id: t.id, hint: t.hint, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt })),
  };
}

export function nodeRow(p: PeerView, replica: NodeRow['replica'] = null): NodeRow {
  return {
    id: p.key ?? `${p.kind}:${p.name}@${p.connectedAt}`,
    kind: p.kind,
    name: p.name,
    key: p.key,
    connectedAt: p.connectedAt,
    remote: p.remote,
    endpoints: p.node?.endpoints ?? [],
    netcheck: p.node?.netcheck ?? null,
    replica,
  };
}

/** The client's report decides (it asked for the tunnel and pings over it); else the agent's. */
export function tunnelRow(t: TunnelView): TunnelSourceRow {
  const side = t.paths.client ? 'client' : t.paths.agent ? 'agent' : null;
  const path = side ? t.paths[side] : null;
  const kind: PathKind = path ? path.kind : 'unknown';
  const reason = kind === 'relay' ? (t.relayReasons?.client ?? t.relayReasons?.agent ?? null) : null;
  return {
    id: `${t.clientKey ?? t.client}>${t.agent}`,
    client: t.client,
    clientKey: t.clientKey,
    agent: t.agent,
    agentOnline: t.agentOnline,
    path: kind,
    endpoint: path?.kind === 'direct' ? path.endpoint : null,
    transport: path?.kind === 'direct' ? (path.transport ?? 'udp') : null,
    rttMs: side ? t.rttMs[side] : null,
    since: t.since,
    reason,
    streams: side ? (t.streams?.[side] ?? null) : null,
  };
}

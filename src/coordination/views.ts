// The read-only API's views (GET /api/v1/peers, /api/v1/tunnels): what the server writes and what
// `traverse status` (or any script) reads back, as one schema each. One entry per node: an
// identity (a person, a workspace) may have several nodes (processes) connected at once.
import * as z from 'zod';
import { identityName, node, nodeKey, path, peerKind, streamCarriers } from './protocol.js';

export const peerView = z.object({
  name: identityName,
  kind: peerKind,
  /** The node's key once it has published its node; null in the moment before. */
  key: nodeKey.nullable(),
  connectedAt: z.number(),
  /** The address the node's coordination connection came from. */
  remote: z.string().nullable(),
  node: node.nullable(),
});
export type PeerView = z.infer<typeof peerView>;

export const tunnelView = z.object({
  /** The client identity and the node (process) of it that asked for the tunnel. */
  client: identityName,
  clientKey: nodeKey.nullable(),
  agent: identityName,
  agentKey: nodeKey.nullable(),
  since: z.number(),
  agentOnline: z.boolean(),
  /** The path each side reported last; null until it reports. */
  paths: z.object({ client: path.nullable(), agent: path.nullable() }),
  /** The round trip each side measured on its path (ms; a relayed path through the relay), null until reported. */
  rttMs: z.object({ client: z.number().nullable(), agent: z.number().nullable() }),
  /** For a relayed path, why in plain words, as each side reported it (null: direct, or not said). */
  relayReasons: z.object({ client: z.string().nullable(), agent: z.string().nullable() }).optional(),
  /** The tunnel's streams by carrier (TCP lane or UDX), as each side reported them last. */
  streams: z.object({ client: streamCarriers.nullable(), agent: streamCarriers.nullable() }).optional(),
});
export type TunnelView = z.infer<typeof tunnelView>;

/**
 * GET /api/v1/identities (admin tokens only): every identity the server knows, online or not,
 * with how many of its nodes are connected now and when it last connected and disconnected.
 */
export const identityView = z.object({
  kind: z.enum(['agent', 'client', 'admin']),
  name: identityName,
  /** Nodes of it connected now (an admin never has any: it only reads the API). */
  onlineNodes: z.number().int().nonnegative(),
  createdAt: z.number(),
  /** Start of its latest connection and end of its latest ended one; null when there is none (or it was pruned). */
  lastConnectedAt: z.number().nullable(),
  lastDisconnectedAt: z.number().nullable(),
});
export type IdentityView = z.infer<typeof identityView>;

export const peersResponse = z.object({ peers: z.array(peerView) });
export const tunnelsResponse = z.object({ tunnels: z.array(tunnelView) });
export const identitiesResponse = z.object({ identities: z.array(identityView) });

/** GET /api/v1/config: the network settings a node gets at connect, for tools that do not join. */
export const networkConfig = z.object({
  /** STUN servers as HOST:PORT, as this client reaches the server; empty when STUN is disabled. */
  stun: z.array(z.string()),
  relay: z.object({ enabled: z.boolean(), maxPayload: z.number().int() }),
  blockDirect: z.boolean(),
});
export type NetworkConfig = z.infer<typeof networkConfig>;

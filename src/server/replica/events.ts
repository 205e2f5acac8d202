// What replicas tell each other on the bus. Every replica mirrors every other's connected nodes
// (their identity, the node they published, the tunnels they asked for) into its own hub, so that
// a node update, tunnel or departure on one replica reaches the tunnel peers held by another; each
// replica still sends only to its own connections. A node is named by (replica, connection).
//
// On the wire one notification carries one batch: {"r": replica id, "e": [event, ...]}.
import * as z from 'zod';
import { MAX_REASON_LENGTH, identityName, node, nodeKey, path, peerKind, streamCarriers } from '../../coordination/protocol.js';

export const replicaId = z.string().regex(/^[0-9a-f]{16}$/);

const conn = z.number().int().positive();

export const replicaEvent = z.discriminatedUnion('t', [
  /** A node connected (and was accepted by the hub); `id` is its identity's row in the shared database. */
  z.object({ t: z.literal('attach'), c: conn, id: z.number().int().positive(), kind: peerKind, name: identityName, at: z.number(), remote: z.string().max(64).nullable() }),
  /** The node published (or republished) its node. */
  z.object({ t: z.literal('node'), c: conn, node }),
  /** A client node opened or closed a tunnel to an agent. */
  z.object({ t: z.literal('tunnel'), c: conn, agent: identityName }),
  z.object({ t: z.literal('untunnel'), c: conn, agent: identityName }),
  /** The node reported its path to the tunnel peer with key `peer` (for every replica's views). */
  z.object({
    t: z.literal('path'),
    c: conn,
    peer: nodeKey,
    path,
    rttMs: z.number().nonnegative().max(600_000).nullable(),
    reason: z.string().max(MAX_REASON_LENGTH).nullable(),
    streams: streamCarriers.nullable(),
  }),
  /** The node's connection ended; `how` is what its tunnel peers are told. */
  z.object({ t: z.literal('detach'), c: conn, how: z.enum(['disconnected', 'lost']) }),
  /** Asks replica `to` to publish all its nodes again (it joined, or came back after being dead). */
  z.object({ t: z.literal('resync'), to: replicaId }),
  /** The replica is shutting down cleanly: its nodes are lost (they will reconnect elsewhere). */
  z.object({ t: z.literal('bye') }),
]);
export type ReplicaEvent = z.infer<typeof replicaEvent>;

export const eventBatch = z.object({ r: replicaId, e: z.array(replicaEvent).max(10_000) });
export type EventBatch = z.infer<typeof eventBatch>;

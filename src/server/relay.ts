// Relay forwarding: one binary frame from a node, `[destination key][payload]`, goes out as
// `[source key][payload]` in the same buffer, only between the two ends of a tunnel, within the
// sender's relay budget, and never to a receiver that is not keeping up. A node that speaks relay
// batches (coordination/relay-batch.ts) sends `[destination key]` and several datagrams; the
// batch goes out whole, in the same buffer, to a receiver that speaks them too, and one frame per
// datagram to one that does not.
import { CloseCode, MAX_RELAY_PAYLOAD, NODE_KEY_BYTES } from '../coordination/protocol.js';
import { decodeRelayBatch, encodeRelayBatch } from '../coordination/relay-batch.js';
import { bytesToKey, decodeRelayFrame, encodeRelayFrame, readdressRelayFrame, type RelayFrame } from '../coordination/relay-frame.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { HubLimits, Peer } from './peer.js';

export interface RelayRoutes {
  /** The connected node that published this key. */
  byKey(key: string): Peer | undefined;
  /** Whether the two nodes are the two ends of a tunnel. */
  haveTunnel(a: Peer, b: Peer): boolean;
}

export function forwardRelayFrame(
  routes: RelayRoutes,
  limits: HubLimits,
  metrics: CoordinatorMetrics | undefined,
  sender: Peer,
  frame: Buffer,
  now: number,
): void {
  if (sender.closed || sender.closing) return;
  if (sender.link.relayBatches) return forwardRelayBatch(routes, limits, metrics, sender, frame, now);
  const decoded = decodeRelayFrame(frame);
  if (decoded === 'too-long') return sender.link.close(CloseCode.tooBig, `relay payload larger than ${MAX_RELAY_PAYLOAD} bytes`);
  if (decoded === 'too-short') return sender.link.close(CloseCode.policy, `relay frame shorter than a ${NODE_KEY_BYTES}-byte key`);
  if (!sender.keyBytes) return sender.link.close(CloseCode.policy, 'publish your node before sending relay datagrams');
  const sourceKey = sender.keyBytes;
  const dest = admit(routes, metrics, sender, decoded.key, decoded.payload.length, 1, now);
  if (!dest) return;
  if (dest.link.bufferedAmount() > limits.maxRelayBuffered) return void metrics?.relayDrops.inc({ reason: 'slow' });
  if (!dest.link.relayBatches) dest.link.sendBinary(readdressRelayFrame(frame, sourceKey));
  else if (decoded.payload.length > 0) dest.link.sendBinary(encodeRelayBatch(sourceKey, [decoded.payload]));
  else return void metrics?.relayDrops.inc({ reason: 'empty' }); // an empty datagram has no batch form
  metrics?.relayDatagrams.inc();
  metrics?.relayBytes.inc(decoded.payload.length);
}

/** A batch of datagrams from a node that speaks relay batches, to one destination. */
function forwardRelayBatch(routes: RelayRoutes, limits: HubLimits, metrics: CoordinatorMetrics | undefined, sender: Peer, frame: Buffer, now: number): void {
  if (!sender.keyBytes) return sender.link.close(CloseCode.policy, 'publish your node before sending relay datagrams');
  const sourceKey = sender.keyBytes;
  const batch = decodeRelayBatch(frame);
  if (typeof batch === 'string') {
    // Dropped whole, and charged like one: reading garbage is not free either.
    sender.relay.take(now, frame.length);
    return void metrics?.relayDrops.inc({ reason: 'malformed' });
  }
  const n = batch.payloads.length;
  const dest = admit(routes, metrics, sender, bytesToKey(batch.key), batch.payloadBytes, n, now);
  if (!dest) return;
  if (dest.link.bufferedAmount() > limits.maxRelayBuffered) return void metrics?.relayDrops.inc({ reason: 'slow' }, n);
  if (dest.link.relayBatches) dest.link.sendBinary(readdressRelayFrame(frame, sourceKey));
  else for (const p of batch.payloads) dest.link.sendBinary(encodeRelayFrame(sourceKey, p));
  metrics?.relayDatagrams.inc(n);
  metrics?.relayBytes.inc(batch.payloadBytes);
}

/**
 * Charges `n` datagrams of `payloadBytes` in all to the sender and finds their destination, a
 * tunnel peer of the sender; or counts why not (null).
 */
function admit(routes: RelayRoutes, metrics: CoordinatorMetrics | undefined, sender: Peer, destKey: RelayFrame['key'], payloadBytes: number, n: number, now: number): Peer | null {
  const drop = (reason: string): null => {
    metrics?.relayDrops.inc({ reason }, n);
    return null;
  };
  // Every frame is charged to the sender, delivered or not: dropping for free would let a node
  // make the server read without bound.
  if (!sender.relay.take(now, payloadBytes)) return drop('rate');
  const dest = routes.byKey(destKey);
  if (!dest || !routes.haveTunnel(sender, dest)) {
    drop('no-tunnel');
    // A few strays are normal (a tunnel just closed with datagrams in flight); a node that keeps
    // sending to no one is misbehaving and is disconnected.
    if (!sender.strayRelay.take(now)) {
      metrics?.closes.inc({ reason: 'stray-relay' });
      sender.link.close(CloseCode.policy, 'relay datagrams to nodes without a tunnel to you');
    }
    return null;
  }
  // The caller checks the receiver keeps up: one that does not loses datagrams instead of
  // growing our memory.
  return dest;
}

/**
 * One frame from another replica's relay (replica/mesh.ts): `[destination key][source key][payload]`.
 * The destination must be a node of this replica, the source a node the sending replica holds, and
 * the two the ends of a tunnel: the other replica is authenticated, yet it may only deliver what
 * its own nodes sent. The sender was charged by its own replica; the mesh link has its own budget.
 */
export function deliverMeshFrame(
  routes: RelayRoutes,
  limits: HubLimits,
  metrics: CoordinatorMetrics | undefined,
  from: string,
  frame: Buffer,
): void {
  const drop = (reason: string): void => void metrics?.relayDrops.inc({ reason });
  if (frame.length < 2 * NODE_KEY_BYTES || frame.length > 2 * NODE_KEY_BYTES + MAX_RELAY_PAYLOAD) return drop('mesh-malformed');
  const dest = routes.byKey(bytesToKey(frame));
  const source = routes.byKey(bytesToKey(frame.subarray(NODE_KEY_BYTES)));
  if (!dest || dest.replica !== null || !source || source.replica !== from || !routes.haveTunnel(source, dest)) return drop('mesh-no-tunnel');
  if (dest.link.bufferedAmount() > limits.maxRelayBuffered) return drop('slow');
  // What follows the destination key is exactly the frame the node expects: [source key][payload]
  // (or, for a node that speaks batches, a batch of one).
  const down = frame.subarray(NODE_KEY_BYTES);
  if (dest.link.relayBatches) {
    if (frame.length === 2 * NODE_KEY_BYTES) return drop('mesh-malformed'); // an empty datagram has no batch form
    dest.link.sendBinary(encodeRelayBatch(down, [down.subarray(NODE_KEY_BYTES)]));
  } else dest.link.sendBinary(down);
  metrics?.relayDatagrams.inc();
  metrics?.relayBytes.inc(frame.length - 2 * NODE_KEY_BYTES);
}

// Relay forwarding: one binary frame from a node, `[destination key][payload]`, goes out as
// `[source key][payload]` in the same buffer, only between the two ends of a tunnel, within the
// sender's relay budget, and never to a receiver that is not keeping up.
import { CloseCode, MAX_RELAY_PAYLOAD, NODE_KEY_BYTES } from '../coordination/protocol.js';
import { bytesToKey, decodeRelayFrame, readdressRelayFrame } from '../coordination/relay-frame.js';
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
  const decoded = decodeRelayFrame(frame);
  if (decoded === 'too-long') return sender.link.close(CloseCode.tooBig, `relay payload larger than ${MAX_RELAY_PAYLOAD} bytes`);
  if (decoded === 'too-short') return sender.link.close(CloseCode.policy, `relay frame shorter than a ${NODE_KEY_BYTES}-byte key`);
  if (!sender.keyBytes) return sender.link.close(CloseCode.policy, 'publish your node before sending relay datagrams');
  const drop = (reason: string): void => void metrics?.relayDrops.inc({ reason });
  // Every frame is charged to the sender, delivered or not: dropping for free would let a node
  // make the server read without bound.
  const payloadBytes = decoded.payload.length;
  if (!sender.relay.take(now, payloadBytes)) return drop('rate');
  const dest = routes.byKey(decoded.key);
  if (!dest || !routes.haveTunnel(sender, dest)) {
    drop('no-tunnel');
    // A few strays are normal (a tunnel just closed with datagrams in flight); a node that keeps
    // sending to no one is misbehaving and is disconnected.
    if (!sender.strayRelay.take(now)) {
      metrics?.closes.inc({ reason: 'stray-relay' });
      sender.link.close(CloseCode.policy, 'relay datagrams to nodes without a tunnel to you');
    }
    return;
  }
  // A receiver that does not keep up loses datagrams instead of growing our memory.
  if (dest.link.bufferedAmount() > limits.maxRelayBuffered) return drop('slow');
  dest.link.sendBinary(readdressRelayFrame(frame, sender.keyBytes));
  metrics?.relayDatagrams.inc();
  metrics?.relayBytes.inc(payloadBytes);
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
  // What follows the destination key is exactly the frame the node expects: [source key][payload].
  dest.link.sendBinary(frame.subarray(NODE_KEY_BYTES));
  metrics?.relayDatagrams.inc();
  metrics?.relayBytes.inc(frame.length - 2 * NODE_KEY_BYTES);
}

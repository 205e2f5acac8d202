// Relay forwarding: one binary frame from a node, `[destination key][payload]`, goes out as
// `[source key][payload]` in the same buffer, only between the two ends of a tunnel, within the
// sender's relay budget, and never to a receiver that is not keeping up.
import { CloseCode, MAX_RELAY_PAYLOAD, NODE_KEY_BYTES } from '../coordination/protocol.js';
import { decodeRelayFrame, readdressRelayFrame } from '../coordination/relay-frame.js';
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
  if (sender.closed) return;
  const decoded = decodeRelayFrame(frame);
  if (decoded === 'too-long') return sender.link.close(CloseCode.tooBig, `relay payload larger than ${MAX_RELAY_PAYLOAD} bytes`);
  if (decoded === 'too-short') return sender.link.close(CloseCode.policy, `relay frame shorter than a ${NODE_KEY_BYTES}-byte key`);
  if (!sender.keyBytes) return sender.link.close(CloseCode.policy, 'publish your node before sending relay datagrams');
  const drop = (reason: string): void => void metrics?.relayDrops.inc({ reason });
  const dest = routes.byKey(decoded.key);
  if (!dest || !routes.haveTunnel(sender, dest)) return drop('no-tunnel');
  const payloadBytes = decoded.payload.length;
  if (!sender.relay.take(now, payloadBytes)) return drop('rate');
  // A receiver that does not keep up loses datagrams instead of growing our memory.
  if (dest.link.bufferedAmount() > limits.maxRelayBuffered) return drop('slow');
  dest.link.sendBinary(readdressRelayFrame(frame, sender.keyBytes));
  metrics?.relayDatagrams.inc();
  metrics?.relayBytes.inc(payloadBytes);
}

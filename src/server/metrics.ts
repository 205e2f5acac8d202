// The coordinator's Prometheus metrics, on a registry of its own so that several servers in
// one process (tests) do not collide, and so the embedded STUN server can add its own.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface CoordinatorMetrics {
  readonly registry: Registry;
  readonly peers: Gauge<'kind'>;
  readonly messages: Counter<'direction' | 'type'>;
  readonly relayBytes: Counter;
  readonly relayDatagrams: Counter;
  readonly relayDrops: Counter<'reason'>;
  readonly authFailures: Counter;
  readonly closes: Counter<'reason'>;
  readonly historyDrops: Counter<'kind'>;
}

export function createMetrics(registry = new Registry(), defaults = true): CoordinatorMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'traverse_' });
  const registers = [registry];
  return {
    registry,
    peers: new Gauge({ name: 'traverse_coordinator_peers', help: 'Connected peers', labelNames: ['kind'], registers }),
    messages: new Counter({
      name: 'traverse_coordinator_messages_total',
      help: 'Coordination messages by direction (in/out) and type',
      labelNames: ['direction', 'type'],
      registers,
    }),
    relayBytes: new Counter({ name: 'traverse_relay_bytes_total', help: 'Relay payload bytes forwarded', registers }),
    relayDatagrams: new Counter({ name: 'traverse_relay_datagrams_total', help: 'Relay datagrams forwarded', registers }),
    relayDrops: new Counter({
      name: 'traverse_relay_drops_total',
      help: 'Relay datagrams dropped, by reason (slow receiver, no tunnel, offline, rate)',
      labelNames: ['reason'],
      registers,
    }),
    authFailures: new Counter({ name: 'traverse_auth_failures_total', help: 'Rejected bearer tokens', registers }),
    closes: new Counter({
      name: 'traverse_coordinator_closes_total',
      help: 'Peer connections ended, by reason',
      labelNames: ['reason'],
      registers,
    }),
    historyDrops: new Counter({
      name: 'traverse_history_dropped_total',
      help: 'History rows (connect, disconnect, path) not written: the queue was full or the database refused them',
      labelNames: ['kind'],
      registers,
    }),
  };
}

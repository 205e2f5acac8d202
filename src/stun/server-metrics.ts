// Prometheus metrics for the STUN server, counted cheaply.
//
// The packet path only increments plain number fields on a Tally (one per transport). prom-client
// counters are brought up to date when they are scraped, in their collect() hooks, so a server
// answering hundreds of thousands of requests a second does no label lookups per packet.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DropReason } from './server-respond.js';

export type Transport = 'udp' | 'tcp';

export type ServerDropReason = DropReason | 'rate-limited' | 'tcp-oversize' | 'send-failed';

export const DROP_REASONS: readonly ServerDropReason[] = [
  'malformed',
  'not-a-request',
  'unsupported-method',
  'bad-fingerprint',
  'rate-limited',
  'tcp-oversize',
  'send-failed',
];

/** Counts since the last scrape, for one transport. Fields, not a map, so increments are cheap. */
export class Tally {
  requests = 0;
  success = 0;
  error = 0;
  malformed = 0;
  notRequest = 0;
  unsupportedMethod = 0;
  badFingerprint = 0;
  rateLimited = 0;
  tcpOversize = 0;
  sendFailed = 0;

  drop(reason: ServerDropReason): void {
    switch (reason) {
      case 'malformed':
        this.malformed++;
        break;
      case 'not-a-request':
        this.notRequest++;
        break;
      case 'unsupported-method':
        this.unsupportedMethod++;
        break;
      case 'bad-fingerprint':
        this.badFingerprint++;
        break;
      case 'rate-limited':
        this.rateLimited++;
        break;
      case 'tcp-oversize':
        this.tcpOversize++;
        break;
      case 'send-failed':
        this.sendFailed++;
        break;
    }
  }

  dropCount(reason: ServerDropReason): number {
    switch (reason) {
      case 'malformed':
        return this.malformed;
      case 'not-a-request':
        return this.notRequest;
      case 'unsupported-method':
        return this.unsupportedMethod;
      case 'bad-fingerprint':
        return this.badFingerprint;
      case 'rate-limited':
        return this.rateLimited;
      case 'tcp-oversize':
        return this.tcpOversize;
      case 'send-failed':
        return this.sendFailed;
    }
  }

  reset(): void {
    this.requests = this.success = this.error = 0;
    this.malformed = this.notRequest = this.unsupportedMethod = this.badFingerprint = 0;
    this.rateLimited = this.tcpOversize = this.sendFailed = 0;
  }
}

/** The server's counters: running totals (for stats()) plus the prom-client view of them. */
export class ServerMetrics {
  readonly udp = new Tally();
  readonly tcp = new Tally();
  /** Totals flushed so far, so stats() can add the pending tallies to them. */
  private readonly flushed = { udp: new Tally(), tcp: new Tally() };
  tcpConnections = 0;

  constructor(registry: Registry) {
    const flush = (): void => this.flush(requests, responses, drops);
    const requests = new Counter({
      name: 'traverse_stun_requests_total',
      help: 'STUN messages received (before any check), by transport',
      labelNames: ['transport'],
      registers: [registry],
      collect: flush,
    });
    const responses = new Counter({
      name: 'traverse_stun_responses_total',
      help: 'STUN responses sent, by class (success or error) and transport',
      labelNames: ['class', 'transport'],
      registers: [registry],
      collect: flush,
    });
    const drops = new Counter({
      name: 'traverse_stun_dropped_total',
      help: 'STUN messages dropped without an answer, by reason and transport',
      labelNames: ['reason', 'transport'],
      registers: [registry],
      collect: flush,
    });
    // Zero-valued series exist from the start, so dashboards and rate() see them before any traffic.
    for (const transport of ['udp', 'tcp'] as const) {
      requests.inc({ transport }, 0);
      responses.inc({ class: 'success', transport }, 0);
      responses.inc({ class: 'error', transport }, 0);
      for (const reason of DROP_REASONS) drops.inc({ reason, transport }, 0);
    }
    const connections = (): number => this.tcpConnections;
    new Gauge({
      name: 'traverse_stun_tcp_connections',
      help: 'Open STUN-over-TCP connections',
      registers: [registry],
      collect() {
        this.set(connections());
      },
    });
  }

  private flush(requests: Counter, responses: Counter, drops: Counter): void {
    for (const transport of ['udp', 'tcp'] as const) {
      const t = this[transport];
      const total = this.flushed[transport];
      if (t.requests > 0) requests.inc({ transport }, t.requests);
      if (t.success > 0) responses.inc({ class: 'success', transport }, t.success);
      if (t.error > 0) responses.inc({ class: 'error', transport }, t.error);
      for (const reason of DROP_REASONS) {
        const n = t.dropCount(reason);
        if (n > 0) drops.inc({ reason, transport }, n);
      }
      addInto(total, t);
      t.reset();
    }
  }

  /** Running totals, for tests and logs (does not disturb the Prometheus view). */
  stats(transport: Transport): Tally {
    const out = new Tally();
    addInto(out, this.flushed[transport]);
    addInto(out, this[transport]);
    return out;
  }
}

function addInto(into: Tally, from: Tally): void {
  into.requests += from.requests;
  into.success += from.success;
  into.error += from.error;
  into.malformed += from.malformed;
  into.notRequest += from.notRequest;
  into.unsupportedMethod += from.unsupportedMethod;
  into.badFingerprint += from.badFingerprint;
  into.rateLimited += from.rateLimited;
  into.tcpOversize += from.tcpOversize;
  into.sendFailed += from.sendFailed;
}

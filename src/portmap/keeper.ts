// Keeps one mapping of the node's UDP port alive: probes the gateway, maps with the best
// protocol that answered, renews, notices router restarts and network changes, and deletes the
// mapping on a clean close. The decisions are RenewalSchedule's; this is the I/O around it.
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatEndpoint } from '../net/endpoint.js';
import { DEFAULT_PROBE_MS, PortMapClient, preferredProtocols, type Mapping, type PortMapClientOptions, type PortMapProtocol, type Probe } from './client.js';
import { defaultGateway, type Gateway } from './gateway.js';
import type { ScheduleOptions } from './schedule.js';
import { RenewalLoop } from './renewal-loop.js';
import { encodeNatPmpExternalAddressRequest, decodeNatPmpResponse, NATPMP_PORT } from './natpmp.js';
import { encodePcpAnnounce, decodePcpResponse, PCP_PORT } from './pcp.js';
import { exchange } from './udp-exchange.js';
import { listenForAnnouncements } from './announce.js';

/** Ask for about two hours (never a permanent mapping: leaked ones outlive us). */
export const MAPPING_LIFETIME_S = 7200;

export interface PortMapKeeperOptions {
  readonly internalPort: number;
  /** Where the gateway is (default: the machine's default route). */
  readonly gateway?: () => Gateway | null;
  /** Client options besides the gateway (tests: a fake gateway's ports). */
  readonly client?: Omit<PortMapClientOptions, 'gateway'>;
  readonly lifetimeS?: number;
  readonly schedule?: ScheduleOptions;
  readonly now?: () => number;
  readonly tickMs?: number;
  readonly logger?: Logger;
  /**
   * Where to hear the gateway's restart announcements (announce.ts); default 224.0.0.1:5350,
   * false: not at all (the epoch checks still notice a restart, later).
   */
  readonly announcements?: { readonly address?: string; readonly port?: number } | false;
  /** The mapping changed (a new one, a renewal to another address, or gone). */
  readonly onChange: (mapping: Mapping | null) => void;
  /**
   * Ask the gateway only after this long (ms; default 0): a one-shot `traverse proxy` opens its
   * stream over the relay first, and the probes would take CPU from that set-up.
   */
  readonly startAfterMs?: number;
}

export class PortMapKeeper {
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly loop: RenewalLoop;
  private closed = false;
  private current: Mapping | null = null;
  private client: PortMapClient | null = null;
  private gw: Gateway | null = null;
  private probed: Probe | null = null;
  private firstAttempt: Promise<void>;
  private resolveFirst!: () => void;
  private listener: { close(): void } | null = null;
  private listeningTo: string | null = null;

  constructor(private readonly o: PortMapKeeperOptions) {
    this.now = o.now ?? (() => performance.now());
    this.log = o.logger ?? silentLogger;
    this.firstAttempt = new Promise((r) => (this.resolveFirst = r));
    this.loop = new RenewalLoop({
      now: this.now,
      log: this.log,
      what: 'port mapping',
      schedule: o.schedule,
      tickMs: o.tickMs,
      startAfterMs: o.startAfterMs,
      expired: () => this.set(null),
      map: () => this.mapNow(),
      checkEpoch: () => this.checkEpoch(),
    });
  }

  /** Resolves once the first attempt (probe and map) is over, mapped or not. */
  get ready(): Promise<void> {
    return this.firstAttempt;
  }

  /**
   * Resolves when the first attempt is over or after `maxMs` (default: the probe budget),
   * whichever comes first: a node waits this, briefly, after STUN has answered and before its
   * first publication, so a gateway that answers at once puts the mapped candidate in it (no
   * gateway: the first attempt is over at once).
   */
  settled(maxMs = this.o.client?.probeMs ?? DEFAULT_PROBE_MS): Promise<void> {
    // A deferred start (startAfterMs): the node publishes what it has; the mapping follows.
    if (this.loop.deferred) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, maxMs)));
    return Promise.race([this.firstAttempt, bound]).finally(() => clearTimeout(timer));
  }

  get mapping(): Mapping | null {
    return this.current;
  }

  /** The gateway asked and what each protocol answered at the last probe (null before it). */
  get lastProbe(): { gateway: string | null; probe: Probe | null } {
    return { gateway: this.gw?.address ?? null, probe: this.probed };
  }

  networkChanged(): void {
    if (this.closed) return;
    // The old mapping belongs to the old network (and maybe an old gateway): forget it.
    this.loop.schedule.networkChanged(this.now());
    this.client = null;
    this.set(null);
    void this.loop.step();
  }

  /** Stops, and deletes the mapping (a clean close; bounded by the client's request budget). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    this.listener?.close();
    this.listener = null;
    this.resolveFirst();
    const m = this.current;
    this.current = null;
    if (m && this.client) await this.client.unmap(m);
  }

  private set(m: Mapping | null): void {
    const before = this.current ? formatEndpoint(this.current.externalAddress, this.current.externalPort) : null;
    const after = m ? formatEndpoint(m.externalAddress, m.externalPort) : null;
    this.current = m;
    if (before !== after && !this.closed) this.o.onChange(m);
  }

  /** Listens for the gateway's announcements (one listener, for the current gateway). */
  private listen(gw: Gateway): void {
    if (this.o.announcements === false || this.listeningTo === gw.address) return;
    this.listener?.close();
    this.listeningTo = gw.address;
    this.listener = listenForAnnouncements({
      gateway: gw.address,
      localAddress: gw.localAddress,
      ...this.o.announcements,
      onAnnouncement: () => {
        if (this.closed) return;
        this.log.info({ gateway: gw.address }, 'the gateway announced a restart or a new address: mapping again now');
        this.loop.schedule.announced(this.now());
        void this.loop.step();
      },
    });
  }

  private async mapNow(): Promise<void> {
    try {
      if (!this.client || !this.current) {
        this.gw = (this.o.gateway ?? defaultGateway)();
        if (!this.gw) {
          this.probed = null;
          this.loop.schedule.failed(this.now(), true);
          return;
        }
        this.client = new PortMapClient({ ...this.o.client, gateway: this.gw });
        this.listen(this.gw);
      }
      const client = this.client;
      // A renewal goes to the protocol that made the mapping; a new mapping starts with a probe.
      const probe = this.current && this.probed ? this.probed : await client.probe();
      this.probed = probe;
      // The probe stops at the best protocol; the full picture (for netcheck) comes later.
      void probe.complete.then((full) => this.probed === probe && (this.probed = full));
      const order = this.current ? [this.current.protocol] : preferredProtocols(probe);
      if (await this.tryMap(client, order, probe)) return;
      let nothingAvailable = order.length === 0;
      if (!this.current) {
        // The probe stopped at the best protocol and that one failed to map (or none answered):
        // the others' answers may still offer one.
        const full = await probe.complete;
        this.probed = full;
        const rest = preferredProtocols(full).filter((p) => !order.includes(p));
        if (await this.tryMap(client, rest, full)) return;
        nothingAvailable = preferredProtocols(full).length === 0;
      }
      this.loop.schedule.failed(this.now(), nothingAvailable);
    } finally {
      this.resolveFirst();
    }
  }

  /** Maps with the first of `order` that works; true when done (mapped, or closed meanwhile). */
  private async tryMap(client: PortMapClient, order: readonly PortMapProtocol[], probe: Probe): Promise<boolean> {
    for (const protocol of order) {
      try {
        const m = await client.map(protocol, this.o.internalPort, this.o.lifetimeS ?? MAPPING_LIFETIME_S, probe, this.current ?? undefined);
        if (this.closed) {
          await client.unmap(m);
          return true;
        }
        this.loop.schedule.mapped(this.now(), m.lifetimeS, m.epochS);
        this.log.info({ protocol, external: formatEndpoint(m.externalAddress, m.externalPort), lifetimeS: m.lifetimeS }, 'port mapped');
        this.set(m);
        return true;
      } catch (err) {
        this.log.debug({ protocol, err: (err as Error).message }, 'port mapping failed');
      }
    }
    return false;
  }

  private async checkEpoch(): Promise<void> {
    const m = this.current;
    const gw = this.gw;
    if (!m || !gw || m.protocol === 'upnp') return this.loop.schedule.epochUnknown(this.now());
    const to = { address: gw.address, port: m.protocol === 'pcp' ? (this.o.client?.pcpPort ?? PCP_PORT) : (this.o.client?.natpmpPort ?? NATPMP_PORT) };
    const epoch = await exchange<number>({
      localAddress: gw.localAddress,
      to,
      request: m.protocol === 'pcp' ? encodePcpAnnounce(gw.localAddress) : encodeNatPmpExternalAddressRequest(),
      sendAtMs: [0, 250],
      timeoutMs: 1000,
      decode: (b) => {
        if (m.protocol === 'pcp') {
          const d = decodePcpResponse(b);
          return d?.kind === 'response' ? d.epochS : null;
        }
        const d = decodeNatPmpResponse(b);
        return d ? d.epochS : null;
      },
    });
    if (epoch === null) return this.loop.schedule.epochUnknown(this.now());
    if (this.loop.schedule.epochSeen(this.now(), epoch)) {
      this.log.info({ protocol: m.protocol }, 'the router restarted (its epoch went back): mapping again');
      this.set(null);
      await this.mapNow();
    }
  }
}

// Keeps one mapping of the node's UDP port alive: probes the gateway, maps with the best
// protocol that answered, renews, notices router restarts and network changes, and deletes the
// mapping on a clean close. The decisions are RenewalSchedule's; this is the I/O around it.
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatEndpoint } from '../net/endpoint.js';
import { PortMapClient, preferredProtocols, type Mapping, type PortMapClientOptions, type Probe } from './client.js';
import { defaultGateway, type Gateway } from './gateway.js';
import { RenewalSchedule, type ScheduleOptions } from './schedule.js';
import { encodeNatPmpExternalAddressRequest, decodeNatPmpResponse, NATPMP_PORT } from './natpmp.js';
import { encodePcpAnnounce, decodePcpResponse, PCP_PORT } from './pcp.js';
import { exchange } from './udp-exchange.js';

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
  /** The mapping changed (a new one, a renewal to another address, or gone). */
  readonly onChange: (mapping: Mapping | null) => void;
}

export class PortMapKeeper {
  private readonly schedule: RenewalSchedule;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private closed = false;
  private current: Mapping | null = null;
  private client: PortMapClient | null = null;
  private gw: Gateway | null = null;
  private probed: Probe | null = null;
  private firstAttempt: Promise<void>;
  private resolveFirst!: () => void;

  constructor(private readonly o: PortMapKeeperOptions) {
    this.now = o.now ?? (() => performance.now());
    this.log = o.logger ?? silentLogger;
    this.schedule = new RenewalSchedule(this.now(), o.schedule);
    this.firstAttempt = new Promise((r) => (this.resolveFirst = r));
    this.timer = setInterval(() => void this.step(), o.tickMs ?? 1000);
    this.timer.unref();
    void this.step();
  }

  /** Resolves once the first attempt (probe and map) is over, mapped or not. */
  get ready(): Promise<void> {
    return this.firstAttempt;
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
    this.schedule.networkChanged(this.now());
    this.client = null;
    this.set(null);
    void this.step();
  }

  /** Stops, and deletes the mapping (a clean close; bounded by the client's request budget). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
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

  private async step(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      const now = this.now();
      if (this.schedule.expired(now)) this.set(null);
      const action = this.schedule.due(now);
      if (action === 'map') await this.mapNow();
      else if (action === 'check-epoch') await this.checkEpoch();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'port mapping step failed');
    } finally {
      this.busy = false;
    }
  }

  private async mapNow(): Promise<void> {
    try {
      if (!this.client || !this.current) {
        this.gw = (this.o.gateway ?? defaultGateway)();
        if (!this.gw) {
          this.probed = null;
          this.schedule.failed(this.now(), true);
          return;
        }
        this.client = new PortMapClient({ ...this.o.client, gateway: this.gw });
      }
      const client = this.client;
      // A renewal goes to the protocol that made the mapping; a new mapping starts with a probe.
      const probe = this.current && this.probed ? this.probed : await client.probe();
      this.probed = probe;
      const order = this.current ? [this.current.protocol] : preferredProtocols(probe);
      if (order.length === 0) {
        this.schedule.failed(this.now(), true);
        return;
      }
      for (const protocol of order) {
        try {
          const m = await client.map(protocol, this.o.internalPort, this.o.lifetimeS ?? MAPPING_LIFETIME_S, probe, this.current ?? undefined);
          if (this.closed) {
            await client.unmap(m);
            return;
          }
          this.schedule.mapped(this.now(), m.lifetimeS, m.epochS);
          this.log.info({ protocol, external: formatEndpoint(m.externalAddress, m.externalPort), lifetimeS: m.lifetimeS }, 'port mapped');
          this.set(m);
          return;
        } catch (err) {
          this.log.debug({ protocol, err: (err as Error).message }, 'port mapping failed');
        }
      }
      this.schedule.failed(this.now(), false);
    } finally {
      this.resolveFirst();
    }
  }

  private async checkEpoch(): Promise<void> {
    const m = this.current;
    const gw = this.gw;
    if (!m || !gw || m.protocol === 'upnp') return this.schedule.epochUnknown(this.now());
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
    if (epoch === null) return this.schedule.epochUnknown(this.now());
    if (this.schedule.epochSeen(this.now(), epoch)) {
      this.log.info({ protocol: m.protocol }, 'the router restarted (its epoch went back): mapping again');
      this.set(null);
      await this.mapNow();
    }
  }
}

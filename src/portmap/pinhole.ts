// An IPv6 pinhole for the node's UDP port: a PCP MAP request (RFC 6887 section 11) whose internal
// address is our own global IPv6 address, sent to the IPv6 gateway. There is no NAT66, so the
// router answers with that same address and port: nothing new to publish, but our IPv6 candidate
// becomes reachable unsolicited, as through a full cone, instead of only after we sent to the peer
// first (what a stateful firewall allows). Renewed at half its lifetime and after a router restart
// (RenewalSchedule, as for the IPv4 mapping), deleted on a clean close. Tailscale maps over IPv4
// only; this is the one thing PCP offers that NAT-PMP and UPnP's WANIPConnection cannot.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatEndpoint } from '../net/endpoint.js';
import { PortMapError } from './client.js';
import type { Gateway } from './gateway.js';
import { defaultGateway6 } from './gateway6.js';
import { decodePcpResponse, encodePcpAnnounce, encodePcpMap, pcpResultText, PCP_OP_MAP, PCP_PORT } from './pcp.js';
import type { ScheduleOptions } from './schedule.js';
import { RenewalLoop } from './renewal-loop.js';
import { exchange } from './udp-exchange.js';

export interface Pinhole {
  /** The router that holds it (its IPv6 address on our LAN). */
  readonly gateway: string;
  /** The address and port it opens: our own, as the router confirmed them. */
  readonly address: string;
  readonly port: number;
  readonly lifetimeS: number;
  readonly epochS: number;
  /** Names the pinhole for renewals and the delete (the router refuses others). */
  readonly nonce: Uint8Array;
}

/** What a report says about the pinhole: open (where, for how long), or why not. */
export type PinholeStatus =
  | { readonly opened: true; readonly gateway: string; readonly endpoint: string; readonly lifetimeS: number }
  | { readonly opened: false; readonly gateway: string | null; readonly reason: string };

export const NO_GATEWAY6 = 'no IPv6 default gateway with a global IPv6 address';

export interface PinholeRequestOptions {
  /** The gateway's PCP port (tests: a fake gateway's). */
  readonly pcpPort?: number;
  /** Budget in ms (default 2000; a first request with nothing known uses less). */
  readonly timeoutMs?: number;
}

function sendTimes(timeoutMs: number): number[] {
  // RFC 6887 section 8.1.1 retransmits from 3 s doubling; in a short budget, three early copies.
  return [0, 250, 750, 1750].filter((t) => t < timeoutMs * 0.8).concat(timeoutMs <= 400 ? [Math.round(timeoutMs / 2)] : []);
}

/** Asks for (or renews, given the previous one) a pinhole for `port`. Throws PortMapError('pcp', why). */
export async function requestPinhole(gw: Gateway, port: number, lifetimeS: number, o: PinholeRequestOptions & { readonly previous?: Pinhole } = {}): Promise<Pinhole> {
  if (lifetimeS <= 0) throw new PortMapError('pcp', 'a pinhole needs a lifetime (never a permanent one)');
  const nonce = o.previous?.nonce ?? randomBytes(12);
  const timeoutMs = o.timeoutMs ?? 2000;
  const r = await exchange({
    localAddress: gw.localAddress,
    to: { address: gw.address, port: o.pcpPort ?? PCP_PORT },
    request: encodePcpMap({ clientIp: gw.localAddress, nonce, internalPort: port, suggestedExternalPort: port, suggestedExternalIp: gw.localAddress, lifetimeS }),
    sendAtMs: sendTimes(timeoutMs),
    timeoutMs,
    decode: (b) => {
      const d = decodePcpResponse(b);
      if (!d || d.kind !== 'response' || d.opcode !== PCP_OP_MAP) return d?.kind === 'unsupported-version' ? d : null;
      if (d.map && (!Buffer.from(d.map.nonce).equals(Buffer.from(nonce)) || d.map.internalPort !== port)) return null;
      return d;
    },
  });
  if (!r) throw new PortMapError('pcp', 'no answer');
  if (r.kind !== 'response') throw new PortMapError('pcp', 'the router speaks NAT-PMP, not PCP (no IPv6 pinholes)');
  if (r.result !== 0 || !r.map) throw new PortMapError('pcp', pcpResultText(r.result));
  // A firewall opens our own address and port. Anything else is a NAT66 we did not ask about.
  if (r.map.externalAddress !== gw.localAddress || r.map.externalPort !== port) {
    throw new PortMapError('pcp', `the router opened ${formatEndpoint(r.map.externalAddress, r.map.externalPort)}, not our own address and port (a NAT66?)`);
  }
  return { gateway: gw.address, address: r.map.externalAddress, port, lifetimeS: r.lifetimeS, epochS: r.epochS, nonce };
}

/**
 * Deletes a pinhole (best effort: one the router keeps ends with its lifetime). Returns the
 * router's result code (0: deleted), or null when it did not answer.
 */
export async function deletePinhole(gw: Gateway, p: Pinhole, o: PinholeRequestOptions = {}): Promise<number | null> {
  const timeoutMs = Math.min(o.timeoutMs ?? 500, 500);
  const r = await exchange({
    localAddress: gw.localAddress,
    to: { address: gw.address, port: o.pcpPort ?? PCP_PORT },
    request: encodePcpMap({ clientIp: gw.localAddress, nonce: p.nonce, internalPort: p.port, suggestedExternalPort: 0, suggestedExternalIp: '::', lifetimeS: 0 }),
    sendAtMs: sendTimes(timeoutMs),
    timeoutMs,
    decode: (b) => {
      const d = decodePcpResponse(b);
      return d?.kind === 'response' && d.opcode === PCP_OP_MAP ? d : null;
    },
  });
  return r ? r.result : null;
}

export function pinholeStatus(p: Pinhole): PinholeStatus {
  return { opened: true, gateway: p.gateway, endpoint: formatEndpoint(p.address, p.port), lifetimeS: p.lifetimeS };
}

/** For `traverse netcheck`: can a pinhole be opened for `port`? Opens a short one and deletes it. */
export async function surveyPinhole(port: number, o: PinholeRequestOptions & { readonly gateway?: () => Gateway | null } = {}): Promise<PinholeStatus> {
  const gw = (o.gateway ?? defaultGateway6)();
  if (!gw) return { opened: false, gateway: null, reason: NO_GATEWAY6 };
  try {
    // Short: if the delete is lost, the router forgets it within two minutes anyway.
    const p = await requestPinhole(gw, port, 120, o);
    await deletePinhole(gw, p, o);
    return pinholeStatus(p);
  } catch (err) {
    return { opened: false, gateway: gw.address, reason: (err as Error).message.replace(/^pcp: /, '') };
  }
}

export interface PinholeKeeperOptions {
  readonly internalPort: number;
  /** Where the IPv6 gateway is (default: the machine's IPv6 default route). */
  readonly gateway?: () => Gateway | null;
  readonly pcpPort?: number;
  /** The first request's budget in ms (default 600): a router without PCP must not hold netcheck up long. */
  readonly firstTimeoutMs?: number;
  readonly lifetimeS?: number;
  readonly schedule?: ScheduleOptions;
  readonly now?: () => number;
  readonly tickMs?: number;
  readonly logger?: Logger;
  /** The pinhole opened, moved, or closed. */
  readonly onChange: (p: Pinhole | null) => void;
}

/** Keeps the pinhole open: the I/O around RenewalSchedule, like PortMapKeeper for the IPv4 mapping. */
export class PinholeKeeper {
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly loop: RenewalLoop;
  private closed = false;
  private gw: Gateway | null = null;
  private current: Pinhole | null = null;
  private why: string = NO_GATEWAY6;
  private readonly firstAttempt: Promise<void>;
  private resolveFirst!: () => void;

  constructor(private readonly o: PinholeKeeperOptions) {
    this.now = o.now ?? (() => performance.now());
    this.log = o.logger ?? silentLogger;
    this.firstAttempt = new Promise((r) => (this.resolveFirst = r));
    this.loop = new RenewalLoop({
      now: this.now,
      log: this.log,
      what: 'IPv6 pinhole',
      schedule: o.schedule,
      tickMs: o.tickMs,
      expired: () => this.set(null),
      map: () => this.open(),
      checkEpoch: () => this.checkEpoch(),
    });
  }

  /** Resolves once the first request is over, opened or not. */
  get ready(): Promise<void> {
    return this.firstAttempt;
  }

  get pinhole(): Pinhole | null {
    return this.current;
  }

  get status(): PinholeStatus {
    return this.current ? pinholeStatus(this.current) : { opened: false, gateway: this.gw?.address ?? null, reason: this.why };
  }

  networkChanged(): void {
    if (this.closed) return;
    this.loop.schedule.networkChanged(this.now());
    this.gw = null;
    this.set(null);
    void this.loop.step();
  }

  /** Stops, and deletes the pinhole (a clean close). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loop.stop();
    this.resolveFirst();
    const p = this.current;
    this.current = null;
    if (!p || !this.gw) return;
    const result = await deletePinhole(this.gw, p, { ...(this.o.pcpPort ? { pcpPort: this.o.pcpPort } : {}) }).catch(() => null);
    // miniupnpd 2.3.1 (nftables) loses a pinhole's nonce when it renews it, and then refuses the
    // delete as "not authorized": the pinhole stays until its lifetime ends (README).
    if (result !== 0) this.log.info({ result: result === null ? 'no answer' : pcpResultText(result) }, 'the router did not delete the IPv6 pinhole; it ends with its lifetime');
  }

  private set(p: Pinhole | null): void {
    const changed = (this.current === null) !== (p === null) || (p !== null && this.current !== null && (p.address !== this.current.address || p.port !== this.current.port));
    this.current = p;
    if (changed && !this.closed) this.o.onChange(p);
  }

  private async open(): Promise<void> {
    try {
      if (!this.current || !this.gw) this.gw = (this.o.gateway ?? defaultGateway6)();
      const gw = this.gw;
      if (!gw) {
        this.why = NO_GATEWAY6;
        this.loop.schedule.failed(this.now(), true);
        return;
      }
      const first = !this.current;
      try {
        const p = await requestPinhole(gw, this.o.internalPort, this.o.lifetimeS ?? 7200, {
          ...(this.o.pcpPort ? { pcpPort: this.o.pcpPort } : {}),
          ...(first ? { timeoutMs: this.o.firstTimeoutMs ?? 600 } : {}),
          ...(this.current ? { previous: this.current } : {}),
        });
        if (this.closed) {
          await deletePinhole(gw, p, { ...(this.o.pcpPort ? { pcpPort: this.o.pcpPort } : {}) });
          return;
        }
        this.loop.schedule.mapped(this.now(), p.lifetimeS, p.epochS);
        if (first) this.log.info({ gateway: gw.address, endpoint: formatEndpoint(p.address, p.port), lifetimeS: p.lifetimeS }, 'IPv6 pinhole opened by PCP');
        this.set(p);
      } catch (err) {
        this.why = (err as Error).message.replace(/^pcp: /, '');
        this.log.debug({ err: this.why }, 'IPv6 pinhole failed');
        // No answer at all: probably no PCP here; ask again rarely, like a gateway with nothing to map with.
        this.loop.schedule.failed(this.now(), this.why === 'no answer' && first);
      }
    } finally {
      this.resolveFirst();
    }
  }

  private async checkEpoch(): Promise<void> {
    const gw = this.gw;
    if (!this.current || !gw) return this.loop.schedule.epochUnknown(this.now());
    const epoch = await exchange<number>({
      localAddress: gw.localAddress,
      to: { address: gw.address, port: this.o.pcpPort ?? PCP_PORT },
      request: encodePcpAnnounce(gw.localAddress),
      sendAtMs: [0, 250],
      timeoutMs: 1000,
      decode: (b) => {
        const d = decodePcpResponse(b);
        return d?.kind === 'response' ? d.epochS : null;
      },
    });
    if (epoch === null) return this.loop.schedule.epochUnknown(this.now());
    if (this.loop.schedule.epochSeen(this.now(), epoch)) {
      this.log.info('the router restarted (its PCP epoch went back): opening the IPv6 pinhole again');
      this.set(null);
      await this.open();
    }
  }
}

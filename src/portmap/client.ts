// Asking the gateway for a mapping of one UDP port with PCP, NAT-PMP or UPnP IGD. `probe` asks
// all three at once within a short budget (~250 ms) and says which answered; `map` creates or
// renews a mapping with one of them; `unmap` deletes it. No timers survive a call: renewal is
// the keeper's (keeper.ts), so this file is only the conversation with the router.
import { randomBytes } from 'node:crypto';
import type { Gateway } from './gateway.js';
import { exchange } from './udp-exchange.js';
import { decodeNatPmpResponse, encodeNatPmpExternalAddressRequest, encodeNatPmpMapRequest, natpmpResultText, NATPMP_PORT } from './natpmp.js';
import { decodePcpResponse, encodePcpAnnounce, encodePcpMap, pcpResultText, PCP_OP_ANNOUNCE, PCP_OP_MAP, PCP_PORT } from './pcp.js';
import { fetchWanService, soapCall, ssdpSearch, UpnpError, type UpnpService } from './upnp.js';

export const PROTOCOLS = ['pcp', 'natpmp', 'upnp'] as const;
export type PortMapProtocol = (typeof PROTOCOLS)[number];

/** What one protocol said: available (with the external address when it told one), or why not. */
export type ProtocolStatus =
  | { readonly available: true; readonly externalAddress: string | null }
  | { readonly available: false; readonly reason: string };

export interface Probe {
  readonly pcp: ProtocolStatus;
  readonly natpmp: ProtocolStatus;
  readonly upnp: ProtocolStatus;
  /** Server epochs (s) from the PCP and NAT-PMP answers, to notice a router restart. */
  readonly epochS: { readonly pcp: number | null; readonly natpmp: number | null };
  /** The UPnP service found, for `map`. */
  readonly upnpService: UpnpService | null;
  /**
   * The probe resolves as soon as the best protocol that can answer has answered; the ones it did
   * not wait for read "not waited for". This resolves when all three are over (for reports, and
   * for a fallback when the preferred protocol then fails to map).
   */
  readonly complete: Promise<Probe>;
}

type ProbePart = { readonly status: ProtocolStatus; readonly epochS?: number | null; readonly service?: UpnpService | null };

const NOT_WAITED: ProtocolStatus = { available: false, reason: 'not waited for (a preferred protocol answered first)' };

/**
 * Whether the probe can stop: going down the preference order, every protocol before the first
 * available one has said no. Pure, for tests.
 */
export function probeDecided(parts: Partial<Record<PortMapProtocol, { readonly status: ProtocolStatus }>>): boolean {
  for (const p of PROTOCOLS) {
    const part = parts[p];
    if (!part) return false;
    if (part.status.available) return true;
  }
  return true;
}

function probeOf(parts: Partial<Record<PortMapProtocol, ProbePart>>, complete?: Promise<Probe>): Probe {
  const probe: Probe = {
    pcp: parts.pcp?.status ?? NOT_WAITED,
    natpmp: parts.natpmp?.status ?? NOT_WAITED,
    upnp: parts.upnp?.status ?? NOT_WAITED,
    epochS: { pcp: parts.pcp?.epochS ?? null, natpmp: parts.natpmp?.epochS ?? null },
    upnpService: parts.upnp?.service ?? null,
    // A complete probe is its own completion.
    complete: complete ?? Promise.resolve().then(() => probe),
  };
  return probe;
}

export interface Mapping {
  readonly protocol: PortMapProtocol;
  readonly externalAddress: string;
  readonly externalPort: number;
  readonly internalPort: number;
  readonly lifetimeS: number;
  /** The server's epoch in its answer (PCP, NAT-PMP); null for UPnP. */
  readonly epochS: number | null;
  /** PCP: the nonce naming the mapping (renewals and the delete reuse it). */
  readonly nonce?: Uint8Array;
  readonly upnpService?: UpnpService;
}

export class PortMapError extends Error {
  constructor(
    readonly protocol: PortMapProtocol,
    message: string,
  ) {
    super(`${protocol}: ${message}`);
    this.name = 'PortMapError';
  }
}

export interface PortMapClientOptions {
  readonly gateway: Gateway;
  /** Probe budget in ms (default 250). */
  readonly probeMs?: number;
  /** Per-request budget of map and unmap, in ms (default 2000). */
  readonly requestMs?: number;
  /** Ports on the gateway (tests point these at a fake gateway on loopback). */
  readonly pcpPort?: number;
  readonly natpmpPort?: number;
  readonly ssdpPort?: number;
  /** Whether SSDP also searches the multicast group (default true; loopback tests turn it off). */
  readonly ssdpMulticast?: boolean;
}

const DESCRIPTION = 'traverse';

/** How long the probe waits for the gateway's answers (ms). */
export const DEFAULT_PROBE_MS = 250;

export class PortMapClient {
  private readonly gw: Gateway;
  private readonly probeMs: number;
  private readonly requestMs: number;

  constructor(private readonly o: PortMapClientOptions) {
    this.gw = o.gateway;
    this.probeMs = o.probeMs ?? DEFAULT_PROBE_MS;
    this.requestMs = o.requestMs ?? 2000;
  }

  private udp<T>(port: number, request: Uint8Array, decode: (b: Buffer) => T | null, timeoutMs: number): Promise<T | null> {
    // RFC 6886 section 3.1 retransmits at 250 ms doubling; within a short budget, twice early.
    const sendAtMs = [0, 250, 750, 1750].filter((t) => t < timeoutMs * 0.8);
    if (timeoutMs <= 300) sendAtMs.push(Math.round(timeoutMs / 2));
    return exchange({ localAddress: this.gw.localAddress, to: { address: this.gw.address, port }, request, sendAtMs, timeoutMs, decode });
  }

  /**
   * Asks all three at once; each has `probeMs` to answer (UPnP: its SSDP answer). Resolves as soon
   * as the outcome cannot get better (PCP answered; or NAT-PMP answered and PCP said no...), so a
   * gateway that answers at once costs one round trip, not the whole budget.
   */
  probe(): Promise<Probe> {
    const parts: Partial<Record<PortMapProtocol, ProbePart>> = {};
    // A protocol whose probe fails outright (a socket error) is one more that did not answer.
    const failed = (err: unknown): ProbePart => ({ status: { available: false, reason: (err as Error).message } });
    const asks: Record<PortMapProtocol, Promise<ProbePart>> = {
      pcp: this.probePcp().catch(failed),
      natpmp: this.probeNatPmp().catch(failed),
      upnp: this.probeUpnp().catch(failed),
    };
    const complete = Promise.all(PROTOCOLS.map((p) => asks[p])).then(([pcp, natpmp, upnp]) => probeOf({ pcp, natpmp, upnp }));
    return new Promise((resolve) => {
      for (const p of PROTOCOLS) {
        void asks[p].then((part) => {
          parts[p] = part;
          if (probeDecided(parts)) resolve(Object.keys(parts).length === PROTOCOLS.length ? complete : probeOf({ ...parts }, complete));
        });
      }
    });
  }

  private async probePcp(): Promise<{ status: ProtocolStatus; epochS: number | null }> {
    const r = await this.udp(this.o.pcpPort ?? PCP_PORT, encodePcpAnnounce(this.gw.localAddress), (b) => {
      const d = decodePcpResponse(b);
      return d && (d.kind === 'unsupported-version' || d.opcode === PCP_OP_ANNOUNCE) ? d : null;
    }, this.probeMs);
    if (!r) return { status: { available: false, reason: 'no answer' }, epochS: null };
    if (r.kind === 'unsupported-version') return { status: { available: false, reason: 'the router speaks NAT-PMP, not PCP' }, epochS: null };
    if (r.result !== 0) return { status: { available: false, reason: pcpResultText(r.result) }, epochS: r.epochS };
    return { status: { available: true, externalAddress: null }, epochS: r.epochS };
  }

  private async probeNatPmp(): Promise<{ status: ProtocolStatus; epochS: number | null }> {
    const r = await this.udp(this.o.natpmpPort ?? NATPMP_PORT, encodeNatPmpExternalAddressRequest(), (b) => {
      const d = decodeNatPmpResponse(b);
      return d?.op === 'external-address' ? d : null;
    }, this.probeMs);
    if (!r) return { status: { available: false, reason: 'no answer' }, epochS: null };
    if (r.result !== 0 || r.op !== 'external-address') return { status: { available: false, reason: natpmpResultText(r.result) }, epochS: r.epochS };
    return { status: { available: true, externalAddress: r.externalAddress }, epochS: r.epochS };
  }

  private async probeUpnp(): Promise<{ status: ProtocolStatus; service: UpnpService | null }> {
    const location = await ssdpSearch({
      localAddress: this.gw.localAddress,
      gateway: this.gw.address,
      timeoutMs: this.probeMs,
      ...(this.o.ssdpPort !== undefined ? { port: this.o.ssdpPort } : {}),
      ...(this.o.ssdpMulticast !== undefined ? { multicast: this.o.ssdpMulticast } : {}),
    });
    if (!location) return { status: { available: false, reason: 'no answer' }, service: null };
    try {
      const service = await fetchWanService(location, this.gw.address, this.requestMs);
      return { status: { available: true, externalAddress: null }, service };
    } catch (err) {
      return { status: { available: false, reason: (err as Error).message }, service: null };
    }
  }

  /** UPnP's external address (GetExternalIPAddress), for reports. */
  async upnpExternalAddress(service: UpnpService): Promise<string | null> {
    const v = await soapCall(service, 'GetExternalIPAddress', [], this.requestMs);
    return v.get('NewExternalIPAddress') || null;
  }

  /**
   * Creates (or renews, given the previous mapping) a mapping of `internalPort` for `lifetimeS`
   * seconds. Throws PortMapError with the router's reason.
   */
  async map(protocol: PortMapProtocol, internalPort: number, lifetimeS: number, probe: Probe, previous?: Mapping): Promise<Mapping> {
    if (lifetimeS <= 0) throw new PortMapError(protocol, 'a mapping needs a lifetime (never a permanent one)');
    switch (protocol) {
      case 'pcp':
        return this.mapPcp(internalPort, lifetimeS, previous);
      case 'natpmp':
        return this.mapNatPmp(internalPort, lifetimeS, previous);
      case 'upnp': {
        const service = previous?.upnpService ?? probe.upnpService;
        if (!service) throw new PortMapError('upnp', 'no IGD found');
        return this.mapUpnp(service, internalPort, lifetimeS, previous);
      }
    }
  }

  private async mapPcp(internalPort: number, lifetimeS: number, previous?: Mapping): Promise<Mapping> {
    const nonce = previous?.nonce ?? randomBytes(12);
    const req = encodePcpMap({
      clientIp: this.gw.localAddress,
      nonce,
      internalPort,
      suggestedExternalPort: previous?.externalPort ?? internalPort,
      suggestedExternalIp: previous?.externalAddress ?? '0.0.0.0',
      lifetimeS,
    });
    const r = await this.udp(this.o.pcpPort ?? PCP_PORT, req, (b) => {
      const d = decodePcpResponse(b);
      if (!d || d.kind !== 'response' || d.opcode !== PCP_OP_MAP) return null;
      // Only the answer to this mapping: same nonce and internal port (RFC 6887 section 11.3).
      if (d.map && (!Buffer.from(d.map.nonce).equals(Buffer.from(nonce)) || d.map.internalPort !== internalPort)) return null;
      return d;
    }, this.requestMs);
    if (!r) throw new PortMapError('pcp', 'no answer');
    if (r.kind !== 'response' || r.result !== 0 || !r.map) throw new PortMapError('pcp', r.kind === 'response' ? pcpResultText(r.result) : 'unsupported version');
    if (r.map.externalPort === 0 || r.map.externalAddress.includes(':')) throw new PortMapError('pcp', 'the router gave no usable IPv4 address and port');
    return { protocol: 'pcp', externalAddress: r.map.externalAddress, externalPort: r.map.externalPort, internalPort, lifetimeS: r.lifetimeS, epochS: r.epochS, nonce };
  }

  private async mapNatPmp(internalPort: number, lifetimeS: number, previous?: Mapping): Promise<Mapping> {
    const port = this.o.natpmpPort ?? NATPMP_PORT;
    const [ext, r] = await Promise.all([
      this.udp(port, encodeNatPmpExternalAddressRequest(), (b) => {
        const d = decodeNatPmpResponse(b);
        return d?.op === 'external-address' ? d : null;
      }, this.requestMs),
      this.udp(port, encodeNatPmpMapRequest({ internalPort, suggestedExternalPort: previous?.externalPort ?? internalPort, lifetimeS }), (b) => {
        const d = decodeNatPmpResponse(b);
        return d?.op === 'map-udp' && (d.result !== 0 || d.internalPort === internalPort) ? d : null;
      }, this.requestMs),
    ]);
    if (!r || r.op !== 'map-udp') throw new PortMapError('natpmp', 'no answer');
    if (r.result !== 0) throw new PortMapError('natpmp', natpmpResultText(r.result));
    if (!ext || ext.op !== 'external-address' || ext.result !== 0 || !ext.externalAddress) throw new PortMapError('natpmp', 'the router did not say its external address');
    if (r.externalPort === 0) throw new PortMapError('natpmp', 'the router gave no external port');
    return { protocol: 'natpmp', externalAddress: ext.externalAddress, externalPort: r.externalPort, internalPort, lifetimeS: r.lifetimeS, epochS: r.epochS };
  }

  private async mapUpnp(service: UpnpService, internalPort: number, lifetimeS: number, previous?: Mapping): Promise<Mapping> {
    const want = previous?.externalPort ?? internalPort;
    const args = (ext: number): [string, string | number][] => [
      ['NewRemoteHost', ''],
      ['NewExternalPort', ext],
      ['NewProtocol', 'UDP'],
      ['NewInternalPort', internalPort],
      ['NewInternalClient', this.gw.localAddress],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', DESCRIPTION],
      ['NewLeaseDuration', lifetimeS],
    ];
    let externalPort = want;
    try {
      if (service.serviceType.endsWith(':2')) {
        const v = await soapCall(service, 'AddAnyPortMapping', args(want), this.requestMs);
        externalPort = Number(v.get('NewReservedPort') ?? want);
      } else {
        try {
          await soapCall(service, 'AddPortMapping', args(want), this.requestMs);
        } catch (err) {
          // 718: the port is taken (by someone else); try one random port instead.
          if (!(err instanceof UpnpError) || err.code !== 718 || previous) throw err;
          externalPort = 1024 + (randomBytes(2).readUInt16BE(0) % 64000);
          await soapCall(service, 'AddPortMapping', args(externalPort), this.requestMs);
        }
      }
      const address = await this.upnpExternalAddress(service);
      if (!address) throw new UpnpError('the router did not say its external address');
      if (!Number.isInteger(externalPort) || externalPort <= 0 || externalPort > 65535) throw new UpnpError('the router gave no usable port');
      return { protocol: 'upnp', externalAddress: address, externalPort, internalPort, lifetimeS, epochS: null, upnpService: service };
    } catch (err) {
      const e = err as UpnpError;
      // 725: OnlyPermanentLeasesSupported. A permanent mapping outlives us: refused on purpose.
      throw new PortMapError('upnp', e.code === 725 ? 'the router offers only permanent mappings, which Traverse does not make' : e.message);
    }
  }

  /** Deletes a mapping (best effort: a router that does not answer keeps it until it expires). */
  async unmap(m: Mapping): Promise<void> {
    try {
      switch (m.protocol) {
        case 'pcp':
          await this.udp(this.o.pcpPort ?? PCP_PORT, encodePcpMap({ clientIp: this.gw.localAddress, nonce: m.nonce ?? new Uint8Array(12), internalPort: m.internalPort, suggestedExternalPort: 0, suggestedExternalIp: '0.0.0.0', lifetimeS: 0 }), (b) => decodePcpResponse(b), Math.min(this.requestMs, 500));
          return;
        case 'natpmp':
          await this.udp(this.o.natpmpPort ?? NATPMP_PORT, encodeNatPmpMapRequest({ internalPort: m.internalPort, suggestedExternalPort: 0, lifetimeS: 0 }), (b) => decodeNatPmpResponse(b), Math.min(this.requestMs, 500));
          return;
        case 'upnp':
          if (m.upnpService) await soapCall(m.upnpService, 'DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', m.externalPort], ['NewProtocol', 'UDP']], Math.min(this.requestMs, 1000));
          return;
      }
    } catch {
      // The mapping ends with its lifetime anyway.
    }
  }
}

/** Preference among the protocols that answered: PCP, then NAT-PMP, then UPnP (the costliest). */
export function preferredProtocols(p: Probe): PortMapProtocol[] {
  return PROTOCOLS.filter((k) => p[k].available);
}

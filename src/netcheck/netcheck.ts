// Netcheck: what the NAT in front of a socket does, learned from STUN servers over that very socket
// (the socket the node uses for peers: a mapping belongs to a socket, so a check made on another
// socket would describe another mapping). The caller owns the socket and routes datagrams: STUN
// responses to its StunClient, and everything to Netchecker.handleDatagram, which picks out the
// hairpin probe.
//
// The order of probes matters (RFC 5780 section 4): filtering is tested while we have sent only to
// the server's primary address, before the mapping tests send to its other address and would
// open our own NAT's filter for it.
import { randomBytes } from 'node:crypto';
import { encodeMessage, looksLikeStun, METHOD_BINDING } from '../stun/index.js';
import { StunClient, StunErrorResponse, systemClock, type BindingResult, type Clock, type StunTarget } from '../stun/client.js';
import type { TransportAddress } from '../stun/attributes.js';
import { formatEndpoint } from '../net/endpoint.js';
import { interfaceAddresses } from '../net/interfaces.js';
import { classifyFiltering, classifyMapping, mappingVariesByDestIP } from './classify.js';
import type { NatBehaviour, NetcheckReport, ServerReport } from './report.js';
import { judgeMapping, type PortMappingReport } from '../portmap/report.js';
import type { PortMapFindings } from '../portmap/survey.js';

export interface NetcheckSocket {
  /** A STUN client that the socket's owner feeds with this socket's datagrams. */
  readonly stun: StunClient;
  send(buf: Uint8Array, port: number, address: string): void;
  /** The socket's bound address and port. */
  local(): { address: string; port: number } | null;
}

export interface NetcheckOptions {
  /** Total time budget in ms (default 3000). Blocked UDP returns within it. */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /** Progress messages for a terminal ("probing 3 STUN servers"). */
  readonly onProgress?: (message: string) => void;
  /** The machine's interface addresses (to tell whether we are behind a NAT); os by default. */
  readonly localAddresses?: () => readonly string[];
  /** What port mapping offers, looked at while STUN runs; none: the report's portMapping is null. */
  readonly portMapping?: () => Promise<PortMapFindings>;
}

const fmt = (a: TransportAddress): string => formatEndpoint(a.address, a.port);

interface Answer {
  readonly target: StunTarget;
  readonly result: BindingResult | null;
  readonly error: string | null;
}

export class Netchecker {
  private readonly hairpinWaiters = new Map<string, () => void>();

  constructor(
    private readonly sockets: { readonly v4?: NetcheckSocket; readonly v6?: NetcheckSocket },
    private readonly options: NetcheckOptions = {},
  ) {}

  /** Offer every datagram the socket receives; true if it was our hairpin probe coming back. */
  handleDatagram(buf: Uint8Array): boolean {
    if (this.hairpinWaiters.size === 0 || !looksLikeStun(buf)) return false;
    const key = Buffer.from(buf.buffer, buf.byteOffset + 8, 12).toString('latin1');
    const w = this.hairpinWaiters.get(key);
    if (!w) return false;
    w();
    return true;
  }

  async run(servers: readonly StunTarget[], overrides: { readonly timeoutMs?: number } = {}): Promise<NetcheckReport> {
    const clock = this.options.clock ?? systemClock;
    const started = clock.now();
    const budget = overrides.timeoutMs ?? this.options.timeoutMs ?? 3000;
    const deadline = started + budget;
    const remaining = (): number => Math.max(0, deadline - clock.now());
    const progress = this.options.onProgress ?? (() => undefined);

    // 1. Every server at once; most of the budget, since blocked UDP shows up as silence here.
    progress(`probing ${servers.length} STUN server${servers.length === 1 ? '' : 's'}`);
    const portMapping = this.options.portMapping?.().catch(() => null) ?? Promise.resolve(null);
    const firstPhase = Math.max(1, Math.round(budget * 0.6));
    const answers: Answer[] = await Promise.all(
      servers.map(async (target): Promise<Answer> => {
        const sock = target.address.includes(':') ? this.sockets.v6 : this.sockets.v4;
        if (!sock) return { target, result: null, error: `no IPv${target.address.includes(':') ? 6 : 4} socket` };
        try {
          return { target, result: await sock.stun.binding(target, { timeoutMs: firstPhase }), error: null };
        } catch (err) {
          return { target, result: null, error: describeError(err) };
        }
      }),
    );

    const answered = answers.filter((a): a is Answer & { result: BindingResult } => a.result !== null);
    const byLatency = [...answered].sort((a, b) => a.result.rttMs - b.result.rttMs);
    const v4 = byLatency.filter((a) => a.result.mapped.family === 4);
    const v6 = byLatency.filter((a) => a.result.mapped.family === 6);
    const preferred = byLatency[0] ?? null;
    const globalV4 = v4[0]?.result.mapped ?? null;
    const globalV6 = v6[0]?.result.mapped ?? null;
    const localAddrs = (this.options.localAddresses ?? interfaceAddresses)();
    const behindNat = globalV4 ? !localAddrs.includes(globalV4.address) : globalV6 ? !localAddrs.includes(globalV6.address) : null;

    const seen = answered.map((a) => ({ serverIp: a.target.address, mapped: fmt(a.result.mapped) }));
    let mapping: NatBehaviour = 'unknown';
    let filtering: NatBehaviour = 'unknown';
    let hairpinning: boolean | null = null;

    const rfc5780 = v4.find((a) => a.result.otherAddress !== null && a.result.otherAddress.address !== a.target.address);
    const sock4 = this.sockets.v4;
    if (sock4 && (rfc5780 || (globalV4 && behindNat))) {
      const rtt = rfc5780?.result.rttMs ?? v4[0]?.result.rttMs ?? 50;
      const probeWindow = (): number => Math.min(remaining(), Math.max(300, Math.min(1000, 4 * rtt + 200)));
      const quick = (): { timeoutMs: number; rtoMs: number } => {
        const t = probeWindow();
        return { timeoutMs: t, rtoMs: Math.max(50, Math.floor(t / 4)) };
      };

      // 2. Filtering and hairpinning, having sent only to primary addresses so far.
      progress('testing NAT filtering and hairpinning');
      const [viaOtherIpAndPort, viaOtherPort, hairpin] = await Promise.all([
        rfc5780 ? answeredWith(sock4.stun, rfc5780.target, { changeIp: true, changePort: true }, quick()) : Promise.resolve(null),
        rfc5780 ? answeredWith(sock4.stun, rfc5780.target, { changeIp: false, changePort: true }, quick()) : Promise.resolve(null),
        globalV4 && behindNat ? this.hairpinProbe(sock4, globalV4, probeWindow(), clock) : Promise.resolve(null),
      ]);
      filtering = classifyFiltering(viaOtherIpAndPort, viaOtherPort);
      hairpinning = hairpin;

      // 3. Mapping: the same socket towards the server's other IP, with each port.
      if (rfc5780 && remaining() > 0) {
        progress('testing NAT mapping');
        const other = rfc5780.result.otherAddress!;
        const [t2, t3] = await Promise.all([
          mappedFrom(sock4.stun, { address: other.address, port: rfc5780.target.port }, quick()),
          mappedFrom(sock4.stun, { address: other.address, port: other.port }, quick()),
        ]);
        mapping = classifyMapping(fmt(rfc5780.result.mapped), t2, t3);
        if (t2) seen.push({ serverIp: other.address, mapped: t2 });
      }
    }

    const local = sock4?.local() ?? this.sockets.v6?.local() ?? null;
    const servers_: ServerReport[] = answers.map((a) => ({
      address: formatEndpoint(a.target.address, a.target.port),
      latencyMs: a.result ? round(a.result.rttMs) : null,
      mapped: a.result ? fmt(a.result.mapped) : null,
      error: a.error,
      otherAddress: a.result?.otherAddress ? fmt(a.result.otherAddress) : null,
    }));
    return {
      udp: answered.length > 0,
      ipv4: v4.length > 0,
      ipv6: v6.length > 0,
      globalV4: globalV4 ? fmt(globalV4) : null,
      globalV6: globalV6 ? fmt(globalV6) : null,
      publicAddresses: [...new Set(seen.map((s) => s.mapped))],
      mappingVariesByDestIP: mappingVariesByDestIP(seen),
      mapping,
      filtering,
      hairpinning,
      behindNat,
      preferredServer: preferred ? formatEndpoint(preferred.target.address, preferred.target.port) : null,
      local: local ? formatEndpoint(local.address, local.port) : null,
      servers: servers_,
      portMapping: portMappingReport(await portMapping, seen.map((x) => x.mapped.slice(0, x.mapped.lastIndexOf(':')))),
      durationMs: round(clock.now() - started),
    };
  }

  /** Sends a Binding request to our own public address; true if it comes back to this socket. */
  private hairpinProbe(sock: NetcheckSocket, publicAddr: TransportAddress, windowMs: number, clock: Clock): Promise<boolean> {
    const tid = randomBytes(12);
    const key = tid.toString('latin1');
    const probe = encodeMessage({ method: METHOD_BINDING, cls: 'request', transactionId: tid, attributes: [] }, { fingerprint: true });
    return new Promise<boolean>((resolve) => {
      const timers: unknown[] = [];
      const finish = (ok: boolean): void => {
        this.hairpinWaiters.delete(key);
        for (const t of timers) clock.clearTimeout(t);
        resolve(ok);
      };
      this.hairpinWaiters.set(key, () => finish(true));
      // Three copies across the window, in case one is lost.
      for (const at of [0, windowMs / 4, windowMs / 2]) {
        timers.push(clock.setTimeout(() => sendQuietly(sock, probe, publicAddr), at));
      }
      timers.push(clock.setTimeout(() => finish(false), windowMs));
    });
  }
}

/** The findings with the mapping judged against the public addresses STUN saw. */
function portMappingReport(f: PortMapFindings | null, stunIps: readonly string[]): PortMappingReport | null {
  if (!f) return null;
  const judged = f.mapping ? judgeMapping(f.mapping.externalAddress, [...new Set(stunIps)]) : { trusted: null, reason: null };
  return {
    gateway: f.gateway,
    pcp: f.pcp,
    natpmp: f.natpmp,
    upnp: f.upnp,
    mapping: f.mapping ? { protocol: f.mapping.protocol, external: formatEndpoint(f.mapping.externalAddress, f.mapping.externalPort), lifetimeS: f.mapping.lifetimeS } : null,
    trusted: judged.trusted,
    untrustedReason: judged.reason,
  };
}

function sendQuietly(sock: NetcheckSocket, buf: Uint8Array, to: TransportAddress): void {
  try {
    sock.send(buf, to.port, to.address);
  } catch {
    // A send error (no route) means no hairpin; the timeout reports it.
  }
}

/** Whether a CHANGE-REQUEST Binding is answered at all (from wherever the server sends it). */
async function answeredWith(
  stun: StunClient,
  target: StunTarget,
  change: { changeIp: boolean; changePort: boolean },
  timing: { timeoutMs: number; rtoMs: number },
): Promise<boolean | null> {
  if (timing.timeoutMs <= 0) return null;
  try {
    await stun.binding(target, { attributes: [{ type: 'CHANGE-REQUEST', ...change }], ...timing });
    return true;
  } catch (err) {
    // A server that refuses CHANGE-REQUEST tells us nothing about our NAT.
    return err instanceof StunErrorResponse ? null : false;
  }
}

async function mappedFrom(stun: StunClient, target: StunTarget, timing: { timeoutMs: number; rtoMs: number }): Promise<string | null> {
  if (timing.timeoutMs <= 0) return null;
  try {
    return fmt((await stun.binding(target, timing)).mapped);
  } catch {
    return null;
  }
}

function describeError(err: unknown): string {
  if (err instanceof StunErrorResponse) return `error ${err.code}${err.reason ? ` ${err.reason}` : ''}`;
  if (err instanceof Error && err.name === 'StunTimeoutError') return 'timeout';
  return err instanceof Error ? err.message : String(err);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

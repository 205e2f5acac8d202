// Driving a udp-peer.js inside a lab namespace from a test: ask for its mapping, send, and wait
// for what it reports.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab, LabProcess } from './lab.js';

export type PeerEvent =
  | { event: 'listening'; port: number }
  | { event: 'mapped'; address: string }
  | { event: 'stun-timeout'; server: string }
  | { event: 'recv'; from: string; data: string };

const SCRIPT = fileURLToPath(new URL('./udp-peer.js', import.meta.url));

export class UdpPeer {
  readonly events: PeerEvent[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly proc: LabProcess) {
    if (!proc.stdout) throw new Error('udp peer has no stdout');
    createInterface({ input: proc.stdout }).on('line', (line) => {
      this.events.push(JSON.parse(line) as PeerEvent);
      for (const w of this.waiters) w();
    });
  }

  /** Starts a peer on `host` with a socket bound to `port` (0 = ephemeral), IPv4 or IPv6. */
  static async start(lab: Lab, host: string, port = 0, family: 4 | 6 = 4): Promise<UdpPeer> {
    const p = new UdpPeer(lab.spawn(host, process.execPath, [SCRIPT, String(port), ...(family === 6 ? ['6'] : [])]));
    await p.waitFor((e) => e.event === 'listening', 5000);
    return p;
  }

  private command(o: Record<string, string>): void {
    this.proc.stdin?.write(JSON.stringify(o) + '\n');
  }

  /** Resolves with the first event matching `pred` (already seen or future); rejects after timeoutMs. */
  waitFor<E extends PeerEvent>(pred: (e: PeerEvent) => e is E, timeoutMs: number): Promise<E>;
  waitFor(pred: (e: PeerEvent) => boolean, timeoutMs: number): Promise<PeerEvent>;
  waitFor(pred: (e: PeerEvent) => boolean, timeoutMs: number): Promise<PeerEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.find(pred);
        if (!hit) return false;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(hit);
        return true;
      };
      const waiter = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`udp peer: no matching event in ${timeoutMs} ms; saw ${JSON.stringify(this.events)}`));
      }, timeoutMs);
      if (!check()) this.waiters.push(waiter);
    });
  }

  /** The peer's server-reflexive address as `server` ("ip:port") sees it; undefined on timeout. */
  async mappedVia(server: string): Promise<string | undefined> {
    const before = this.events.length;
    this.command({ cmd: 'stun', server });
    const e = await this.waitFor((x) => this.events.indexOf(x) >= before && (x.event === 'mapped' || x.event === 'stun-timeout'), 5000);
    return e.event === 'mapped' ? e.address : undefined;
  }

  send(to: string, data: string): void {
    this.command({ cmd: 'send', to, data });
  }

  /** Whether a datagram with `data` arrived (from anyone), waiting up to timeoutMs. */
  async received(data: string, timeoutMs: number): Promise<{ from: string } | undefined> {
    try {
      const e = await this.waitFor((x): x is Extract<PeerEvent, { event: 'recv' }> => x.event === 'recv' && x.data === data, timeoutMs);
      return { from: e.from };
    } catch {
      return undefined;
    }
  }
}

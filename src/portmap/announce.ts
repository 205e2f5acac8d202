// Gateway announcements: a PCP server sends an unsolicited ANNOUNCE (RFC 6887 section 14.1.1),
// and a NAT-PMP gateway a public-address notification (RFC 6886 section 3.2.1), to 224.0.0.1:5350
// when it starts or its external address changes. miniupnpd sends the PCP one at start. Hearing
// one lets a node re-map at once instead of at its next epoch check (a minute later).
//
// An announcement changes nothing by itself: it only makes the keeper ask the gateway now (a
// renewal, or a map when it holds nothing), which it would do later anyway. So a forged one
// costs at most a request to our own gateway, and only one per `minIntervalMs`: only the known
// gateway's address is heard, and at a bounded rate.
import { createSocket, type Socket } from 'node:dgram';
import { decodeNatPmpResponse } from './natpmp.js';
import { decodePcpResponse, PCP_OP_ANNOUNCE } from './pcp.js';

export const ANNOUNCE_GROUP = '224.0.0.1';
export const ANNOUNCE_PORT = 5350;

/** The epoch an announcement carries, or null for anything that is not a successful one. */
export function parseAnnouncement(buf: Uint8Array): { protocol: 'pcp' | 'natpmp'; epochS: number } | null {
  if (buf.length > 0 && buf[0] === 0) {
    const d = decodeNatPmpResponse(buf);
    return d?.op === 'external-address' && d.result === 0 ? { protocol: 'natpmp', epochS: d.epochS } : null;
  }
  const d = decodePcpResponse(buf);
  return d?.kind === 'response' && d.opcode === PCP_OP_ANNOUNCE && d.result === 0 ? { protocol: 'pcp', epochS: d.epochS } : null;
}

/** Which announcements to act on: from the gateway only, well-formed, at most one per interval. Pure. */
export class AnnouncementGate {
  private lastAt = -Infinity;

  constructor(
    private readonly gateway: string,
    private readonly minIntervalMs = 1000,
  ) {}

  accept(from: string, buf: Uint8Array, now: number): boolean {
    if (from !== this.gateway) return false;
    if (parseAnnouncement(buf) === null) return false;
    if (now - this.lastAt < this.minIntervalMs) return false;
    this.lastAt = now;
    return true;
  }
}

export interface AnnouncementListenerOptions {
  readonly gateway: string;
  /** Our address on the gateway's LAN: the group is joined on that interface only. */
  readonly localAddress: string;
  readonly onAnnouncement: () => void;
  /** Where to listen (tests: 127.0.0.1 and a free port); default 224.0.0.1:5350. */
  readonly address?: string;
  readonly port?: number;
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * Listens for the gateway's announcements until closed. Failing to listen (the port is not ours
 * to take, no multicast) is not an error: the keeper's epoch checks still notice a restart.
 */
export function listenForAnnouncements(o: AnnouncementListenerOptions): { close(): void } {
  const gate = new AnnouncementGate(o.gateway, o.minIntervalMs);
  const now = o.now ?? (() => performance.now());
  const address = o.address ?? ANNOUNCE_GROUP;
  // reuseAddr: every node on the machine hears the gateway, not just the first to bind.
  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  let closed = false;
  sock.on('error', () => close());
  sock.on('message', (msg, rinfo) => {
    if (gate.accept(rinfo.address, msg, now())) o.onAnnouncement();
  });
  // Bound to the group address, the socket gets only datagrams sent to the group (not unicast to 5350).
  sock.bind(o.port ?? ANNOUNCE_PORT, address, () => {
    if (address !== ANNOUNCE_GROUP) return;
    try {
      sock.addMembership(ANNOUNCE_GROUP, o.localAddress);
    } catch {
      // All hosts are in 224.0.0.1 on every multicast interface already; joining is belt and braces.
    }
  });
  function close(): void {
    if (closed) return;
    closed = true;
    try {
      sock.close();
    } catch {
      /* already closed */
    }
  }
  return { close };
}

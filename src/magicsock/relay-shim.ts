// Carries a peer's UDX packets over the relay. A UDX stream can only send to a UDP address, so
// for a relayed path it is pointed at this shim: a loopback UDP socket (one per peer) that hands
// what our UDX socket sends it to the relay, and sends what the peer relays back into our UDX
// socket. UDX matches packets to streams by stream id, not by source, so the stream takes them.
import { createSocket, type Socket } from 'node:dgram';

/**
 * How relayed datagrams leave this node: the coordinator's WebSocket, above this layer. Disco
 * messages for the relay and the shims' UDX packets both go out through it. False: not sent.
 */
export interface RelayTransport {
  send(peerKey: string, payload: Uint8Array): boolean;
}

const LOOPBACK = '127.0.0.1';
/** Packets relayed to us before the shim is bound wait here, up to this many. */
const MAX_EARLY = 64;
/**
 * The shim's socket buffers. UDX sends a relayed stream's window to the shim in bursts; with the
 * default (about 200 KiB, some 90 packets of kernel memory) a burst overflowed it while the
 * event loop was busy, and the losses cut UDX's window (3% of packets in the lab, half the rate).
 */
const SHIM_BUFFER_BYTES = 4 << 20;

export class RelayShim {
  private readonly socket: Socket;
  private bound = false;
  private early: Buffer[] = [];
  private closed = false;
  readonly ready: Promise<void>;

  constructor(
    private readonly peerKey: string,
    private readonly relay: RelayTransport,
    /** Our UDX socket's port; it listens on all addresses, loopback included. */
    private readonly udxPort: number,
  ) {
    this.socket = createSocket('udp4');
    this.socket.on('error', () => undefined);
    this.socket.on('message', (msg, rinfo) => {
      // Only our own UDX socket may use the shim: anything else on this machine is ignored.
      if (rinfo.port !== this.udxPort || rinfo.address !== LOOPBACK) return;
      this.relay.send(this.peerKey, msg);
    });
    this.ready = new Promise((resolve) => {
      this.socket.bind(0, LOOPBACK, () => {
        this.bound = true;
        try {
          this.socket.setRecvBufferSize(SHIM_BUFFER_BYTES);
          this.socket.setSendBufferSize(SHIM_BUFFER_BYTES);
        } catch {
          /* keep the defaults (capped by net.core.rmem_max) */
        }
        for (const b of this.early) this.inject(b);
        this.early = [];
        resolve();
      });
    });
  }

  /** The address UDX streams send to for this peer's relayed path. */
  get address(): { host: string; port: number } {
    return { host: LOOPBACK, port: this.socket.address().port };
  }

  /** A UDX packet the peer sent us through the relay. */
  deliver(packet: Buffer): void {
    if (this.closed) return;
    if (!this.bound) {
      if (this.early.length < MAX_EARLY) this.early.push(packet);
      return;
    }
    this.inject(packet);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  private inject(packet: Buffer): void {
    this.socket.send(packet, this.udxPort, LOOPBACK, () => undefined);
  }
}

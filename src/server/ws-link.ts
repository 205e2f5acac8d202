// How the hub reaches a node connected to this process: its WebSocket. One small object per
// connection with its methods on the prototype, rather than four closures and their context each
// (a replica holds thousands of connections; server.ts makes one per connection).
import type { WebSocket } from 'ws';
import { truncate, type Peer, type PeerLink } from './hub.js';

export class WebSocketLink implements PeerLink {
  /** Set once the Peer that uses this link is made (the Peer takes the link in its constructor). */
  peer!: Peer;

  constructor(
    private readonly ws: WebSocket,
    /** The server ends the connection: called before the close frame goes (server.ts records why). */
    private readonly ending: (peer: Peer, reason: string) => void,
    /** The node asked for relay batches and its config said yes (coordination/relay-batch.ts). */
    readonly relayBatches = false,
  ) {}

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendBinary(frame: Buffer): void {
    this.ws.send(frame, { binary: true });
  }

  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    this.ending(this.peer, reason);
    this.ws.close(code, truncate(reason));
  }
}

// Moving a stream to a new UDX carrier. When the client's path to the agent changes (relay ->
// direct, or a dead direct path -> relay), or a TCP lane that carried the stream dies, the client
// makes a new UDX stream and asks the agent to carry the stream on it:
//   client: carrier {sid, its new UDX stream id}        (resent until answered, within a deadline)
//   agent:  carrier-ack {sid, its new UDX stream id, the client's id}
// Both connect the new carriers over the new path, the session resends what was not acknowledged,
// and the old carriers are retired a little later: the stream goes on without a reset or a lost byte.
import type { Path } from '../net/path.js';
import type { Carrier, CarrierAck } from './control.js';
import { Resend } from './resend.js';
import type { StreamContext } from './stream-context.js';
import { streamKey, type OpenerRecord, type StreamRecord } from './stream-record.js';

/** How long old carriers keep forwarding after a move (resent packets go where they first went). */
export const RETIRE_AFTER_MS = 3000;
/** Carrier moves an agent answers per stream; a bound on what one peer can make us do. */
const MAX_CARRIER_MOVES = 64;

export function retireOldCarriersSoon(r: StreamRecord): void {
  setTimeout(() => r.session.retireOldCarriers(), RETIRE_AFTER_MS).unref();
}

export class CarrierMoves {
  constructor(
    private readonly ctx: StreamContext,
    /** Client: the stream now runs on a new UDX carrier over `path`. */
    private readonly moved: (r: OpenerRecord, path: Path) => void,
  ) {}

  /** Client: moves the stream onto a new UDX carrier over `path` (replacing a switch in progress). */
  switchTo(r: OpenerRecord, path: Path): void {
    if (r.session.destroyed || r.session.settled) return;
    this.cancel(r);
    const carrier = this.ctx.newCarrier();
    const carrierMsg: Carrier = { type: 'carrier', sid: r.sid, carrier: carrier.id };
    const resend = new Resend(() => this.ctx.send(r.peer, path, carrierMsg), this.ctx.resendMs, this.ctx.deadlineMs, () => {
      // No answer on the new path: keep the current carrier; the next path change tries again.
      if (r.switching?.carrier === carrier) {
        carrier.destroy();
        r.switching = null;
      }
    });
    r.switching = { carrier, path, resend };
    resend.start();
  }

  /** Client: abandons the switch in progress, if any. */
  cancel(r: OpenerRecord): void {
    if (!r.switching) return;
    r.switching.resend.stop();
    r.switching.carrier.destroy();
    r.switching = null;
  }

  /** Client: the agent's answer to a switch. */
  async onCarrierAck(peer: string, m: CarrierAck): Promise<void> {
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    // Only the answer to the switch in progress counts; a late one for an abandoned switch names
    // a carrier of ours that no longer exists.
    if (!r || r.role !== 'client' || !r.switching || r.switching.carrier.id !== m.yours) return;
    const { carrier, resend, path } = r.switching;
    r.switching = null;
    resend.stop();
    if (!(await this.ctx.connectCarrier(carrier, peer, m.carrier, path))) return;
    r.session.attach(carrier);
    retireOldCarriersSoon(r);
    this.ctx.log.debug({ peer: peer.slice(0, 8), sid: m.sid.toString(16), path }, 'stream moved to a new carrier');
    this.ctx.moved(peer, m.sid, path, 'udx');
    this.moved(r, path);
  }

  /** Agent: the client's new carrier; answered once, and the same way again for its resends. */
  async onCarrier(peer: string, m: Carrier, path: Path): Promise<void> {
    const r = this.ctx.sessions.get(streamKey(peer, m.sid));
    if (!r || r.role !== 'agent') return this.ctx.send(peer, path, { type: 'stream-refuse', sid: m.sid, reason: 'unknown stream' });
    const answered = r.answered.get(m.carrier);
    if (answered) {
      this.ctx.send(peer, path, answered);
      return;
    }
    if (r.answered.size >= MAX_CARRIER_MOVES) return this.ctx.send(peer, path, { type: 'stream-refuse', sid: m.sid, reason: 'too many carrier changes' });
    const carrier = this.ctx.newCarrier();
    const ack: CarrierAck = { type: 'carrier-ack', sid: m.sid, carrier: carrier.id, yours: m.carrier };
    // Remembered at once, so a resend while this connects makes no second carrier, and forgotten
    // if the carrier cannot be connected: no resend may get an ack for a carrier never attached.
    r.answered.set(m.carrier, ack);
    if (!(await this.ctx.connectCarrier(carrier, peer, m.carrier, path))) {
      r.answered.delete(m.carrier);
      return;
    }
    r.session.attach(carrier);
    this.ctx.send(peer, path, ack);
    retireOldCarriersSoon(r);
    this.ctx.moved(peer, m.sid, path, 'udx');
  }
}

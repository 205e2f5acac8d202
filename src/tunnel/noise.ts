// The Noise IK handshake that keys a stream, with the peers' node keys as static keys: the
// client knows the agent's key from the coordinator (IK: "I know your key"), and the agent learns
// and checks the client's. Its two messages ride in the stream-open and stream-accept disco
// messages, so a stream costs no extra round trip. Afterwards the session seals its frames with
// the two keys this handshake produced (record-cipher.ts).
import Noise from 'noise-handshake';
import type { NodeKey } from '../identity/node-key.js';
import type { StreamKeys } from './record-cipher.js';

/** What a finished handshake gives the stream: its keys, and the peer's proven static key. */
export interface Handshake extends StreamKeys {
  readonly remotePublicKey: Uint8Array;
}

const PROLOGUE = Buffer.from('traverse stream v1');

function keyPair(key: NodeKey): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return { publicKey: key.publicKey, secretKey: key.privateBytes() };
}

function result(n: Noise, remote: Uint8Array): Handshake {
  if (!n.tx || !n.rx) throw new Error('handshake incomplete');
  return { tx: n.tx, rx: n.rx, remotePublicKey: remote };
}

export class StreamInitiator {
  private readonly noise: Noise;
  /** The first handshake message, carrying the request. */
  readonly message: Uint8Array;

  constructor(
    self: NodeKey,
    private readonly remote: Uint8Array,
    request: Uint8Array,
  ) {
    this.noise = new Noise('IK', true, keyPair(self));
    this.noise.initialise(PROLOGUE, remote);
    this.message = this.noise.send(request);
  }

  /** Reads the agent's reply; returns its payload and the keys. Throws if it does not authenticate. */
  finish(reply: Uint8Array): { payload: Uint8Array; handshake: Handshake } {
    const payload = this.noise.recv(reply);
    if (!this.noise.complete) throw new Error('handshake incomplete');
    return { payload, handshake: result(this.noise, this.remote) };
  }
}

export interface ResponderStart {
  /** The client's static key, as proven by the handshake. */
  readonly remote: Uint8Array;
  readonly payload: Uint8Array;
  /** Writes the reply (with `payload`) and returns it with the keys. */
  reply(payload: Uint8Array): { message: Uint8Array; handshake: Handshake };
}

/** Reads a client's first message; throws if it is not a valid IK message for our key. */
export function respond(self: NodeKey, message: Uint8Array): ResponderStart {
  const noise = new Noise('IK', false, keyPair(self));
  noise.initialise(PROLOGUE);
  const payload = noise.recv(message);
  const remote = noise.rs;
  if (!remote) throw new Error('handshake carries no static key');
  return {
    remote,
    payload,
    reply: (p) => {
      const msg = noise.send(p);
      return { message: msg, handshake: result(noise, remote) };
    },
  };
}

// Shared by the STUN server tests: build requests, send them from real sockets, read answers.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { encodeMessage, type Attribute } from '../../src/stun/index.js';
import { decodeMessage, type StunMessage } from '../../src/stun/message.js';
import { readAttribute, type Attribute as Decoded } from '../../src/stun/attributes.js';
import { METHOD_BINDING } from '../../src/stun/constants.js';

export interface Reply {
  readonly bytes: Buffer;
  readonly msg: StunMessage;
  readonly from: dgram.RemoteInfo;
}

export function bindingRequest(attributes: Attribute[] = [], options: { fingerprint?: boolean; rfc3489?: boolean } = {}): Buffer {
  return encodeMessage(
    { method: METHOD_BINDING, cls: 'request', transactionId: randomBytes(options.rfc3489 === true ? 16 : 12), attributes },
    { fingerprint: options.fingerprint === true },
  );
}

/** A raw request with one attribute of the given type and value (for types the encoder does not know). */
export function requestWithRawAttribute(type: number, value: Buffer): Buffer {
  const padded = (value.length + 3) & ~3;
  const b = Buffer.alloc(20 + 4 + padded);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(4 + padded, 2);
  b.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(b, 8);
  b.writeUInt16BE(type, 20);
  b.writeUInt16BE(value.length, 22);
  value.copy(b, 24);
  return b;
}

export class Client {
  private readonly queue: Reply[] = [];
  private waiter: ((r: Reply) => void) | null = null;

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (bytes, from) => {
      const r = { bytes, msg: decodeMessage(bytes), from };
      if (this.waiter !== null) {
        const w = this.waiter;
        this.waiter = null;
        w(r);
      } else this.queue.push(r);
    });
  }

  static async open(address = '127.0.0.1'): Promise<Client> {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new Client(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(bytes: Buffer, port: number, address: string): void {
    this.socket.send(bytes, port, address);
  }

  /** The next reply, or null after `ms`. */
  next(ms = 1000): Promise<Reply | null> {
    const r = this.queue.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, ms);
      this.waiter = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
    });
  }

  async ask(bytes: Buffer, port: number, address: string, ms = 1000): Promise<Reply> {
    this.send(bytes, port, address);
    const r = await this.next(ms);
    if (r === null) throw new Error(`no reply from ${address}:${port} within ${ms} ms`);
    return r;
  }

  close(): void {
    this.socket.close();
  }
}

/** All attributes of a reply, decoded. */
export function attrs(r: Reply): Decoded[] {
  return r.msg.attributes.map((a) => readAttribute(r.msg, a));
}

/** The member of the Attribute union whose type field admits T (address types share one member). */
type Of<T> = Decoded extends infer D ? (D extends { type: infer U } ? (T extends U ? D & { type: T } : never) : never) : never;

export function attr<T extends Decoded['type']>(r: Reply, type: T): Of<T> | undefined {
  return attrs(r).find((a) => a.type === type) as Of<T> | undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

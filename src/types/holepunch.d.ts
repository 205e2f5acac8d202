// The parts of the Holepunch modules this project uses, typed by hand (they ship no types).

declare module 'udx-native' {
  import { Duplex } from 'node:stream';
  import { EventEmitter } from 'node:events';

  export interface UdxAddress {
    host: string;
    family: number;
    port: number;
  }

  export class UDXSocket extends EventEmitter {
    bind(port?: number, host?: string): void;
    address(): UdxAddress;
    close(): Promise<void>;
    trySend(buffer: Uint8Array, port: number, host?: string): void;
    send(buffer: Uint8Array, port: number, host?: string): Promise<boolean>;
    setRecvBufferSize(size: number): number;
    setSendBufferSize(size: number): number;
    readonly bound: boolean;
    /** Streams connected through this socket. */
    readonly streams: Set<UDXStream>;
    on(event: 'message', listener: (msg: Buffer, from: UdxAddress) => void): this;
    on(event: 'close' | 'listening' | 'idle' | 'busy', listener: () => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }

  /** A streamx Duplex; typed as Node's Duplex for the methods both have. */
  export interface UDXStream extends Duplex {
    readonly id: number;
    readonly remoteId: number;
    readonly remoteHost: string;
    readonly remotePort: number;
    readonly connected: boolean;
    readonly rtt: number;
    readonly mtu: number;
    connect(socket: UDXSocket, remoteId: number, port: number, host?: string, options?: Record<string, unknown>): void;
    changeRemote(socket: UDXSocket, remoteId: number, port: number, host?: string): Promise<void> | null;
    setInteractive(interactive: boolean): void;
  }

  export default class UDX {
    createSocket(options?: Record<string, unknown>): UDXSocket;
    createStream(id: number, options?: { firewall?: (socket: UDXSocket, port: number, host: string) => boolean; framed?: boolean }): UDXStream;
  }
}

declare module 'noise-handshake' {
  export interface KeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }

  export default class Noise {
    constructor(pattern: 'IK' | 'XX' | 'NN', initiator: boolean, staticKeyPair?: KeyPair, options?: Record<string, unknown>);
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    readonly rs: Uint8Array | null;
    readonly tx: Uint8Array;
    readonly rx: Uint8Array;
    readonly hash: Uint8Array;
    readonly s: KeyPair;
  }
}

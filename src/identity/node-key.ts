// A node's long-term X25519 key pair: the key the coordinator vouches for, with which disco
// messages are sealed and streams are authenticated. Kept in a file (mode 0600) so that a
// restarted agent keeps its identity.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A key file that cannot be used, with what to do about it. */
export class NodeKeyFileError extends Error {}

export class NodeKey {
  /** The 32-byte public key. */
  readonly publicKey: Buffer;
  /** The public key as the coordination protocol writes it: 64 lowercase hex characters. */
  readonly publicHex: string;

  private constructor(private readonly privateKey: KeyObject) {
    const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    this.publicKey = Buffer.from(der.subarray(der.length - 32));
    this.publicHex = this.publicKey.toString('hex');
  }

  static generate(): NodeKey {
    return new NodeKey(generateKeyPairSync('x25519').privateKey);
  }

  static fromPrivateBytes(raw: Uint8Array): NodeKey {
    if (raw.length !== 32) throw new Error(`an X25519 private key has 32 bytes, not ${raw.length}`);
    return new NodeKey(createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' }));
  }

  /** Loads the key from `file`, or creates it there (mode 0600) if it does not exist. */
  static loadOrCreate(file: string): NodeKey {
    if (existsSync(file)) {
      // Like ssh with a private key: a key others could read may be someone else's by now, so it
      // is refused, not silently used (or silently fixed).
      const mode = statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new NodeKeyFileError(
          `${file} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}); run \`chmod 600 ${file}\` if only you could have read it, or move it away to make a new key`,
        );
      }
      const text = readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/.test(text)) throw new NodeKeyFileError(`${file} does not hold a node key (64 hex characters); move it away to create a new one`);
      return NodeKey.fromPrivateBytes(Buffer.from(text, 'hex'));
    }
    const key = NodeKey.generate();
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${key.privateBytes().toString('hex')}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return key;
  }

  privateBytes(): Buffer {
    const der = this.privateKey.export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(der.subarray(der.length - 32));
  }

  /** The X25519 shared secret with a peer's public key. */
  sharedSecret(peerPublic: Uint8Array): Buffer {
    if (peerPublic.length !== 32) throw new Error('a peer key has 32 bytes');
    const pub = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peerPublic]), format: 'der', type: 'spki' });
    return diffieHellman({ privateKey: this.privateKey, publicKey: pub });
  }
}

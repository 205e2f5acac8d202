// The server's certificate: PEM files given by the operator (--tls-cert/--tls-key, reloaded on
// SIGHUP) or issued by an ACME CA (acme.ts). Either way the listener serves what `CertificateHolder`
// holds now; replacing it calls setSecureContext, which changes what new handshakes get and leaves
// every connected peer's session alone.
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer } from 'node:net';

export class TlsFileError extends Error {
  override readonly name = 'TlsFileError';
}

/** A certificate chain and its key, checked to belong together. */
export interface ServedCertificate {
  /** PEM: the leaf first, then the intermediates. */
  readonly cert: string;
  readonly key: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The DNS names and IP addresses the leaf is valid for (its subjectAltName). */
  readonly names: readonly string[];
  /** SHA-256 fingerprint of the leaf, to tell in logs which one is served. */
  readonly fingerprint: string;
}

/**
 * What server.ts needs from a TLS source: the certificate to start with (null: none yet, as
 * before the first ACME issuance; handshakes fail until there is one) and, given the https
 * server, the server that listens (the same one, or a front that answers ACME challenges first).
 */
export interface TlsServing {
  readonly initial: ServedCertificate | null;
  listenerFor(server: HttpsServer): NetServer;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A chain and key from PEM text, or an error naming `origin` that says what is wrong. */
export function certificateFromPem(cert: string, key: string, origin: { cert: string; key: string }): ServedCertificate {
  const pems = cert.match(PEM_CERT) ?? [];
  if (pems.length === 0) throw new TlsFileError(`${origin.cert}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pems[0]!);
    for (const p of pems.slice(1)) new X509Certificate(p);
  } catch (err) {
    throw new TlsFileError(`${origin.cert}: a certificate in it does not parse (${(err as Error).message})`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(key);
    throw new TlsFileError(`${origin.key}: ${encrypted ? 'the key is encrypted with a passphrase; give an unencrypted PEM key (mode 0600)' : `not a PEM private key (${(err as Error).message})`}`);
  }
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new TlsFileError(`${origin.key} does not belong to the certificate in ${origin.cert} (the first certificate of the file must be the server's own)`);
  }
  const names = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:') || n.startsWith('IP Address:'))
    .map((n) => n.replace(/^DNS:|^IP Address:/, ''));
  return {
    cert: pems.join('\n') + '\n',
    key,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    names,
    fingerprint: leaf.fingerprint256,
  };
}

/** --tls-cert/--tls-key: both files read and checked; the error names the flag and the file. */
export function loadCertificateFiles(certFile: string, keyFile: string): ServedCertificate {
  const read = (flag: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
      throw new TlsFileError(`${flag} ${file}: ${why}`);
    }
  };
  return certificateFromPem(read('--tls-cert', certFile), read('--tls-key', keyFile), { cert: `--tls-cert ${certFile}`, key: `--tls-key ${keyFile}` });
}

/** Holds the served certificate and swaps it on the running https server. */
export class CertificateHolder implements TlsServing {
  private server: HttpsServer | null = null;
  private served: ServedCertificate | null;

  constructor(initial: ServedCertificate | null) {
    this.served = initial;
  }

  get initial(): ServedCertificate | null {
    return this.served;
  }

  get current(): ServedCertificate | null {
    return this.served;
  }

  listenerFor(server: HttpsServer): NetServer {
    this.server = server;
    return server;
  }

  /** New handshakes get `next`; open connections keep the session they have. */
  replace(next: ServedCertificate): void {
    this.served = next;
    this.server?.setSecureContext({ cert: next.cert, key: next.key });
  }
}

// Which certificate authorities a TLS connection made by Traverse trusts: Node's own store (the
// Mozilla list, plus NODE_EXTRA_CA_CERTS) and, for a private CA, the certificates of one PEM file
// (--ca FILE / TRAVERSE_CA). The file is added to the store, never replaces it, and nothing here
// can turn verification off: a name or chain that does not check out fails the connection.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { X509Certificate } from 'node:crypto';

export class TrustError extends Error {
  override readonly name = 'TrustError';
}

/** What a TLS client is given: undefined means Node's default store, untouched. */
export interface Trust {
  /** The CA certificates (PEM) to trust, Node's store included; undefined: Node's default. */
  readonly ca: readonly string[] | undefined;
  /** The file the private CA came from, for messages. */
  readonly caFile: string | undefined;
}

export const DEFAULT_TRUST: Trust = { ca: undefined, caFile: undefined };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** A CA bundle is a few hundred kilobytes at most; a bigger file is a mistake. */
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

/** The trust for a --ca FILE (or none): every certificate in the file must parse. */
export function loadTrust(caFile: string | undefined, flag = '--ca'): Trust {
  if (caFile === undefined || caFile === '') return DEFAULT_TRUST;
  let text: string;
  try {
    text = readFileSync(caFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TrustError(`${flag} ${caFile}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
  if (text.length > MAX_CA_FILE_BYTES) throw new TrustError(`${flag} ${caFile}: larger than 4 MiB; expected PEM CA certificates`);
  return { ...trustFromPem(text, `${flag} ${caFile}`), caFile };
}

/** The trust for CA certificates given as PEM text; `origin` names them in errors. */
export function trustFromPem(text: string, origin = 'ca'): Trust {
  const certs = text.match(PEM_CERT) ?? [];
  if (certs.length === 0) throw new TrustError(`${origin}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`);
  for (const [i, pem] of certs.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new TrustError(`${origin}: certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  }
  // Node replaces its store when `ca` is given: keep the public CAs, add the private ones.
  return { ca: [...rootCertificates, ...certs], caFile: undefined };
}

/** The options a tls/https client takes for this trust (spread into the request options). */
export function tlsClientOptions(trust: Trust): { ca?: string[] } {
  return trust.ca ? { ca: [...trust.ca] } : {};
}

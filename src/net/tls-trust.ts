// Which certificate authorities a TLS connection made by Traverse trusts: Node's own store (the
// Mozilla list, plus NODE_EXTRA_CA_CERTS), the operating system's CA bundle (where a company's
// own CA is installed with update-ca-certificates; Node 20 does not read it by itself) and, for a
// private CA, the certificates of one PEM file (--ca FILE / TRAVERSE_CA). Each is added to the
// others, never replaces them, and nothing here can turn verification off: a name or chain that
// does not check out fails the connection.
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
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

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** A CA bundle is a few hundred kilobytes at most; a bigger file is a mistake. */
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Where operating systems keep their CA bundle, first match wins: SSL_CERT_FILE (OpenSSL's own
 * variable) when set, then Debian/Ubuntu/Alpine, Fedora/RHEL, and macOS/BSD (from Homebrew).
 */
function systemBundlePaths(): string[] {
  const fromEnv = process.env.SSL_CERT_FILE;
  return [...(fromEnv ? [fromEnv] : []), '/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
}

let systemCache: { key: string; certs: readonly string[] } | null = null;

/**
 * The certificates of the system's CA bundle, read once per bundle path (an unreadable or
 * oversized bundle counts as none: Node's own store still applies).
 */
export function systemCaCertificates(): readonly string[] {
  for (const path of systemBundlePaths()) {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      continue;
    }
    if (systemCache?.key === path) return systemCache.certs;
    let certs: string[] = [];
    try {
      if (size <= MAX_CA_FILE_BYTES) certs = readFileSync(path, 'utf8').match(PEM_CERT) ?? [];
    } catch {
      certs = [];
    }
    systemCache = { key: path, certs };
    return certs;
  }
  return [];
}

/** Node's store and the system's bundle, without duplicates. */
function baseStore(): string[] {
  return [...new Set([...rootCertificates, ...systemCaCertificates()])];
}

/** No --ca: Node's store plus the system's bundle (computed when first used). */
export const DEFAULT_TRUST: Trust = {
  get ca(): readonly string[] | undefined {
    const system = systemCaCertificates();
    return system.length === 0 ? undefined : baseStore();
  },
  caFile: undefined,
};

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
  // Node replaces its store when `ca` is given: keep the public and system CAs, add the private ones.
  return { ca: [...baseStore(), ...certs], caFile: undefined };
}

/** Whether a PEM certificate is one of Node's own roots (by its base64 body: spacing may differ). */
const nodeRootMemo = new Map<string, boolean>();
let nodeRootBodies: Set<string> | null = null;
const pemBody = (pem: string): string => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
function isNodeRoot(pem: string): boolean {
  let known = nodeRootMemo.get(pem);
  if (known === undefined) {
    nodeRootBodies ??= new Set(rootCertificates.map(pemBody));
    known = nodeRootBodies.has(pemBody(pem));
    nodeRootMemo.set(pem, known);
  }
  return known;
}

/** Contexts made, by the certificates they add to Node's roots (a process makes one or two). */
const contexts = new Map<string, SecureContext>();

/**
 * The options a tls/https client takes for this trust (spread into the request options): a
 * SecureContext with Node's own root store and, added to it, the trust's certificates that are
 * not among those roots (the system bundle's extras, a private CA). The same trust as `ca` with
 * every certificate, for a fraction of the CPU: `ca` makes Node parse all ~300 certificates into a
 * store of their own at each connection, 40-70 ms of CPU for each coordinator connection and relay
 * lane of a `traverse proxy`; Node's roots are parsed once per process and the extras (a dozen on
 * Debian) take ~2 ms. One context per distinct set of extras, shared by every connection.
 */
export function tlsClientOptions(trust: Trust): { secureContext?: SecureContext } {
  const ca = trust.ca;
  if (!ca) return {};
  const extras = ca.filter((pem) => !isNodeRoot(pem));
  const key = extras.join('\n');
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext(); // no `ca`: Node's root store
    // addCACert adds to this context's own copy of the root store (what `ca` does, per entry).
    // It is Node's internal binding (Node 20 has no public way to extend its roots): should it
    // ever be gone, the same trust the slow way, every certificate parsed into a store of its own.
    const native = context.context as { addCACert?: unknown };
    if (typeof native.addCACert === 'function') for (const pem of extras) (native.addCACert as (pem: string) => void).call(native, pem);
    else context = createSecureContext({ ca: [...ca] });
    contexts.set(key, context);
  }
  return { secureContext: context };
}

// `traverse server`'s TLS flags: --tls-cert/--tls-key (reloaded on SIGHUP), --acme-domain with
// --acme-email/--acme-directory/--ca, and --trust-proxy; each with its TRAVERSE_* twin. Turns
// them into the certificate source server.ts serves from, and says what is served in the banner.
import { Command, Option } from 'commander';
import type { Logger } from '../log/logger.js';
import { loadTrust, TrustError } from '../net/tls-trust.js';
import { AcmeCertificates, LETS_ENCRYPT_DIRECTORY } from '../server/acme.js';
import { CertificateHolder, loadCertificateFiles, TlsFileError, type ServedCertificate } from '../server/tls.js';
import { CommandFailed, UsageError } from './errors.js';
import { isIP } from 'node:net';
import { LOOPBACK_PROXY, type ProxyTrust } from '../server/client-address.js';

export interface TlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  acmeDomain?: string;
  acmeEmail?: string;
  acmeDirectory?: string;
  ca?: string;
  trustProxy?: boolean | string;
}

export function addServerTlsOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--tls-cert <file>', 'serve HTTPS/WSS with this PEM certificate (chain allowed); reloaded on SIGHUP').env('TRAVERSE_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'the PEM private key of --tls-cert').env('TRAVERSE_TLS_KEY'))
    .addOption(
      new Option('--acme-domain <name>', 'get and renew the certificate for this name from an ACME CA (TLS-ALPN-01 on the listen port, which must be reachable as NAME:443)').env(
        'TRAVERSE_ACME_DOMAIN',
      ),
    )
    .addOption(new Option('--acme-email <address>', 'contact address for the ACME account (expiry notices)').env('TRAVERSE_ACME_EMAIL'))
    .addOption(new Option('--acme-directory <url>', `the ACME CA's directory URL (default: Let's Encrypt, ${LETS_ENCRYPT_DIRECTORY})`).env('TRAVERSE_ACME_DIRECTORY'))
    .addOption(new Option('--ca <file>', "trust this CA (PEM) besides Node's and the system's CA stores: for the ACME directory's HTTPS (a private ACME CA) and for other replicas' https:// mesh URLs").env('TRAVERSE_CA'))
    .option(
      '--trust-proxy [addresses]',
      'behind a reverse proxy: a connection from the proxy (loopback, or these comma-separated IP addresses) stands for the right-most X-Forwarded-For entry (env TRAVERSE_TRUST_PROXY=1 or the addresses)',
    );
}

/**
 * The trusted proxies: --trust-proxy alone (or TRAVERSE_TRUST_PROXY=1) is a proxy on this
 * machine (loopback); with addresses (flag value or the variable), exactly those. [] is off.
 */
export function trustProxyFlag(flags: TlsFlags): ProxyTrust {
  const fromFlag = flags.trustProxy;
  const env = process.env.TRAVERSE_TRUST_PROXY;
  const [value, name] = fromFlag !== undefined ? [fromFlag === true ? '1' : String(fromFlag), '--trust-proxy'] : [env ?? '0', 'TRAVERSE_TRUST_PROXY'];
  if (value === '' || value === '0') return [];
  if (value === '1') return [LOOPBACK_PROXY];
  const list = value.split(',').map((a) => a.trim()).filter(Boolean);
  const bad = list.find((a) => a !== LOOPBACK_PROXY && isIP(a) === 0);
  if (list.length === 0 || bad !== undefined) {
    throw new UsageError(`${name} "${value}": expected the proxy's IP addresses, comma-separated (or "loopback"; 1 alone means loopback)`);
  }
  return list;
}

/** The banner's words for the trusted proxies. */
export function proxyWords(trust: ProxyTrust): string {
  return trust.map((t) => (t === LOOPBACK_PROXY ? 'loopback' : t)).join(', ');
}

export type ServerTls =
  | { readonly kind: 'files'; readonly holder: CertificateHolder; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: 'acme'; readonly acme: AcmeCertificates; readonly domain: string; readonly directoryUrl: string };

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** The TLS the flags ask for (null: plain HTTP), with every file read and checked now. */
export function serverTls(flags: TlsFlags, dataDir: string, log: Logger): ServerTls | null {
  const files = flags.tlsCert !== undefined || flags.tlsKey !== undefined;
  const acmeOnly = flags.acmeEmail !== undefined || flags.acmeDirectory !== undefined;
  if (files && flags.acmeDomain !== undefined) throw new UsageError('give --tls-cert/--tls-key or --acme-domain, not both');
  if (acmeOnly && flags.acmeDomain === undefined) throw new UsageError('--acme-email and --acme-directory need --acme-domain NAME');
  if (files) {
    if (!flags.tlsCert || !flags.tlsKey) throw new UsageError('--tls-cert and --tls-key go together: give both files');
    let served: ServedCertificate;
    try {
      served = loadCertificateFiles(flags.tlsCert, flags.tlsKey);
    } catch (err) {
      if (err instanceof TlsFileError) throw new CommandFailed(err.message);
      throw err;
    }
    if (served.notAfter.getTime() <= Date.now()) log.warn({ notAfter: served.notAfter.toISOString() }, `the certificate in ${flags.tlsCert} has expired: peers will refuse it`);
    return { kind: 'files', holder: new CertificateHolder(served), certFile: flags.tlsCert, keyFile: flags.tlsKey };
  }
  if (flags.acmeDomain === undefined) return null;
  const domain = flags.acmeDomain.toLowerCase();
  if (!DOMAIN.test(domain)) throw new UsageError(`--acme-domain "${flags.acmeDomain}" is not a DNS name`);
  const directoryUrl = flags.acmeDirectory ?? LETS_ENCRYPT_DIRECTORY;
  if (!/^https?:\/\//.test(directoryUrl)) throw new UsageError(`--acme-directory "${directoryUrl}" is not an http(s) URL`);
  let trust;
  try {
    trust = loadTrust(flags.ca);
  } catch (err) {
    if (err instanceof TrustError) throw new UsageError(err.message);
    throw err;
  }
  const acme = new AcmeCertificates({ domain, directoryUrl, dataDir, trust, logger: log.child({ component: 'acme' }), ...(flags.acmeEmail ? { email: flags.acmeEmail } : {}) });
  return { kind: 'acme', acme, domain, directoryUrl };
}

/** SIGHUP re-reads --tls-cert/--tls-key; a bad pair is logged and the old one kept. */
export function reloadOnSighup(tls: ServerTls, log: Logger): () => void {
  const onHup = (): void => {
    if (tls.kind !== 'files') return void log.info('SIGHUP: the ACME certificate renews itself; nothing to reload');
    try {
      const next = loadCertificateFiles(tls.certFile, tls.keyFile);
      tls.holder.replace(next);
      log.info({ names: next.names, notAfter: next.notAfter.toISOString(), fingerprint: next.fingerprint }, 'SIGHUP: certificate reloaded; connected peers stay');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: certificate not reloaded; still serving the previous one');
    }
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}

/** The banner line: what is served, until when, and how it is renewed. */
export function tlsBannerLine(tls: ServerTls, served: ServedCertificate): string {
  const until = served.notAfter.toISOString().slice(0, 10);
  if (tls.kind === 'files') return `  TLS           ${served.names.join(', ') || 'no names'} until ${until}, from ${tls.certFile} (kill -HUP ${process.pid} reloads it)`;
  const renew = new Date(tls.acme.nextAttemptAt).toISOString().slice(0, 10);
  return `  TLS           ${tls.domain} until ${until} from ACME ${tls.directoryUrl}, renewed from ${renew}`;
}

/** The name peers should use in https URLs: the certificate's first DNS name, if it has one. */
export function tlsHostName(served: ServedCertificate): string | undefined {
  return served.names.find((n) => !/^[\d.:]+$/.test(n));
}

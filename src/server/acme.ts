// Certificates from an ACME CA (RFC 8555), obtained and renewed by the server itself. The
// protocol (accounts, orders, JWS) is the `acme-client` library's; this file decides when to
// ask, answers the TLS-ALPN-01 challenge (RFC 8737) on the listen port through alpn-front.ts, so
// no second port is needed, and keeps the result in the data folder (acme-files.ts).
import { Agent } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer } from 'node:net';
import * as acme from 'acme-client';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { tlsClientOptions, type Trust } from '../net/tls-trust.js';
import { getJson, HttpGetError } from '../net/http-get.js';
import { AcmeFiles } from './acme-files.js';
import { AlpnChallenges, alpnFront } from './alpn-front.js';
import { nextAttempt, type Validity } from './renewal.js';
import { CertificateHolder, certificateFromPem, type ServedCertificate, type TlsServing } from './tls.js';

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export interface AcmeOptions {
  readonly domain: string;
  readonly email?: string;
  readonly directoryUrl: string;
  readonly dataDir: string;
  /** For a private ACME CA whose directory has a certificate of its own CA (--ca). */
  readonly trust?: Trust;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/** setTimeout cannot wait longer than about 24.8 days; longer waits are re-planned daily. */
const MAX_TIMER_MS = 86_400_000;

export class AcmeCertificates implements TlsServing {
  private readonly holder: CertificateHolder;
  private readonly challenges = new AlpnChallenges((domain, from) => this.log.info({ domain, from }, 'answered a TLS-ALPN-01 validation'));
  private readonly files: AcmeFiles;
  private readonly log: Logger;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private running: Promise<ServedCertificate> | null = null;

  constructor(private readonly opts: AcmeOptions) {
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.files = new AcmeFiles(opts.dataDir);
    this.holder = new CertificateHolder(this.stored());
    if (opts.trust?.ca) acme.axios.defaults.httpsAgent = new Agent({ ...tlsClientOptions(opts.trust), keepAlive: true });
  }

  get initial(): ServedCertificate | null {
    return this.holder.initial;
  }

  get current(): ServedCertificate | null {
    return this.holder.current;
  }

  listenerFor(server: HttpsServer): NetServer {
    this.holder.listenerFor(server);
    return alpnFront(server, this.challenges);
  }

  /**
   * Once the listener is up: obtains a certificate now if there is none usable (resolving when
   * it is served, rejecting if the CA refuses), and plans every renewal after that.
   */
  async start(): Promise<ServedCertificate> {
    const current = this.holder.current;
    if (current === null || nextAttempt(validity(current), this.now(), 0) <= this.now()) {
      const issued = await this.renew();
      this.plan();
      return issued;
    }
    this.plan();
    return current;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** When the next attempt is planned (epoch ms). */
  get nextAttemptAt(): number {
    const c = this.holder.current;
    return nextAttempt(c ? validity(c) : null, this.now(), this.failures);
  }

  private plan(): void {
    if (this.stopped) return;
    const wait = Math.max(0, this.nextAttemptAt - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.nextAttemptAt > this.now()) return this.plan(); // a long wait, re-planned
      this.renew()
        .catch(() => undefined) // logged by renew(); the old certificate is served meanwhile
        .finally(() => this.plan());
    }, Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }

  /** One issuance; concurrent callers share it. */
  renew(): Promise<ServedCertificate> {
    this.running ??= this.issue().finally(() => (this.running = null));
    return this.running;
  }

  private async issue(): Promise<ServedCertificate> {
    const { domain, directoryUrl } = this.opts;
    this.log.info({ domain, directory: directoryUrl }, 'asking the ACME CA for a certificate');
    try {
      await this.checkDirectory();
      const client = new acme.Client({ directoryUrl, accountKey: await this.accountKey() });
      const [key, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey());
      const chain = await client.auto({
        csr,
        ...(this.opts.email ? { email: this.opts.email } : {}),
        termsOfServiceAgreed: true,
        challengePriority: ['tls-alpn-01'],
        // acme-client's own pre-check would dial port 443 of the name; the CA's check is the one that counts.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
          const [ckey, ccert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
          this.challenges.set(authz.identifier.value, ccert.toString(), ckey.toString());
        },
        challengeRemoveFn: (authz) => {
          this.challenges.delete(authz.identifier.value);
          return Promise.resolve();
        },
      });
      const served = certificateFromPem(chain, key.toString(), { cert: `the certificate issued for ${domain}`, key: `the key made for ${domain}` });
      this.files.writeCertificate(domain, { cert: served.cert, key: served.key, directoryUrl });
      this.holder.replace(served);
      this.failures = 0;
      this.log.info({ domain, notAfter: served.notAfter.toISOString(), fingerprint: served.fingerprint }, 'ACME certificate issued and served');
      return served;
    } catch (err) {
      this.failures++;
      const reason = acmeFailure(err);
      this.log.warn({ domain, failures: this.failures, err: reason }, 'ACME issuance failed');
      throw new Error(`cannot get a certificate for ${domain} from ${directoryUrl}: ${reason}`, { cause: err });
    }
  }

  /**
   * One GET of the directory first: acme-client retries an unreachable or untrusted directory
   * for over a minute and then reports it poorly; this says at once what is wrong.
   */
  private async checkDirectory(): Promise<void> {
    let res;
    try {
      res = await getJson(new URL(this.opts.directoryUrl), null, { timeoutMs: 10_000, ...(this.opts.trust ? { trust: this.opts.trust } : {}) });
    } catch (err) {
      if (err instanceof HttpGetError) throw new Error(`the ACME directory cannot be read: ${err.reason}`);
      throw err;
    }
    const body = res.body as { newNonce?: unknown } | undefined;
    if (res.status !== 200 || typeof body?.newNonce !== 'string') {
      throw new Error(`the ACME directory answered HTTP ${res.status}${typeof body?.newNonce === 'string' ? '' : ' without an ACME directory (newNonce)'}; check --acme-directory`);
    }
  }

  private async accountKey(): Promise<Buffer> {
    const stored = this.files.readAccountKey();
    if (stored !== null) return Buffer.from(stored);
    const key = await acme.crypto.createPrivateEcdsaKey();
    this.files.writeAccountKey(key.toString());
    return key;
  }

  /** The stored certificate, if it is for this directory, still valid, and parses. */
  private stored(): ServedCertificate | null {
    const s = this.files.readCertificate(this.opts.domain);
    if (s === null || s.directoryUrl !== this.opts.directoryUrl) return null;
    try {
      const c = certificateFromPem(s.cert, s.key, { cert: 'stored certificate', key: 'stored key' });
      return c.notAfter.getTime() > this.now() && c.names.includes(this.opts.domain) ? c : null;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'ignoring the stored ACME certificate');
      return null;
    }
  }
}

function validity(c: ServedCertificate): Validity {
  return { notBefore: c.notBefore.getTime(), notAfter: c.notAfter.getTime() };
}

/** The CA's problem document ("urn:ietf:params:acme:error:...: detail") or the system's error. */
function acmeFailure(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code && !e.message?.includes(e.code) ? `${e.code} ${e.message ?? ''}`.trim() : (e.message ?? String(err));
}

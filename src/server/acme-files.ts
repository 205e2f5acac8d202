// What the ACME client keeps in the data folder, so that a restart serves the certificate it has
// instead of asking the CA again (CAs rate-limit issuance): acme/account.key, and per domain
// DOMAIN.key, DOMAIN.crt (the chain) and DOMAIN.json (which directory issued it). Files are
// 0600 in a 0700 folder and written through a rename, so a crash never leaves half a key.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredCertificate {
  readonly cert: string;
  readonly key: string;
  readonly directoryUrl: string;
}

export class AcmeFiles {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'acme');
  }

  readAccountKey(): string | null {
    return this.read('account.key');
  }

  writeAccountKey(pem: string): void {
    this.write('account.key', pem);
  }

  readCertificate(domain: string): StoredCertificate | null {
    const cert = this.read(`${domain}.crt`);
    const key = this.read(`${domain}.key`);
    const meta = this.read(`${domain}.json`);
    if (cert === null || key === null || meta === null) return null;
    try {
      const { directoryUrl } = JSON.parse(meta) as { directoryUrl?: unknown };
      return typeof directoryUrl === 'string' ? { cert, key, directoryUrl } : null;
    } catch {
      return null;
    }
  }

  writeCertificate(domain: string, c: StoredCertificate): void {
    // Key before certificate, metadata last: a reader sees the set only once it is whole.
    this.write(`${domain}.key`, c.key);
    this.write(`${domain}.crt`, c.cert);
    this.write(`${domain}.json`, JSON.stringify({ directoryUrl: c.directoryUrl, savedAt: new Date().toISOString() }) + '\n');
  }

  private read(name: string): string | null {
    try {
      return readFileSync(join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private write(name: string, text: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const tmp = join(this.dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, join(this.dir, name));
  }
}

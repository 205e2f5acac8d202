// Certificates for tests, made at test time with the `openssl` command: a throw-away CA and a
// server certificate it signs, in a temporary folder. No key is ever committed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  /** The CA certificate peers are told to trust (--ca). */
  readonly caFile: string;
  readonly caKeyFile: string;
  /** Issues a server certificate for these names (DNS names or IP addresses); `chain` appends the CA. */
  issue(name: string, names: readonly string[], opts?: { days?: number; chain?: boolean }): { certFile: string; keyFile: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function makeTestCa(label = 'Traverse Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'traverse-test-ca-'));
  const caFile = join(dir, 'ca.pem');
  const caKeyFile = join(dir, 'ca.key');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKeyFile, '-out', caFile, '-days', '2', '-subj', `/CN=${label}`], dir);
  return {
    dir,
    caFile,
    caKeyFile,
    issue(name, names, opts = {}) {
      const keyFile = join(dir, `${name}.key`);
      const csr = join(dir, `${name}.csr`);
      const certFile = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${names[0] ?? name}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKeyFile, '-CAcreateserial', '-out', certFile, '-days', String(opts.days ?? 1), '-extfile', ext], dir);
      if (opts.chain) execFileSync('sh', ['-c', `cat "${caFile}" >> "${certFile}"`]);
      return { certFile, keyFile };
    },
  };
}

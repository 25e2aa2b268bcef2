/**
 * The certificate of the `wss` workloads, made at bench time with the `openssl` command (none is kept in the
 * repository): a self-signed P-256 certificate for localhost and 127.0.0.1, in a temp dir removed when the bench
 * process exits. Both `wss` targets (`ours-tls`, `ws-tls`) serve it with Node's default TLS settings, and the load
 * client trusts it (and only it) to verify them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Where the certificate and its key are. */
export interface BenchCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

let made: BenchCertificate | undefined;

/**
 * Makes the certificate on first use (one per bench process) and returns its files.
 * @throws Error naming the openssl command when it fails or is missing
 */
export function benchCertificate(): BenchCertificate {
  if (made !== undefined) return made;
  const dir = mkdtempSync(path.join(tmpdir(), 'nestjs-websockets-bench-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 });
  } catch (error) {
    throw new Error(`the wss workloads need a certificate: openssl ${args.join(' ')} failed: ${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  }
  made = { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') };
  return made;
}

/**
 * Certificates made at test time with the `openssl` command: a CA, a server certificate for localhost signed by it,
 * a self-signed (untrusted) certificate for localhost, and a CA-signed certificate for another hostname. Keys are
 * P-256 (fast to make). Made once per test file and kept in a temp dir (Python's ssl module wants file paths),
 * which an `afterAll` registered by this module removes. (A `process.on('exit')` handler would never run: jest gives
 * each test file its own copy of `process`.) Dirs left by killed test processes are removed by the next run.
 */
import { execFile } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from '@jest/globals';

const run = promisify(execFile);

/** Bound on each openssl command. */
const OPENSSL_TIMEOUT_MS = 15_000;
/** Validity of the certificates: long enough for any run, short enough to be obviously test material. */
const VALID_DAYS = '2';

/** A certificate and its key, in PEM, and where they are on disk. */
export interface CertificatePair {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Base64 SHA-256 of the public key (SPKI): Chromium's `--ignore-certificate-errors-spki-list` takes it. */
  readonly spkiSha256: string;
}

/** Everything `makeTestCertificates()` makes. */
export interface TestCertificates {
  /** The temp dir that holds the files. */
  readonly dir: string;
  /** The test CA: trust `ca.cert` (e.g. `{ ca: certs.ca.cert }`) to accept `server` and `wrongHost`. */
  readonly ca: CertificatePair;
  /** `CN=localhost`, SANs DNS:localhost, IP:127.0.0.1, IP:::1, signed by `ca`. */
  readonly server: CertificatePair;
  /** Self-signed, for localhost with the same SANs: a client that trusts `ca` must refuse it. */
  readonly untrusted: CertificatePair;
  /** Signed by `ca` but only for `wrongHost.hostname`: a client connecting to localhost must refuse it. */
  readonly wrongHost: CertificatePair & { readonly hostname: string };
}

/** The hostname of the `wrongHost` certificate. */
export const WRONG_HOSTNAME = 'wrong.example';

const LOCALHOST_SANS = 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1';
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr.trim()}`, { cause: error });
  }
}

function pair(dir: string, name: string): CertificatePair {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  const cert = readFileSync(certFile, 'utf8');
  const spki = createPublicKey(cert).export({ type: 'spki', format: 'der' });
  return Object.freeze({
    cert,
    key: readFileSync(keyFile, 'utf8'),
    certFile,
    keyFile,
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
  });
}

/** A self-signed certificate (`-x509`), with extra `-addext` values. */
async function selfSigned(dir: string, name: string, subject: string, extensions: string[]): Promise<void> {
  await openssl(
    ['req', '-x509', ...KEY_ARGS, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', VALID_DAYS, '-subj', subject,
      ...extensions.flatMap((ext) => ['-addext', ext])],
    dir,
  );
}

/** A leaf certificate signed by the CA in `dir`, with the extensions in an extfile (`x509 -req` has no -addext). */
async function signed(dir: string, name: string, subject: string, extensions: string[], serial: number): Promise<void> {
  await openssl(['req', ...KEY_ARGS, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  writeFileSync(path.join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial),
      '-days', VALID_DAYS, '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    dir,
  );
}

const DIR_PREFIX = 'nestjs-websockets-certs-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the dirs of test processes that were killed before their afterAll ran. */
function removeStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = name.startsWith(DIR_PREFIX) ? Number.parseInt(name.slice(DIR_PREFIX.length), 10) : Number.NaN;
    if (Number.isSafeInteger(pid) && pid !== process.pid && !alive(pid)) rmSync(path.join(tmpdir(), name), { recursive: true, force: true });
  }
}

let createdDir: string | undefined;
let cached: Promise<TestCertificates> | undefined;

afterAll(() => {
  if (createdDir !== undefined) rmSync(createdDir, { recursive: true, force: true });
  createdDir = undefined;
  cached = undefined;
});

async function make(): Promise<TestCertificates> {
  removeStaleDirs();
  const dir = mkdtempSync(path.join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  createdDir = dir;
  const leaf = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth'];
  await Promise.all([
    selfSigned(dir, 'ca', '/CN=nestjs-websockets test CA', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']),
    selfSigned(dir, 'untrusted', '/CN=localhost', [LOCALHOST_SANS, ...leaf]),
  ]);
  await Promise.all([
    signed(dir, 'server', '/CN=localhost', [LOCALHOST_SANS, ...leaf], 1),
    signed(dir, 'wrong-host', `/CN=${WRONG_HOSTNAME}`, [`subjectAltName=DNS:${WRONG_HOSTNAME}`, ...leaf], 2),
  ]);
  return Object.freeze({
    dir,
    ca: pair(dir, 'ca'),
    server: pair(dir, 'server'),
    untrusted: pair(dir, 'untrusted'),
    wrongHost: Object.freeze({ ...pair(dir, 'wrong-host'), hostname: WRONG_HOSTNAME }),
  });
}

/**
 * Makes the test certificates once per test file (later calls return the same ones).
 * Needs the `openssl` peer: call it inside `describeWithPeer('openssl', ...)`.
 * @throws Error naming the openssl command that failed and its stderr
 */
export function makeTestCertificates(): Promise<TestCertificates> {
  cached ??= make();
  return cached;
}

/**
 * The real peers that interop tests need (Debian packages installed by `.ci/run`), how to detect them, and how a
 * test file declares that it needs one. With `CI=true` a missing peer fails the run; on a developer machine the
 * tests that need it are reported by jest as skipped (one `it.skip` named `SKIPPED: ...`, never a pass), with the
 * reason and the command that installs the peer, and the same line goes to stderr.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { describe, it } from '@jest/globals';

/** The interpreter that has Debian's python3-websockets (never a pyenv or venv python from PATH). */
export const PYTHON_PATH = '/usr/bin/python3';
/** Debian's Chromium, driven by playwright-core. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** A peer that some tests need. */
export type PeerName = 'python' | 'chromium' | 'redis' | 'openssl' | 'tinyproxy' | 'microsocks';

/** Debian's tinyproxy (an HTTP proxy with CONNECT and Basic authentication). */
export const TINYPROXY_PATH = '/usr/bin/tinyproxy';
/** Debian's microsocks (a SOCKS5 proxy, with an optional user and password). */
export const MICROSOCKS_PATH = '/usr/bin/microsocks';

/** Whether a peer is present, and if not, why and how to install it. */
export interface PeerStatus {
  readonly name: PeerName;
  /** The Debian package that provides it. */
  readonly debianPackage: string;
  readonly available: boolean;
  /** The peer's version when available (e.g. `10.4` for Python websockets), else `<package> not installed`. */
  readonly detail: string;
  /** When unavailable, what the detection saw (`/usr/bin/python3 not found`, an import error); else `''`. */
  readonly cause: string;
  /** What to type to install it. */
  readonly install: string;
}

const PACKAGES: Record<PeerName, string> = {
  python: 'python3-websockets',
  chromium: 'chromium',
  redis: 'redis-server',
  openssl: 'openssl',
  tinyproxy: 'tinyproxy',
  microsocks: 'microsocks',
};

/** Bound on each detection command, so that a wedged binary cannot hang the suite. */
const DETECT_TIMEOUT_MS = 10_000;

function probe(command: string, args: string[]): { ok: true; output: string } | { ok: false; reason: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: DETECT_TIMEOUT_MS });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? `${command} not found` : `${command} failed: ${result.error.message}` };
  }
  if (result.status !== 0) {
    const stderr = result.stderr.trim().split('\n').pop() ?? '';
    return { ok: false, reason: `${command} ${args.join(' ')} exited with ${result.status ?? result.signal}: ${stderr}` };
  }
  return { ok: true, output: result.stdout.trim() };
}

type Detection = { available: true; detail: string; cause: '' } | { available: false; detail: string; cause: string };

function found(detail: string): Detection {
  return { available: true, detail, cause: '' };
}

function missing(name: PeerName, cause: string): Detection {
  return { available: false, detail: `${PACKAGES[name]} not installed`, cause };
}

function detect(name: PeerName): Detection {
  switch (name) {
    case 'python': {
      const r = probe(PYTHON_PATH, ['-c', 'import websockets; print(websockets.__version__)']);
      return r.ok ? found(r.output) : missing(name, r.reason);
    }
    case 'chromium': {
      try {
        accessSync(CHROMIUM_PATH, constants.X_OK);
        return found(CHROMIUM_PATH);
      } catch {
        return missing(name, `${CHROMIUM_PATH} is missing or not executable`);
      }
    }
    case 'redis': {
      const r = probe('redis-server', ['--version']);
      return r.ok ? found(r.output) : missing(name, r.reason);
    }
    case 'openssl': {
      const r = probe('openssl', ['version']);
      return r.ok ? found(r.output) : missing(name, r.reason);
    }
    case 'tinyproxy': {
      const r = probe(TINYPROXY_PATH, ['-v']);
      return r.ok ? found(r.output) : missing(name, r.reason);
    }
    case 'microsocks': {
      // microsocks has no version flag (-h exits with 1): being an executable file is what can be checked.
      try {
        accessSync(MICROSOCKS_PATH, constants.X_OK);
        return found(MICROSOCKS_PATH);
      } catch {
        return missing(name, `${MICROSOCKS_PATH} is missing or not executable`);
      }
    }
  }
}

const cache = new Map<PeerName, PeerStatus>();

/**
 * Peers to treat as missing although installed, from `TEST_HIDE_PEERS` (comma-separated, e.g. `python,chromium`):
 * lets a developer see what the suite reports on a machine without them.
 */
function hidden(name: PeerName): boolean {
  return (process.env.TEST_HIDE_PEERS ?? '').split(',').map((s) => s.trim()).includes(name);
}

/** Detects a peer (once per test file) and says whether it is available, and if not why. */
export function peer(name: PeerName): PeerStatus {
  let status = cache.get(name);
  if (status === undefined) {
    const debianPackage = PACKAGES[name];
    const detection = hidden(name) ? missing(name, 'hidden by TEST_HIDE_PEERS') : detect(name);
    status = Object.freeze({ name, debianPackage, ...detection, install: `apt-get install ${debianPackage}` });
    cache.set(name, status);
  }
  return status;
}

/** True when running in CI, where every peer is required (`CI=true`, as CI services set it). */
export function peersRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * The line printed and used as a test name when a peer is missing:
 * `SKIPPED: python3-websockets not installed (apt-get install python3-websockets): <title>`.
 */
export function skippedLine(status: PeerStatus, title: string): string {
  return `SKIPPED: ${status.detail} (${status.install}): ${title}`;
}

/** Registers what a missing peer leaves in place of the tests: a failure in CI, else one skipped `SKIPPED` test. */
function registerMissing(status: PeerStatus, title: string): void {
  if (peersRequired()) {
    it(`REQUIRED PEER MISSING: ${title}`, () => {
      throw new Error(`CI=true and a required peer is missing: ${status.detail} (${status.cause}). Install it with: ${status.install}`);
    });
    return;
  }
  const line = skippedLine(status, title);
  process.stderr.write(`${line} [${status.cause}]\n`);
  // Skipped, not passed: the summary counts these tests as not run.
  it.skip(line, () => undefined);
}

/**
 * `describe(title, fn)` when the peer is present. When it is absent: under CI the block fails with a message naming
 * the peer; elsewhere it is one skipped test named `SKIPPED: ...`, and the same line goes to stderr.
 */
export function describeWithPeer(name: PeerName, title: string, fn: () => void): void {
  const status = peer(name);
  if (status.available) {
    describe(title, fn);
    return;
  }
  describe(title, () => registerMissing(status, title));
}

/** Like `describeWithPeer` for several peers: runs only when all are present. */
export function describeWithPeers(names: readonly PeerName[], title: string, fn: () => void): void {
  const missing = names.map(peer).find((status) => !status.available);
  if (missing === undefined) {
    describe(title, fn);
    return;
  }
  describe(title, () => registerMissing(missing, title));
}

/** `it(title, fn, timeoutMs)` when the peer is present; otherwise as `describeWithPeer` does. */
export function itWithPeer(name: PeerName, title: string, fn: () => Promise<unknown> | void, timeoutMs?: number): void {
  const status = peer(name);
  if (status.available) {
    it(title, async () => {
      await fn();
    }, timeoutMs);
    return;
  }
  registerMissing(status, title);
}

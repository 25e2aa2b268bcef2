/**
 * Headless Debian Chromium driven by playwright-core, for tests where a real browser is the WebSocket peer.
 * Playwright gives every launch a fresh temporary profile (its own `--user-data-dir`, which it forbids in `args`)
 * and removes it on close. Call these inside `describeWithPeer('chromium', ...)`.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_PATH } from './peers.js';
import { withTimeout } from './net.js';

/** Flags for a quiet, offline, root-friendly headless Chromium (the network features it would call home with are off). */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** Options of `launchChromium`. */
export interface ChromiumOptions {
  /** Bound on the launch. @default 20000 */
  timeoutMs?: number;
  /**
   * Base64 SHA-256 public-key hashes to trust for TLS (`CertificatePair.spkiSha256` from certs.ts), so that `wss://`
   * to a server with a test certificate works without trusting anything else.
   */
  trustSpki?: readonly string[];
  extraArgs?: readonly string[];
}

/** Bound on closing the browser. */
const CLOSE_TIMEOUT_MS = 10_000;

/**
 * Launches `/usr/bin/chromium` headless with `CHROMIUM_ARGS`. Close it with `closeChromium()`.
 * @throws Error when Chromium does not start within the bound
 */
export async function launchChromium(options: ChromiumOptions = {}): Promise<Browser> {
  const args = [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])];
  if (options.trustSpki !== undefined && options.trustSpki.length > 0) {
    args.push(`--ignore-certificate-errors-spki-list=${options.trustSpki.join(',')}`);
  }
  const timeoutMs = options.timeoutMs ?? 20_000;
  return withTimeout(
    chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, chromiumSandbox: false, args, timeout: timeoutMs }),
    timeoutMs + 1000,
    'chromium launch',
  );
}

/** Closes a browser, bounded; a browser that does not close in time is left to playwright's exit handler. */
export async function closeChromium(browser: Browser | undefined): Promise<void> {
  if (browser === undefined) return;
  await withTimeout(browser.close(), CLOSE_TIMEOUT_MS, 'chromium close');
}

/**
 * Registers `beforeAll` (launch) and `afterAll` (close) in the current `describe`, and returns a getter for the
 * browser. One browser per describe block keeps the suite fast; give each test its own page or context.
 */
export function useChromium(options: ChromiumOptions = {}): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium(options);
  }, (options.timeoutMs ?? 20_000) + 5000);
  afterAll(async () => {
    await closeChromium(browser);
    browser = undefined;
  }, CLOSE_TIMEOUT_MS + 5000);
  return () => {
    if (browser === undefined) throw new Error('chromium is not running (useChromium() launches it in beforeAll)');
    return browser;
  };
}

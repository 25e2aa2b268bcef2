/**
 * `reconnect()`: a client that stays connected. `for await (const ws of reconnect(url, options))` yields an open
 * `WebSocket`, and once the loop body is done with it and it has ended, connects again and yields the next one.
 *
 * As in Python websockets (`async for websocket in connect(...)`): failed attempts are retried with truncated
 * exponential backoff (a random first delay up to 5 s, RFC 6455 §7.2.3, then 3.1 s times 1.618 per attempt up to
 * 90 s) on network errors, timeouts and 500/502/503/504 from the server or the proxy; any other refusal (401, 403,
 * 404, a bad certificate, a ConfigError) ends the loop with its error. Two additions: a `Retry-After` on the refusal
 * sets the delay (up to the maximum delay), and a connection that ends sooner than `backoffMinDelayMs` after it
 * opened counts as a failed attempt, so a server that accepts and closes at once is not hammered; a connection that
 * lived longer is followed by an immediate attempt and a fresh backoff, as in Python.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { resolveBackoff, type BackoffOptions, type ResolvedBackoff } from '../config/index.js';
import { IncompleteResponseError, InvalidStatusError, OpenTimeoutError, ProxyError } from '../errors.js';
import { connect, type ConnectOptions } from './client.js';
import { WebSocket } from './websocket.js';

/** What `onRetry` is told before each wait. */
export interface RetryEvent {
  /** Why the attempt failed, or `null` when the previous connection ended too soon after it opened. */
  readonly error: unknown;
  /** How long the loop waits before the next attempt, in ms. */
  readonly delayMs: number;
  /** The number of the attempt that failed, counted from 1 since the last connection that lasted. */
  readonly attempt: number;
}

/** Options of `reconnect()`: those of `connect()`, the backoff, and how to observe and stop the loop. */
export interface ReconnectOptions extends ConnectOptions, BackoffOptions {
  /**
   * Decides whether a failed attempt is retried (`true`) or ends the loop with its error (`false`).
   * @default isTransientError: network errors, timeouts, 500/502/503/504 from the server or the proxy
   */
  shouldRetry?: (error: unknown) => boolean;
  /** Called before each wait, to log it (Python websockets logs "connect failed; reconnecting in N seconds"). */
  onRetry?: (event: RetryEvent) => void;
  /**
   * Ends the loop: a wait is cut short, the current connection is closed with 1000, and the loop returns. An
   * attempt in progress finishes first (it is bounded by `openTimeoutMs`).
   */
  signal?: AbortSignal;
}

/** HTTP statuses that say "try again later" (RFC 9110 §15.6): the server or a gateway in front of it is in trouble. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);
/** SOCKS5 replies that say the server cannot be reached now (RFC 1928 §6): general failure, unreachable, refused, TTL. */
const RETRYABLE_SOCKS_REPLIES: ReadonlySet<number> = new Set([1, 3, 4, 5, 6]);

/**
 * The default of `shouldRetry`: whether a failed attempt may succeed if tried again with the same settings.
 * True for Node's system errors (ECONNREFUSED, ECONNRESET, ENOENT for a Unix socket not there yet, EAI_AGAIN ...),
 * `OpenTimeoutError`, `IncompleteResponseError`, a 500/502/503/504 refusal (`InvalidStatusError`, or `ProxyError`
 * from an HTTP proxy), a SOCKS5 reply saying the server is unreachable or refused the connection, and a `ProxyError`
 * whose cause is one of these. False for everything else: 401, 403, 404 and other refusals, certificate errors,
 * limits, configuration errors.
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof OpenTimeoutError || error instanceof IncompleteResponseError) return true;
  if (error instanceof InvalidStatusError) return RETRYABLE_STATUSES.has(error.status);
  if (error instanceof ProxyError) {
    if (error.status !== undefined) {
      return error.proxy.startsWith('socks') ? RETRYABLE_SOCKS_REPLIES.has(error.status) : RETRYABLE_STATUSES.has(error.status);
    }
    return error.cause !== undefined && isTransientError(error.cause);
  }
  return isSystemError(error);
}

/** Node's errors from the operating system (`code` like ECONNREFUSED, with a `syscall`), not TLS or our own. */
function isSystemError(error: unknown): boolean {
  // No `instanceof Error`: errors made by Node's core can come from another realm (a vm context, jest).
  if (typeof error !== 'object' || error === null) return false;
  const { code, syscall } = error as NodeJS.ErrnoException;
  return typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code) && (typeof syscall === 'string' || code === 'ECONNRESET' || code === 'EPIPE');
}

/**
 * Python websockets' backoff: a random delay from 0 up to `initialDelayMs`, then `minDelayMs`, multiplied by
 * `factor` each time while under `maxDelayMs`, then `maxDelayMs` for ever.
 * @param random a source in [0, 1) for the first delay (tests pass a fixed one)
 */
export function* backoffDelays(backoff: ResolvedBackoff, random: () => number = Math.random): Generator<number, never, undefined> {
  yield Math.floor(random() * backoff.initialDelayMs);
  let delay = backoff.minDelayMs;
  while (delay < backoff.maxDelayMs) {
    yield Math.round(delay);
    delay *= backoff.factor;
  }
  for (;;) yield backoff.maxDelayMs;
}

/**
 * The wait a refusal asks for with `Retry-After` (RFC 9110 §10.2.3: seconds, or an HTTP date), in ms; `null` when
 * the error carries none or an invalid one.
 * @param now the current time in ms since the epoch, for a date
 */
export function retryAfterMs(error: unknown, now: number = Date.now()): number | null {
  const headers = error instanceof InvalidStatusError || error instanceof ProxyError ? error.responseHeaders : [];
  const field = headers.find(([name]) => name.toLowerCase() === 'retry-after');
  if (field === undefined) return null;
  const value = field[1].trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/**
 * Connects to `url` and keeps connecting: each iteration gets an open `WebSocket`. When the loop body is done, the
 * loop waits for that connection to end (close it to move on at once, or leave the body only once it has ended,
 * e.g. after `for await (const message of ws)`), then connects again. `break` (or a throw) closes the current
 * connection with 1000 and ends the loop, as does `signal`.
 * @throws the first error that `shouldRetry` does not accept: ConfigError at once for a bad option or variable,
 *   InvalidStatusError for a 401, ProxyError for a 407, ...
 */
export async function* reconnect(url: string | URL, options: ReconnectOptions = {}): AsyncGenerator<WebSocket, void, undefined> {
  const env = options.env ?? process.env;
  const backoff = resolveBackoff(options, env);
  const shouldRetry = options.shouldRetry ?? isTransientError;
  const { signal } = options;
  // A function, not a narrowed property: the signal can fire during any await.
  const aborted = (): boolean => signal?.aborted === true;
  let delays: Generator<number, never, undefined> | null = null;
  let attempt = 0;
  const wait = async (error: unknown): Promise<void> => {
    attempt += 1;
    delays ??= backoffDelays(backoff);
    let delayMs = delays.next().value;
    const asked = retryAfterMs(error);
    if (asked !== null) delayMs = Math.max(delayMs, Math.min(asked, backoff.maxDelayMs));
    options.onRetry?.({ error, delayMs, attempt });
    await sleep(delayMs, undefined, { signal }).catch(() => undefined);
  };

  while (!aborted()) {
    let ws: WebSocket;
    try {
      ws = await connect(url, options);
    } catch (error) {
      if (aborted()) return;
      if (!shouldRetry(error)) throw error;
      await wait(error);
      continue;
    }
    const openedAt = performance.now();
    const ended = new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve();
      else ws.once('close', () => resolve());
    });
    const onAbort = (): void => void ws.close().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (aborted()) return;
      yield ws;
      await ended;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // The consumer broke out of the loop (or threw): the connection is over for it.
      if (ws.readyState !== WebSocket.CLOSED) await ws.close().catch(() => undefined);
    }
    if (performance.now() - openedAt < backoff.minDelayMs) {
      await wait(null);
    } else {
      delays = null;
      attempt = 0;
    }
  }
}

/**
 * When the client reconnects, and after how long: exponential backoff with full jitter (each delay a random time up
 * to `initialDelayMs * factor^(attempt - 1)`, capped at `maxDelayMs`), and which closes end the client for good.
 *
 * Full jitter spreads the clients of a restarted server over the whole window instead of bringing them back in
 * waves; the defaults (0.5 s, x2, 30 s) are those of socket.io-client's and partysocket's order of magnitude, shorter
 * at first than Python websockets' `reconnect()` (5 s), because a page waits in front of a user.
 */
import { CloseCode, REFUSAL_CLOSE_CODE_OFFSET } from '../protocol/close-codes.js';
import { ClientConfigError } from './errors.js';

/** The `reconnect` option. Every field is optional. */
export interface ReconnectOptions {
  /** Upper bound of the first delay, in ms. @default 500 */
  initialDelayMs?: number;
  /** Longest delay, in ms; also caps a `Retry-After`. @default 30000 */
  maxDelayMs?: number;
  /** Each attempt's bound is the previous one times this (at least 1). @default 2 */
  factor?: number;
  /**
   * How much of the delay is random, from 0 (none: exactly the bound) to 1 (full jitter: anything from 0 to the
   * bound). @default 1
   */
  jitter?: number;
  /** Attempts in a row before the client gives up (state `'closed'`). @default Infinity */
  maxAttempts?: number;
  /** A connection that stayed open this long resets the backoff: the next loss starts again at attempt 1. @default 5000 */
  resetAfterMs?: number;
}

/** The `reconnect` option with its defaults filled in. */
export type ResolvedReconnect = Readonly<Required<ReconnectOptions>>;

/** HTTP statuses (RFC 9110 §15.5) that a refusal carries and that ask the client to come back later. */
const REQUEST_TIMEOUT = 408;
const TOO_MANY_REQUESTS = 429;
const FIRST_CLIENT_ERROR = 400;
const LAST_CLIENT_ERROR = 499;

const DEFAULTS: ResolvedReconnect = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 1, maxAttempts: Infinity, resetAfterMs: 5000 };

/**
 * Fills in the defaults and checks the values; `false` turns reconnection off (`null`).
 * @throws ClientConfigError for a negative delay, a factor under 1, a jitter outside 0-1, or fewer than 1 attempt
 */
export function resolveReconnect(option: false | ReconnectOptions | undefined): ResolvedReconnect | null {
  if (option === false) return null;
  const resolved = { ...DEFAULTS, ...option };
  for (const [name, min, max] of [
    ['initialDelayMs', 0, Infinity],
    ['maxDelayMs', 0, Infinity],
    ['factor', 1, Infinity],
    ['jitter', 0, 1],
    ['maxAttempts', 1, Infinity],
    ['resetAfterMs', 0, Infinity],
  ] as const) {
    const value = resolved[name];
    // NaN and non-numbers fail both comparisons' negation.
    if (!(typeof value === 'number' && value >= min && value <= max)) {
      throw new ClientConfigError(`reconnect.${name}`, value, `a number from ${min} to ${max}`);
    }
  }
  return resolved;
}

/**
 * The delay before attempt `attempt` (1 for the first after a loss), in ms.
 * @param random a source in [0, 1) (tests pass a fixed one)
 */
export function reconnectDelay(policy: ResolvedReconnect, attempt: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  return Math.round(bound * (1 - policy.jitter * random()));
}

/**
 * What a close means: `'refused'` for 4400-4499 (an in-band refusal; 4408 Request Timeout and 4429 Too Many
 * Requests excepted, which ask to come back later), `'final'` for 1000 (the server ended the session) and 1008
 * (policy violation: the same messages would get the same answer), `'retry'` for anything else: 1001 going away,
 * 1006 dropped or not reachable (a refusal over HTTP looks the same in a browser), 1011, 1012, 1013, 5xx ...
 */
export function closeOutcome(code: number): 'refused' | 'final' | 'retry' {
  const status = code - REFUSAL_CLOSE_CODE_OFFSET;
  if (status >= FIRST_CLIENT_ERROR && status <= LAST_CLIENT_ERROR && status !== REQUEST_TIMEOUT && status !== TOO_MANY_REQUESTS) return 'refused';
  return code === CloseCode.NORMAL_CLOSURE || code === CloseCode.POLICY_VIOLATION ? 'final' : 'retry';
}

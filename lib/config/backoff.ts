/**
 * The backoff of `reconnect()`: Python websockets' defaults and variables (in seconds), as options in ms.
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting, type SettingName } from './settings.js';
import { invalid, type Environment } from './setting-values.js';

/** The backoff of `reconnect()`, in ms (the options' unit); the variables are in seconds, as in Python websockets. */
export interface BackoffOptions {
  /** The first retry waits a random time from 0 up to this, in ms. @default 5000, or WEBSOCKETS_BACKOFF_INITIAL_DELAY (s) */
  backoffInitialDelayMs?: number;
  /** The second retry waits this, in ms (more than 0). @default 3100, or WEBSOCKETS_BACKOFF_MIN_DELAY (s) */
  backoffMinDelayMs?: number;
  /** Each later delay is the previous one times this (at least 1). @default 1.618, or WEBSOCKETS_BACKOFF_FACTOR */
  backoffFactor?: number;
  /** Longest delay, `Retry-After` included, in ms. @default 90000, or WEBSOCKETS_BACKOFF_MAX_DELAY (s) */
  backoffMaxDelayMs?: number;
}

/** Resolved backoff, in ms. */
export interface ResolvedBackoff {
  readonly initialDelayMs: number;
  readonly minDelayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
}

// Seconds with an optional decimal part, as Python's float() would take them, but nothing else ("5s", "1e3", "-1").
const DECIMAL = /^\d+(?:\.\d+)?$/;

/** A delay in ms from an option (a non-negative safe integer, at least `min`), else its variable in seconds. */
function resolveDelayMs(name: SettingName, option: unknown, env: Environment, min: number): number {
  const spec = SETTINGS[name];
  const expected = min === 0 ? 'a non-negative integer (milliseconds)' : `an integer of at least ${min} (milliseconds)`;
  if (option !== undefined) {
    if (typeof option !== 'number' || !Number.isSafeInteger(option) || option < min) throw invalid(name, option, expected, 'option');
    return option;
  }
  const raw = spec.env === null ? undefined : env[spec.env];
  if (raw !== undefined && raw !== '') {
    const ms = Math.round(Number(raw) * 1000);
    if (!DECIMAL.test(raw) || !Number.isSafeInteger(ms) || ms < min) {
      throw invalid(name, raw, `a number of seconds (e.g. 3.1)${min > 0 ? ' above 0' : ''}`, 'env');
    }
    return ms;
  }
  return spec.default as number;
}

/**
 * The backoff of `reconnect()`: each value from its option (ms), else its variable (seconds, decimals allowed),
 * else Python websockets' default (5 s, 3.1 s, x1.618, 90 s).
 * @throws ConfigError for a value that is not a number, a factor below 1, a minimum delay of 0, or a maximum delay
 *   below the minimum delay
 */
export function resolveBackoff(options: BackoffOptions, env: Environment): Readonly<ResolvedBackoff> {
  const initialDelayMs = resolveDelayMs('backoffInitialDelayMs', options.backoffInitialDelayMs, env, 0);
  // A minimum of 0 would make every delay 0: a client that hammers the server in a loop.
  const minDelayMs = resolveDelayMs('backoffMinDelayMs', options.backoffMinDelayMs, env, 1);
  const maxDelayMs = resolveDelayMs('backoffMaxDelayMs', options.backoffMaxDelayMs, env, 1);
  let factor: number = SETTINGS.backoffFactor.default;
  const rawFactor = env[SETTINGS.backoffFactor.env];
  if (options.backoffFactor !== undefined) {
    const option: unknown = options.backoffFactor;
    if (typeof option !== 'number' || !Number.isFinite(option) || option < 1) throw invalid('backoffFactor', option, 'a number of at least 1', 'option');
    factor = option;
  } else if (rawFactor !== undefined && rawFactor !== '') {
    if (!DECIMAL.test(rawFactor) || Number(rawFactor) < 1) throw invalid('backoffFactor', rawFactor, 'a number of at least 1 (e.g. 1.618)', 'env');
    factor = Number(rawFactor);
  }
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError(
      `backoffMaxDelayMs (${maxDelayMs} ms) must not be below backoffMinDelayMs (${minDelayMs} ms) ` +
        `(${describeSetting('backoffMaxDelayMs')}; ${describeSetting('backoffMinDelayMs')})`,
      'backoffMaxDelayMs',
      maxDelayMs,
    );
  }
  return Object.freeze({ initialDelayMs, minDelayMs, factor, maxDelayMs });
}

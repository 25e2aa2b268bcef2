/**
 * The settings of resumable sessions (`sessions`, `sessionTtlMs`, `sessionMaxBufferedBytes`, `maxDetachedSessions`):
 * whether a gateway gives sessions to the clients that ask for one, and the bounds of what it keeps for them.
 */
import { invalid, resolveInteger, type Environment } from './setting-values.js';
import { SETTINGS } from './settings.js';

/** Sessions of a gateway, resolved. */
export interface SessionSettings {
  /** Whether clients that ask for a session get one. */
  readonly enabled: boolean;
  /** How long a session without a connection is kept, in ms. */
  readonly ttlMs: number;
  /** Most bytes of messages one session keeps for its client. */
  readonly maxBufferedBytes: number;
  /** Most sessions without a connection kept at once (the oldest is ended to make room). */
  readonly maxDetached: number;
}

/** The options that `resolveSessions` reads. */
export interface SessionOptions {
  readonly sessions?: unknown;
  readonly sessionTtlMs?: unknown;
  readonly sessionMaxBufferedBytes?: unknown;
  readonly maxDetachedSessions?: unknown;
}

/**
 * Resolves the session settings (module or gateway options) against the environment and the defaults.
 * @throws ConfigError naming the option or variable, the value and what is expected
 */
export function resolveSessions(options: SessionOptions = {}, env: Environment = {}): Readonly<SessionSettings> {
  return Object.freeze({
    enabled: resolveSwitch(options.sessions, env),
    ttlMs: resolveInteger('sessionTtlMs', options.sessionTtlMs, env, 'milliseconds'),
    maxBufferedBytes: resolveInteger('sessionMaxBufferedBytes', options.sessionMaxBufferedBytes, env, 'bytes'),
    maxDetached: resolveInteger('maxDetachedSessions', options.maxDetachedSessions, env, 'sessions'),
  });
}

/** `sessions`: a boolean option, else WEBSOCKETS_SESSIONS (`on`/`off`, `true`/`false`, `1`/`0`, `yes`/`no`), else off. */
function resolveSwitch(option: unknown, env: Environment): boolean {
  if (option !== undefined) {
    if (typeof option !== 'boolean') throw invalid('sessions', option, 'a boolean', 'option');
    return option;
  }
  const raw = env[SETTINGS.sessions.env];
  if (raw === undefined || raw === '') return SETTINGS.sessions.default;
  if (/^(on|true|1|yes)$/i.test(raw)) return true;
  if (/^(off|false|0|no)$/i.test(raw)) return false;
  throw invalid('sessions', raw, '"on" or "off"', 'env');
}

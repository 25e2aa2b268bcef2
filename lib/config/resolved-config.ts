/**
 * `resolveConfig()`: the options of a server or client, resolved once (option, then environment, then default),
 * validated and frozen. The Node layer takes the result: a Nest gateway resolves its merged options once and hands the
 * resolved configuration down, so nothing is resolved twice.
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting } from './settings.js';
import {
  invalid,
  resolveHeader,
  resolveInteger,
  resolveOptionalCount,
  resolveTimeout,
  type Environment,
} from './setting-values.js';
import type { CompressionOptions, RefusalMode, SlowConsumerPolicy, WebSocketsOptions } from './websockets-options.js';

/** Limits on connections, enforced by a server before the upgrade; `null` is no limit. */
export interface ConnectionLimits {
  readonly maxConnections: number | null;
  readonly maxConnectionsPerAddress: number | null;
  readonly maxHandshakesPerSecondPerAddress: number | null;
}

/** The limits that the sans-I/O core needs. */
export interface Limits {
  readonly maxLineLength: number;
  readonly maxNumHeaders: number;
  readonly maxBodySize: number;
  readonly maxMessageSize: number;
  readonly maxFragments: number;
}

/** Resolved permessage-deflate settings, or `null` when compression is off. */
export interface ResolvedCompression {
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly memLevel: number;
  readonly threshold: number;
  /**
   * Whether the window bits were set explicitly (not left to their defaults): a client offers a value it was given,
   * and leaves the parameter out (or bare) otherwise, whatever the number.
   */
  readonly windowBitsSet: { readonly server: boolean; readonly client: boolean };
}

export interface ResolvedConfig {
  readonly limits: Limits;
  readonly serverHeader: string | null;
  readonly userAgentHeader: string | null;
  readonly readHighWaterMark: number;
  readonly writeHighWaterMark: number;
  readonly writeLowWaterMark: number;
  /** `Number.MAX_SAFE_INTEGER` when there is no limit. */
  readonly maxBufferedAmount: number;
  readonly slowConsumer: SlowConsumerPolicy;
  readonly compression: ResolvedCompression | null;
  readonly openTimeoutMs: number | null;
  readonly pingIntervalMs: number | null;
  readonly pingTimeoutMs: number | null;
  readonly closeTimeoutMs: number | null;
  readonly connectionLimits: ConnectionLimits;
  readonly refusals: RefusalMode;
}

const POLICIES: readonly SlowConsumerPolicy[] = ['close', 'drop'];
const REFUSAL_MODES: readonly RefusalMode[] = ['http', 'in-band', 'auto'];

/** One word of `choices`: the option, else the variable, else the default. */
function resolveWord<const T extends string>(name: 'slowConsumer' | 'refusals', choices: readonly T[], option: unknown, env: Environment): T {
  const expected = choices.map((choice) => JSON.stringify(choice)).join(', ').replace(/, ([^,]*)$/, ' or $1');
  if (option !== undefined) {
    if (!choices.includes(option as T)) throw invalid(name, option, expected, 'option');
    return option as T;
  }
  const raw = env[SETTINGS[name].env];
  if (raw === undefined || raw === '') return SETTINGS[name].default as T;
  if (!choices.includes(raw as T)) throw invalid(name, raw, expected, 'env');
  return raw as T;
}

function resolveCompression(option: unknown, env: Environment): ResolvedCompression | null {
  if (option === false) return null;
  if (option === undefined) {
    const raw = env[SETTINGS.compression.env];
    if (raw !== undefined && raw !== '') {
      if (/^(off|false|0|no)$/i.test(raw)) return null;
      if (!/^(on|true|1|yes)$/i.test(raw)) throw invalid('compression', raw, '"on" or "off"', 'env');
    }
  }
  if (option !== undefined && option !== true && (typeof option !== 'object' || option === null)) {
    throw invalid('compression', option, 'true, false or an object of compression options', 'option');
  }
  const o = (typeof option === 'object' && option !== null ? option : {}) as CompressionOptions;
  const bool = (value: unknown, name: string, fallback: boolean): boolean => {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      throw new ConfigError(`option compression.${name} must be a boolean; got ${String(value)}`, `compression.${name}`, value);
    }
    return value;
  };
  const none: Environment = {};
  return Object.freeze({
    serverMaxWindowBits: resolveInteger('serverMaxWindowBits', o.serverMaxWindowBits, none, 'window bits', 8, 15),
    clientMaxWindowBits: resolveInteger('clientMaxWindowBits', o.clientMaxWindowBits, none, 'window bits', 8, 15),
    serverNoContextTakeover: bool(o.serverNoContextTakeover, 'serverNoContextTakeover', false),
    clientNoContextTakeover: bool(o.clientNoContextTakeover, 'clientNoContextTakeover', false),
    memLevel: resolveInteger('memLevel', o.memLevel, none, 'zlib memLevel', 1, 9),
    threshold: o.threshold === 0 ? 0 : resolveInteger('compressionThreshold', o.threshold, none, 'bytes'),
    windowBitsSet: Object.freeze({ server: o.serverMaxWindowBits !== undefined, client: o.clientMaxWindowBits !== undefined }),
  });
}

/**
 * Resolves options against the environment and the defaults, validates them and freezes the result.
 * @param options what the caller passed explicitly; `undefined` fields fall back to the environment
 * @param env usually `process.env`; tests pass a literal object
 * @throws ConfigError naming the option or variable, the value and what is expected
 */
export function resolveConfig(options: WebSocketsOptions = {}, env: Environment = {}): Readonly<ResolvedConfig> {
  const limits: Limits = Object.freeze({
    maxLineLength: resolveInteger('maxLineLength', options.maxLineLength, env, 'bytes'),
    maxNumHeaders: resolveInteger('maxNumHeaders', options.maxNumHeaders, env, 'headers'),
    maxBodySize: resolveInteger('maxBodySize', options.maxBodySize, env, 'bytes'),
    maxMessageSize: resolveInteger('maxMessageSize', options.maxMessageSize, env, 'bytes'),
    maxFragments: resolveInteger('maxFragments', options.maxFragments, env, 'frames'),
  });
  const writeHighWaterMark = resolveInteger('writeHighWaterMark', options.writeHighWaterMark, env, 'bytes');
  const writeLowWaterMark = resolveInteger('writeLowWaterMark', options.writeLowWaterMark, env, 'bytes');
  if (writeLowWaterMark > writeHighWaterMark) {
    throw new ConfigError(
      `writeLowWaterMark (${writeLowWaterMark}) must not exceed writeHighWaterMark (${writeHighWaterMark})`,
      'writeLowWaterMark',
      writeLowWaterMark,
    );
  }
  const maxBufferedAmount =
    resolveOptionalCount('maxBufferedAmount', options.maxBufferedAmount, env, 'bytes') ?? Number.MAX_SAFE_INTEGER;
  if (maxBufferedAmount < writeHighWaterMark) {
    throw new ConfigError(
      `maxBufferedAmount (${maxBufferedAmount}) must not be under writeHighWaterMark (${writeHighWaterMark}) (${describeSetting('maxBufferedAmount')})`,
      'maxBufferedAmount',
      maxBufferedAmount,
    );
  }
  return Object.freeze({
    limits,
    serverHeader: resolveHeader('serverHeader', options.serverHeader, env),
    userAgentHeader: resolveHeader('userAgentHeader', options.userAgentHeader, env),
    readHighWaterMark: resolveInteger('readHighWaterMark', options.readHighWaterMark, env, 'bytes'),
    writeHighWaterMark,
    writeLowWaterMark,
    maxBufferedAmount,
    slowConsumer: resolveWord('slowConsumer', POLICIES, options.slowConsumer, env),
    compression: resolveCompression(options.compression, env),
    openTimeoutMs: resolveTimeout('openTimeoutMs', options.openTimeoutMs, env),
    pingIntervalMs: resolveTimeout('pingIntervalMs', options.pingIntervalMs, env),
    pingTimeoutMs: resolveTimeout('pingTimeoutMs', options.pingTimeoutMs, env),
    closeTimeoutMs: resolveTimeout('closeTimeoutMs', options.closeTimeoutMs, env),
    connectionLimits: Object.freeze({
      maxConnections: resolveOptionalCount('maxConnections', options.maxConnections, env, 'connections'),
      maxConnectionsPerAddress: resolveOptionalCount('maxConnectionsPerAddress', options.maxConnectionsPerAddress, env, 'connections'),
      maxHandshakesPerSecondPerAddress: resolveOptionalCount(
        'maxHandshakesPerSecondPerAddress',
        options.maxHandshakesPerSecondPerAddress,
        env,
        'handshakes per second',
      ),
    }),
    refusals: resolveWord('refusals', REFUSAL_MODES, options.refusals, env),
  });
}
